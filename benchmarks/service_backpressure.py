"""Back-pressure, bounded against unbounded, in one run: --clients concurrent clients each analyse distinct photos
(every request runs the models) against a service whose model queue is bounded (FASHIONLENS_MAX_QUEUE=--queue)
and then against the same service with a queue too long to fill (the behaviour before the bound). A client told
503 waits its Retry-After and sends the same photo again, as a polite client does, so both runs analyse every
photo; an accepted request's latency is that of its last try.

Prints, for each: accepted requests (201) with their p50/p95/p99 latency, the 503s and whether each carried
Retry-After, and any 5xx that is not a 503 (a failure). Then a burst of --burst analyse requests from one client
(one token) against the bounded service's rate limit (FASHIONLENS_RATE_LIMIT=--rate a minute): the 429s past
the limit, each with Retry-After. The issue's target: with the bound, p99 of accepted requests at most 2 s and
nothing 500.

    .venv/bin/python benchmarks/service_backpressure.py [--clients 32] [--requests 192] [--queue 4] [--rate 60]
        [--json out.json] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from record import add_flag, record
from service_latency import catalogue_images, load_note, percentiles_ms, running_service, street_photos

TARGET_P99_S = 2.0
UNBOUNDED = 100_000


async def load(url: str, token: str, photos: list[Path], clients: int) -> dict:
    """Each client takes the next photo until none is left; a 503 costs its Retry-After, then the photo again."""
    todo = iter(photos)
    accepted, busy, other = [], [], Counter()
    retry_after_missing = 0

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal retry_after_missing
        for path in todo:
            while True:
                start = time.perf_counter()
                response = await client.post("/v1/analyze",
                                             files={"file": (path.name, path.read_bytes(), "image/jpeg")})
                seconds = time.perf_counter() - start
                if response.status_code != 503:
                    break
                busy.append(seconds)
                wait = response.headers.get("Retry-After")
                retry_after_missing += wait is None
                await asyncio.sleep(float(wait or 1))
            if response.status_code in (200, 201):
                accepted.append(seconds)
            else:
                other[response.status_code] += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        wall = time.perf_counter() - start
    return {"accepted": len(accepted), "accepted_p50_s": _p(accepted, 50), "accepted_p95_s": _p(accepted, 95),
            "accepted_p99_s": _p(accepted, 99), "busy_503": len(busy), "busy_503_p99_s": _p(busy, 99),
            "busy_503_without_retry_after": retry_after_missing, "other_statuses": dict(other), "wall_s": round(wall, 1),
            "_accepted": accepted, "_busy": busy}


def _p(values: list[float], q: int) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


async def burst(url: str, token: str, n: int) -> dict:
    """n analyse requests at once from one client; cheap ones (an empty JSON body: 422 once let in)."""
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        answers = await asyncio.gather(*(client.post("/v1/analyze", json={}) for _ in range(n)))
    codes = Counter(a.status_code for a in answers)
    limited = [a for a in answers if a.status_code == 429]
    return {"requests": n, "statuses": dict(codes), "with_retry_after": sum("retry-after" in a.headers for a in limited)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=192, help="distinct photos sent to each service")
    parser.add_argument("--queue", type=int, default=4, help="FASHIONLENS_MAX_QUEUE of the bounded service")
    parser.add_argument("--rate", type=int, default=60, help="FASHIONLENS_RATE_LIMIT of the burst")
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--items", type=int, default=50, help="catalogue items seeded")
    parser.add_argument("--json", type=Path)
    add_flag(parser)
    args = parser.parse_args()
    photos = street_photos(2 * args.requests)  # distinct photos for each run: every request is a fresh analysis
    token = secrets.token_urlsafe(16)
    results = {}
    print(f"{load_note()} at the start; {args.clients} clients, {args.requests} distinct photos per service")
    for name, queue, share in (("bounded", args.queue, photos[:args.requests]),
                               ("unbounded", UNBOUNDED, photos[args.requests:])):
        env = {"FASHIONLENS_MAX_QUEUE": str(queue)}
        with running_service(catalogue_images(args.items), token=token, env=env) as service:
            client = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=300)
            client.post("/v1/analyze", files={"file": ("warm.jpg", photos[-1].read_bytes(), "image/jpeg")})
            result = asyncio.run(load(service.url, token, share, args.clients))
            result["metrics_queue_limit"] = next(line for line in client.get("/metrics").text.splitlines()
                                                 if line.startswith("fashionlens_model_queue_limit "))
            client.close()
        results[name] = result
        print(f"\n{name} queue (FASHIONLENS_MAX_QUEUE={queue}), {result['wall_s']} s:")
        print(f"  accepted {result['accepted']:>4}  {percentiles_ms(result.pop('_accepted'), (50, 95, 99))}")
        print(f"  503 busy {result['busy_503']:>4}  {percentiles_ms(result.pop('_busy'), (50, 99))}  "
              f"without Retry-After: {result['busy_503_without_retry_after']}")
        print(f"  other statuses: {result['other_statuses'] or 'none'}")
    env = {"FASHIONLENS_RATE_LIMIT": str(args.rate), "FASHIONLENS_MAX_QUEUE": str(args.queue)}
    with running_service([], token=token, env=env) as service:
        results["burst"] = asyncio.run(burst(service.url, token, args.burst))
    print(f"\nburst of {args.burst} analyse requests from one client, FASHIONLENS_RATE_LIMIT={args.rate}: "
          f"{results['burst']['statuses']}, every 429 with Retry-After: "
          f"{results['burst']['with_retry_after'] == results['burst']['statuses'].get(429, 0)}")
    bounded = results["bounded"]
    failed = any(r["other_statuses"].get(500) for r in (results["bounded"], results["unbounded"]))
    met = (bounded["accepted_p99_s"] or 0) <= TARGET_P99_S and not bounded["busy_503_without_retry_after"] and not failed
    print(f"\ntarget: bounded p99 of accepted <= {TARGET_P99_S} s, every 503 with Retry-After, no 500: "
          f"{'met' if met else 'NOT met'} (bounded p99 {bounded['accepted_p99_s']} s, unbounded "
          f"{results['unbounded']['accepted_p99_s']} s)")
    print(f"{load_note()} at the end")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.record:
        record_figures(args, results)
    sys.exit(0 if met else 1)


def record_figures(args, results: dict) -> None:
    def p99_ms(name: str):
        seconds = results[name]["accepted_p99_s"]
        return round(seconds * 1000) if seconds is not None else "none accepted"

    record("service-backpressure", area="Service", title=f"Back-pressure under {args.clients} clients",
           data=f"{args.clients} clients analysing {2 * args.requests} distinct street photos; a {args.burst}-request "
                f"burst at FASHIONLENS_RATE_LIMIT={args.rate}", part="speed", issue=None, guide="guides/service.md",
           figures=[{"figure": f"Accepted requests p99, bounded queue (FASHIONLENS_MAX_QUEUE={args.queue})",
                     "value": p99_ms("bounded"), "unit": "ms"},
                    {"figure": "Accepted requests p99, unbounded queue", "value": p99_ms("unbounded"), "unit": "ms"},
                    {"figure": f"Burst of {args.burst} from one token answered 429",
                     "value": results["burst"]["statuses"].get(429, 0)}])


if __name__ == "__main__":
    main()
