"""The HTTP service under load: --clients concurrent clients send --requests mixed requests, then the database
is checked against what the API answered.

Mix: ~25% `POST /v1/analyze` (a pool of --photos distinct street photos, so some come again and are answered from
the history), ~24% `POST /v1/search` (half by `item_id`, half by upload), ~49% reads (`GET /v1/analyses/{id}`,
`GET /v1/analyses?label=`, `GET /v1/items?category=`, `GET /v1/items/{id}`, `/v1/health`) and ~2% `POST /v1/items`
of new catalogue photos. Every request carries the read-write token the servers were started with (reads need
one too). Prints requests/s, p50/p95/p99 per kind and overall, and the status codes; any 5xx or transport error
fails the run (exit code 1).

`--replicas 2` starts two `serve` processes on the one database (PostgreSQL: `--db`) with one shared media folder;
the clients alternate between them. The rate limit and the model queue are set past what the run can reach
(FASHIONLENS_RATE_LIMIT, FASHIONLENS_MAX_QUEUE = 2 x clients): this run checks correctness under concurrency, and
`service_backpressure.py` measures the limits themselves.

Integrity, read from the database after the server stopped: one analyses row per distinct photo analysed, none
duplicated by (sha256, models_key), every analysis id the API returned present with that photo's sha256, each
photo created (201) exactly once; items = seeded + created, every item id returned present with its sha256.

    .venv/bin/python benchmarks/service_load.py [--requests 2000] [--clients 32] [--items 200] [--replicas 2]
        [--db postgresql+psycopg://postgres@127.0.0.1:5432/test] [--json out.json] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, make_url, select

from _shared import DATASETS
from record import add_flag, record
from service_latency import catalogue_images, load_note, percentiles_ms, running_service, street_photos
from fashionlens.catalog.catalog import index_path_for
from fashionlens.catalog.index import stamp_path
from fashionlens.catalog.models import AnalysisRecord, Item

LABELS = ["shirt", "pants", "dress", "jacket", "shoe", "bag", "skirt", "hat"]  # the shipped detector's classes
CATEGORIES = ["dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt"]
MIX = {"analyze": 25, "search_item": 12, "search_upload": 12, "get_analysis": 15, "list_analyses": 9,
       "list_items": 10, "get_item": 10, "health": 5, "add_item": 2}  # percent
ANALYZE_STATUS = {201: "  of which new", 200: "  reused"}


@dataclass(frozen=True)
class Photo:
    path: Path
    data: bytes
    sha256: str

    @classmethod
    def read(cls, path: Path) -> Photo:
        data = path.read_bytes()
        return cls(path, data, hashlib.sha256(data).hexdigest())

    def upload(self) -> dict:
        return {"file": (self.path.name, self.data, "image/jpeg")}


@dataclass
class Outcome:
    """What the clients saw: per request (kind, status or transport error, seconds), and the ids they were given."""

    requests: list[tuple[str, int | str, float]] = field(default_factory=list)
    analyses: list[tuple[str, int, int]] = field(default_factory=list)  # (photo sha256, status, analysis id)
    items: list[tuple[str, int, int]] = field(default_factory=list)  # (photo sha256, status, item id)
    errors: list[str] = field(default_factory=list)  # 5xx bodies and transport errors, first few


def plan(n: int, seed: int) -> list[str]:
    """n request kinds in the MIX proportions, shuffled."""
    kinds = [k for k, share in MIX.items() for _ in range(round(n * share / 100))]
    kinds = (kinds + random.Random(seed).choices(list(MIX), weights=list(MIX.values()), k=n))[:n]
    random.Random(seed).shuffle(kinds)
    return kinds


async def run_load(urls: list[str], kinds: list[str], clients: int, token: str, analyze_pool: list[Photo],
                   search_pool: list[Photo], new_items: list[Photo], item_ids: list[int],
                   seed: int) -> tuple[Outcome, float]:
    """`clients` workers take the next request kind from `kinds` until none is left, worker i on replica
    i mod len(urls); (what they saw, wall seconds)."""
    outcome = Outcome()
    rng = random.Random(seed)
    queue = iter(kinds)
    new_items = list(new_items)
    analysis_ids: list[int] = []

    async def one(client: httpx.AsyncClient, kind: str) -> tuple[str, httpx.Response]:
        """(the kind actually sent, its response): reads of analyses fall back to a list before any exists."""
        if kind == "analyze":
            photo = rng.choice(analyze_pool)
            response = await client.post("/v1/analyze", files=photo.upload())
            if response.status_code in (200, 201):
                analysis_ids.append(response.json()["id"])
                outcome.analyses.append((photo.sha256, response.status_code, response.json()["id"]))
            return kind, response
        if kind == "search_item":
            return kind, await client.post("/v1/search", json={"item_id": rng.choice(item_ids), "top_k": 10})
        if kind == "search_upload":
            return kind, await client.post("/v1/search", files=rng.choice(search_pool).upload(), data={"top_k": "10"})
        if kind == "get_analysis" and analysis_ids:
            return kind, await client.get(f"/v1/analyses/{rng.choice(analysis_ids)}")
        if kind in ("get_analysis", "list_analyses"):
            return "list_analyses", await client.get("/v1/analyses", params={"label": rng.choice(LABELS), "limit": 20})
        if kind == "list_items":
            return kind, await client.get("/v1/items", params={"category": rng.choice(CATEGORIES), "limit": 20})
        if kind == "get_item":
            return kind, await client.get(f"/v1/items/{rng.choice(item_ids)}")
        if kind == "add_item" and new_items:
            photo = new_items.pop()
            response = await client.post("/v1/items", files=photo.upload(),
                                         data={"attributes": '{"origin": "load-test"}'})
            if response.status_code in (200, 201):
                item_ids.append(response.json()["id"])
                outcome.items.append((photo.sha256, response.status_code, response.json()["id"]))
            return kind, response
        return "health", await client.get("/v1/health")

    async def worker(client: httpx.AsyncClient) -> None:
        for kind in queue:
            start = time.perf_counter()
            try:
                kind, response = await one(client, kind)
                status: int | str = response.status_code
                if status >= 500 and len(outcome.errors) < 10:
                    outcome.errors.append(f"{kind} -> {status}: {response.text[:300]}")
            except httpx.TransportError as exc:
                status = type(exc).__name__
                if len(outcome.errors) < 10:
                    outcome.errors.append(f"{kind} -> {status}: {exc}")
            outcome.requests.append((kind, status, time.perf_counter() - start))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    auth = {"Authorization": f"Bearer {token}"}
    async with contextlib.AsyncExitStack() as stack:
        pool = [await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=600, limits=limits,
                                                                  headers=auth)) for url in urls]
        start = time.perf_counter()
        await asyncio.gather(*(worker(pool[i % len(pool)]) for i in range(clients)))
        return outcome, time.perf_counter() - start


def seeded_item_ids(url: str, token: str) -> list[int]:
    ids, offset = [], 0
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            page = client.get("/v1/items", params={"limit": 100, "offset": offset}).json()
            ids += [i["id"] for i in page["items"]]
            offset += 100
            if offset >= page["total"]:
                return ids


def report_latency(outcome: Outcome, wall_s: float) -> bool:
    """Prints the figures; True when no request failed with a 5xx or a transport error."""
    n = len(outcome.requests)
    print(f"\n{n} requests in {wall_s:.1f} s: {n / wall_s:.1f} requests/s")
    by_kind: dict[str, list[float]] = defaultdict(list)
    codes: dict[str, Counter] = defaultdict(Counter)
    for kind, status, seconds in outcome.requests:
        by_kind[kind].append(seconds)
        codes[kind][status] += 1
        if kind == "analyze" and status in ANALYZE_STATUS:  # a fresh analysis and a history answer differ 100-fold
            by_kind[ANALYZE_STATUS[status]].append(seconds)
    print(f"{'kind':<17}{'n':>5}  {'latency':<48}status codes")
    for kind in ["analyze", *ANALYZE_STATUS.values(), *(k for k in MIX if k != "analyze")]:
        if by_kind[kind]:
            print(f"{kind:<17}{len(by_kind[kind]):>5}  {percentiles_ms(by_kind[kind], (50, 95, 99)):<48}"
                  f"{dict(sorted(codes[kind].items(), key=str)) if kind in codes else ''}")
    overall = Counter(status for _, status, _ in outcome.requests)
    print(f"{'all':<17}{n:>5}  {percentiles_ms([s for _, _, s in outcome.requests], (50, 95, 99)):<48}"
          f"{dict(sorted(overall.items(), key=str))}")
    slow = sum(s > 1.0 for s in by_kind[ANALYZE_STATUS[200]])
    print(f"reused answers slower than 1 s: {slow} (sent while another request was analysing the same photo: they "
          f"wait in the model queue, then return the row it stored)")
    failed = sum(c for status, c in overall.items() if not isinstance(status, int) or status >= 500)
    if failed:
        print(f"\nFAILED: {failed} requests answered 5xx or lost their connection; first ones:")
        for error in outcome.errors:
            print(f"  {error}")
    return not failed


def check_integrity(db_url: str, outcome: Outcome, seeded: int) -> bool:
    """Compares the database (read directly, after the run) with what the API returned; prints the differences."""
    problems = []
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(AnalysisRecord.id, AnalysisRecord.sha256, AnalysisRecord.models_key)).all()
        items = dict(conn.execute(select(Item.id, Item.sha256)).all())
        item_count = conn.scalar(select(func.count()).select_from(Item))
    engine.dispose()
    analysed = {sha for sha, _, _ in outcome.analyses}
    stored = {row.id: row.sha256 for row in rows}
    duplicates = {k: c for k, c in Counter((r.sha256, r.models_key) for r in rows).items() if c > 1}
    if duplicates:
        problems.append(f"{len(duplicates)} (sha256, models_key) pairs stored more than once: {list(duplicates)[:3]}")
    if len(rows) != len(analysed):
        problems.append(f"{len(rows)} analyses rows for {len(analysed)} distinct photos analysed")
    if set(stored.values()) != analysed:
        problems.append(f"photos analysed but not stored: {len(analysed - set(stored.values()))}; stored but never "
                        f"analysed: {len(set(stored.values()) - analysed)}")
    wrong = [(sha, i) for sha, _, i in outcome.analyses if stored.get(i) != sha]
    if wrong:
        problems.append(f"{len(wrong)} analysis ids returned by the API missing or holding another photo: {wrong[:3]}")
    created = Counter(sha for sha, status, _ in outcome.analyses if status == 201)
    if any(c != 1 for c in created.values()) or set(created) != analysed:
        problems.append(f"photos not created exactly once (201): {sum(c != 1 for c in created.values())} created "
                        f"more than once, {len(analysed - set(created))} never")
    added = {sha for sha, status, _ in outcome.items if status == 201}
    if item_count != seeded + len(added):
        problems.append(f"{item_count} items rows, expected {seeded} seeded + {len(added)} added")
    wrong_items = [(sha, i) for sha, _, i in outcome.items if items.get(i) != sha]
    if wrong_items:
        problems.append(f"{len(wrong_items)} item ids returned by the API missing or holding another photo")
    print(f"\ndatabase: {len(rows)} analyses rows for {len(analysed)} distinct photos "
          f"({len(outcome.analyses)} analyze answers); {item_count} items ({seeded} seeded + {len(added)} added)")
    print("integrity: ok" if not problems else "integrity: FAILED\n  " + "\n  ".join(problems))
    return not problems


@contextmanager
def database(url: str | None):
    """None (the server's own temporary SQLite file), or a fresh schema in the PostgreSQL database at `url`,
    dropped afterwards with the index files the server kept for it."""
    if url is None:
        yield None
        return
    import psycopg

    parts = make_url(url)
    dsn = f"host={parts.host} port={parts.port or 5432} user={parts.username} dbname={parts.database}" + (
        f" password={parts.password}" if parts.password else "")
    schema = f"fl_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    full = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    try:
        yield full
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        for kept in (index_path_for(full), stamp_path(index_path_for(full))):
            kept.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--items", type=int, default=200, help="catalogue items seeded (clothing-small train)")
    parser.add_argument("--photos", type=int, default=150, help="distinct photos the analyze requests draw from")
    parser.add_argument("--replicas", type=int, default=1, help="serve processes on the one database")
    parser.add_argument("--db", help="a PostgreSQL URL (a fresh schema is created in it and dropped); "
                                     "default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_flag(parser)
    args = parser.parse_args()
    if not DATASETS.is_dir():
        sys.exit(f"{DATASETS} not found: the load test needs ../shared/datasets beside the repository")
    kinds = plan(args.requests, args.seed)
    analyze_pool = [Photo.read(p) for p in street_photos(args.photos)]
    search_pool = [Photo.read(p) for p in sorted((DATASETS / "clothing-small" / "validation").glob("*/*.jpg"))[::7]]
    new_items = [Photo.read(p) for p in catalogue_images(kinds.count("add_item"), skip=args.items)]
    token = secrets.token_urlsafe(16)
    print(f"{load_note()} at the start")
    with tempfile.TemporaryDirectory(prefix="fashionlens-load-") as tmp, database(args.db) as db, ExitStack() as stack:
        env = {"FASHIONLENS_MEDIA_DIR": str(Path(tmp) / "media"), "FASHIONLENS_MAX_QUEUE": str(2 * args.clients)}
        for i in range(args.replicas):
            (Path(tmp) / f"replica{i}").mkdir()
        first = stack.enter_context(running_service(catalogue_images(args.items), db=db, token=token,
                                                    folder=Path(tmp) / "replica0", env=env))
        services = [first] + [stack.enter_context(running_service([], db=first.db, token=token,
                                                                  folder=Path(tmp) / f"replica{i}", env=env))
                              for i in range(1, args.replicas)]
        item_ids = seeded_item_ids(first.url, token)
        print(f"{len(services)} service(s) started, seeded with {len(item_ids)} items in {first.startup_s:.1f} s "
              f"({make_url(first.db).get_backend_name()}); {args.clients} clients, {args.requests} requests: "
              f"{dict(Counter(kinds))}")
        outcome, wall_s = asyncio.run(run_load([s.url for s in services], kinds, args.clients, token, analyze_pool,
                                               search_pool, new_items, list(item_ids), args.seed))
        print(f"{load_note()} at the end")
        stack.close()  # the servers stop here: nothing more is written
        served = report_latency(outcome, wall_s)
        if not served:
            for service in services:
                print(f"\nserver log {service.url} (last lines):\n{service.log_tail()}")
        intact = check_integrity(first.db, outcome, len(item_ids))
        if args.json:
            statuses = Counter(str(status) for _, status, _ in outcome.requests)
            args.json.write_text(json.dumps({
                "database": make_url(first.db).get_backend_name(), "replicas": args.replicas,
                "clients": args.clients, "requests": len(outcome.requests), "wall_s": round(wall_s, 2),
                "requests_per_s": round(len(outcome.requests) / wall_s, 2), "statuses": dict(statuses),
                "served_without_5xx": served, "rows_exact": intact}, indent=2))
        if args.record:
            failed = sum(not isinstance(status, int) or status >= 500 for _, status, _ in outcome.requests)
            replicas = f", {args.replicas} replicas" if args.replicas > 1 else ""
            record("service-load", area="Service", title="The service under load",
                   data=f"{args.clients} concurrent clients, {len(outcome.requests):,} mixed requests, "
                        f"{make_url(first.db).get_backend_name().replace('sqlite', 'SQLite')}{replicas}",
                   part="speed", issue=None, guide="guides/service.md",
                   figures=[{"figure": "Throughput", "value": round(len(outcome.requests) / wall_s, 1),
                             "unit": "requests/s"}, {"figure": "Answers 5xx", "value": failed}])
    sys.exit(0 if served and intact else 1)


if __name__ == "__main__":
    main()
