"""One photo analysed through the HTTP API, as a client sees it: p50/p90/p99 of `POST /v1/analyze` (multipart upload)
over distinct photos sent one at a time, the server's own `timings_ms` per stage (median), garments per photo, and,
as a second figure, the latency of a photo sent again (answered from the history, not analysed).

Starts a real `fashionlens serve` (uvicorn) on a free port with a temporary SQLite catalogue seeded with --items
clothing-small train photos (samples/clothing without the datasets); the photos are colorful-fashion street photos
(clothing-small validation without them). The issue's target: p50 at most 200 ms on this 2-core machine.

    .venv/bin/python benchmarks/service_latency.py [--items 200] [--photos 100] [--url http://127.0.0.1:8000]
        [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from _shared import DATASETS
from record import add_flag, record

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "clothing"
TARGET_P50_MS = 200.0


def catalogue_images(n: int, skip: int = 0) -> list[Path]:
    """n clothing-small train photos in a fixed random order (all classes), after the first `skip` of that order;
    samples/clothing when the datasets are absent."""
    train = DATASETS / "clothing-small" / "train"
    if not train.is_dir():
        return sorted(SAMPLES.glob("*.jpg"))[skip:skip + n]
    files = sorted(train.glob("*/*.jpg"))
    random.Random(0).shuffle(files)
    return files[skip:skip + n]


def street_photos(n: int) -> list[Path]:
    """n photos with distinct bytes: colorful-fashion street photos, else clothing-small validation photos."""
    folder = DATASETS / "colorful-fashion" / "JPEGImages"
    files = sorted(folder.glob("*.jpg")) if folder.is_dir() else sorted((DATASETS / "clothing-small" / "validation")
                                                                       .glob("*/*.jpg"))
    if not files:
        sys.exit(f"no photos under {DATASETS}: the benchmark needs ../shared/datasets beside the repository")
    chosen, seen = [], set()
    for path in files:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        if sha not in seen:
            seen.add(sha)
            chosen.append(path)
        if len(chosen) == n:
            break
    return chosen


def upload(path: Path) -> dict:
    """httpx `files=` for one photo in the field `file`."""
    return {"file": (path.name, path.read_bytes(), "image/jpeg")}


def percentiles_ms(seconds: list[float], ps: tuple[int, ...]) -> str:
    if not seconds:
        return "no samples"
    values = np.percentile(np.array(seconds) * 1000, ps)
    return "  ".join(f"p{p} {v:7.1f} ms" for p, v in zip(ps, values, strict=True))


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


@dataclass(frozen=True)
class RunningService:
    url: str
    db: str  # the SQLAlchemy URL the server uses
    log: Path  # the server's stdout and stderr
    startup_s: float  # process start to the first healthy answer (model loading and seeding included)
    pid: int = 0  # the server process

    def memory_mb(self) -> str:
        """The server's resident memory now and at its peak (Linux /proc)."""
        status = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines())
        rss, peak = (int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
        return f"RSS {rss:.0f} MB (peak {peak:.0f} MB)"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_service(seed: list[Path], db: str | None = None, token: str | None = None, folder: Path | None = None,
                    log_level: str = "warning", timeout_s: float = 900, env: dict[str, str] | None = None):
    """`fashionlens serve` in a subprocess on a free port, with its catalogue seeded, until the block ends.

    `db`: a SQLAlchemy URL (default: a SQLite file in `folder`). `folder` holds that file, the kept photos and the
    log; default: a temporary folder removed afterwards (give one to read the database once the server stopped).
    `env`: more environment variables (limits, a shared media folder); the rate limit is off unless it sets one. Stopped with SIGTERM, so uvicorn shuts down
    cleanly and the database is complete when the block ends."""
    with contextlib.ExitStack() as stack:
        folder = Path(folder or stack.enter_context(tempfile.TemporaryDirectory(prefix="fashionlens-serve-")))
        db = db or f"sqlite:///{folder}/catalog.db"
        port = _free_port()
        command = [str(Path(sys.executable).parent / "fashionlens"), "serve", "--db", db, "--port", str(port),
                   "--log-level", log_level]
        for path in seed:
            command += ["--seed", str(path)]
        extra = env or {}
        # no rate limit unless `env` sets one: these benchmarks measure speed (service_backpressure.py the limits)
        env = {**os.environ, "FASHIONLENS_MEDIA_DIR": str(folder / "media"), "FASHIONLENS_RATE_LIMIT": str(10**9)}
        for name in ("FASHIONLENS_API_TOKEN", "FASHIONLENS_READ_TOKENS", "FASHIONLENS_TOKEN_FILE"):
            env.pop(name, None)
        if token:
            env["FASHIONLENS_API_TOKEN"] = token
        env.update(extra)
        log = folder / "server.log"
        start = time.perf_counter()
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        service = RunningService(f"http://127.0.0.1:{port}", db, log, 0.0, process.pid)
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"fashionlens serve exited with {process.returncode} before it was healthy:\n"
                                       f"{service.log_tail()}")
                if time.perf_counter() - start > timeout_s:
                    raise RuntimeError(f"fashionlens serve not healthy after {timeout_s:.0f} s:\n{service.log_tail()}")
                try:
                    if httpx.get(f"{service.url}/v1/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            yield RunningService(service.url, db, log, time.perf_counter() - start, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def measure(url: str, photos: list[Path], warmup: Path, repeats: int) -> float:
    with httpx.Client(base_url=url, timeout=300) as client:
        try:
            health = client.get("/v1/health").raise_for_status().json()
        except httpx.HTTPError as exc:
            sys.exit(f"{url}/v1/health: no healthy fashionlens service there ({exc})")
        print(f"server {url}: {health['items']} catalogue items, {health['analyses']} stored analyses, "
              f"database {health['database']}")
        t = time.perf_counter()
        first = client.post("/v1/analyze", files=upload(warmup))
        first.raise_for_status()
        print(f"first request (warm-up, not counted): {(time.perf_counter() - t) * 1000:.0f} ms, "
              f"server total {first.json()['timings_ms']['total']:.0f} ms")

        latencies, server, garments, whole, statuses = [], [], [], 0, Counter()
        for path in photos:
            files = upload(path)
            t = time.perf_counter()
            response = client.post("/v1/analyze", files=files)
            elapsed = time.perf_counter() - t
            statuses[response.status_code] += 1
            if response.status_code != 201:  # 200: already in the history, not a fresh analysis
                continue
            body = response.json()
            latencies.append(elapsed)
            server.append(body["timings_ms"])
            garments.append(len(body["items"]))
            whole += any(g["whole_image"] for g in body["items"])
        reused = []
        for path in photos[:repeats]:
            files = upload(path)
            t = time.perf_counter()
            response = client.post("/v1/analyze", files=files)
            elapsed = time.perf_counter() - t
            if response.status_code == 200:
                reused.append(elapsed)
            statuses[f"again {response.status_code}"] += 1

    print(f"\nstatus codes: {dict(statuses)}")
    if not latencies:
        sys.exit("no photo was freshly analysed (all answered from the history or failed)")
    print(f"\nPOST /v1/analyze, {len(latencies)} distinct photos, one at a time, client side (upload to response):")
    print(f"  {percentiles_ms(latencies, (50, 90, 99))}  mean {np.mean(latencies) * 1000:.1f} ms")
    p50 = float(np.percentile(latencies, 50) * 1000)
    print(f"  target p50 <= {TARGET_P50_MS:.0f} ms: {'met' if p50 <= TARGET_P50_MS else 'NOT met'} "
          f"({p50 / TARGET_P50_MS:.2f}x the target)")
    stages = sorted({k for s in server for k in s}, key=lambda k: -np.median([s.get(k, 0.0) for s in server]))
    print("\nserver timings_ms, median per stage (over the photos that have the stage):")
    for stage in stages:
        values = [s[stage] for s in server if stage in s]
        print(f"  {stage:<12}{np.median(values):8.1f} ms  (p90 {np.percentile(values, 90):7.1f}, n {len(values)})")
    overhead = [c * 1000 - s["total"] for c, s in zip(latencies, server, strict=True)]
    print(f"  client minus server total (HTTP, multipart, hashing, history lookup and write, JSON): "
          f"median {np.median(overhead):.1f} ms")
    counts = Counter(garments)
    print(f"\ngarments per photo: mean {np.mean(garments):.2f}, median {np.median(garments):.0f}, "
          f"distribution {dict(sorted(counts.items()))}; photos described whole (nothing detected): {whole}")
    print(f"\nthe same photo again (answered from the history), {len(reused)} photos: "
          f"{percentiles_ms(reused, (50, 90, 99))}")
    if reused:
        print(f"ratio fresh p50 / reused p50: {p50 / (np.percentile(reused, 50) * 1000):.1f}x")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200, help="catalogue items seeded (clothing-small train)")
    parser.add_argument("--photos", type=int, default=100, help="distinct photos analysed")
    parser.add_argument("--repeats", type=int, default=30, help="photos sent a second time (history reuse)")
    parser.add_argument("--url", help="an already running service instead of starting one (--items is ignored)")
    add_flag(parser)
    args = parser.parse_args()
    if args.record and args.url:
        parser.error("--record measures a service it starts itself: drop --url")
    photos = street_photos(args.photos + 1)
    warmup, photos = photos[0], photos[1:]
    print(f"{load_note()} at the start")
    if args.url:
        measure(args.url.rstrip("/"), photos, warmup, args.repeats)
    else:
        with running_service(catalogue_images(args.items)) as service:
            print(f"service started and seeded in {service.startup_s:.1f} s")
            print(f"server memory after start and seeding: {service.memory_mb()}")
            p50 = measure(service.url, photos, warmup, args.repeats)
            print(f"server memory after {len(photos) + 1} analyses: {service.memory_mb()}")
    print(f"{load_note()} at the end")
    if args.record:
        record("service-latency", area="Service", title="One photo through the service",
               data=f"a real fashionlens serve with {args.items} clothing-small catalogue items; {len(photos)} "
                    "colorful-fashion street photos", part="speed", issue=None, guide="guides/service.md",
               figures=[{"figure": "POST /v1/analyze p50, client side", "value": round(p50, 1), "unit": "ms"}])


if __name__ == "__main__":
    main()
