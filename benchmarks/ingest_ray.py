"""Images/s of `fashionlens ingest --engine ray` against the single-process ingest on the same photos in one run,
and the per-stage costs behind the README's table of what bounds 10 million images on N machines.

(a) `Catalog.ingest` in this process (two decode threads; ONNX Runtime on every core);
(b) the same on a local Ray of 1 worker: Ray and its processes pinned to one core (os.sched_setaffinity, which
    they inherit), one model actor and the decoding tasks sharing it (0.5 + 0.5 CPU);
(c) Ray with 2 workers, the whole machine: two cores, two model actors (0.5 CPU each) and decoding tasks;
(d) Ray on the whole machine with the default settings (one actor of 1 CPU, decoding tasks of 1 CPU);
(e) with --postgres: (c) into PostgreSQL, where the actors write (the others write SQLite from the driver).
The Ray runs time `Catalog.ingest` with Ray already started (a cluster is up before a job), the workers'
imports and the actors' model loading included. Each way runs on a fifth of the photos, then on all of them (fresh
catalogues): the difference gives its rate past the start-up. Per stage, on one core each: read + hash + decode + colours (a Ray task's work), the models
(an actor's), a batch of 32 written to the store, and the FAISS index rebuilt from the store.

    .venv/bin/python benchmarks/ingest_ray.py [--images 1000] [--postgres postgresql+psycopg://postgres@127.0.0.1/test]
        [--record]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from _shared import dataset, timed
from record import add_flag, record

TARGET = 10_000_000


def run(paths: list[Path], db, options=None) -> float:
    """Seconds for `Catalog.ingest` into a fresh catalogue."""
    from fashionlens.catalog import Catalog

    with Catalog.open(db) as catalog:
        seconds: dict[str, float] = {}
        with timed(seconds, "run"):
            report = catalog.ingest(paths, ray=options)
    assert len(report.added) + len(report.present) == len(paths), report.failed[:3]
    return seconds["run"]


def ray_runs(paths: list[Path], dbs, cores: int, options) -> tuple[float, float]:
    """Seconds for a fifth of `paths` and for all of them on a local Ray confined to `cores` cores."""
    import ray

    every = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(every)[:cores])
    try:
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        return run(paths[:len(paths) // 5], next(dbs), options), run(paths, next(dbs), options)
    finally:
        ray.shutdown()
        os.sched_setaffinity(0, every)


def postgres_schema(base: str) -> tuple[str, callable]:
    """A fresh schema in the database at `base`, and a function that drops it."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    dsn = f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}"
    schema = f"fl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop():
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    return f"{base}?options=-csearch_path%3D{schema}", drop


def stages(paths: list[Path], db: str) -> dict[str, float]:
    """Milliseconds per image of each stage on one core (one thread each)."""
    import torch
    from threadpoolctl import threadpool_limits

    from fashionlens.attributes import DEFAULT_MODELS, load_attribute_models
    from fashionlens.catalog import Catalog
    from fashionlens.catalog.ingest import Analyser
    from fashionlens.embeddings import default_embedder

    embedder = default_embedder()
    analyser = Analyser(embedder, load_attribute_models(DEFAULT_MODELS), threads=1)
    dataset_ = analyser.decoder.dataset(paths)
    ms: dict[str, float] = {}
    torch.set_num_threads(1)
    with threadpool_limits(1):
        start = time.perf_counter()
        decoded = [dataset_[i] for i in range(len(paths))]
        ms["decode"] = 1000 * (time.perf_counter() - start) / len(paths)
        good = [(i, item) for i, item, reason in decoded if reason is None]
        start = time.perf_counter()
        batches = [analyser.analyse([i for i, _ in good[k:k + 32]], [item for _, item in good[k:k + 32]])
                   for k in range(0, len(good), 32)]
        ms["model"] = 1000 * (time.perf_counter() - start) / len(good)
    items = [item for batch in batches for item in batch.items([str(p) for p in paths], [{}] * len(paths))]
    with Catalog.open(db, embedder=embedder) as catalog:
        start = time.perf_counter()
        for k in range(0, len(items), 32):
            catalog.store.add(items[k:k + 32], embedder.key, embedder.dim)
        ms["write"] = 1000 * (time.perf_counter() - start) / len(items)
        start = time.perf_counter()
        catalog.reindex()
        ms["index"] = 1000 * (time.perf_counter() - start) / len(items)
    return ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--postgres", help="SQLAlchemy URL of a PostgreSQL database (a schema is made and dropped)")
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.ray_jobs import RayOptions

    every = sorted(dataset("clothing-small").glob("train/*/*.jpg"))
    paths = every[::max(1, len(every) // args.images)][:args.images]  # all classes, not the first folder's
    cores = len(os.sched_getaffinity(0))
    seconds: dict[str, tuple[float, float]] = {}
    postgres = [] if not args.postgres else [postgres_schema(args.postgres) for _ in range(3)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dbs = (str(Path(tmp) / f"{i}.db") for i in range(100))
            run(paths[:8], next(dbs))  # ONNX export and warm-up
            seconds["(a) single process"] = run(paths[:len(paths) // 5], next(dbs)), run(paths, next(dbs))
            half = RayOptions(actors=1, actor_cpus=0.5, task_cpus=0.5)  # a model actor and decoding on one core
            seconds["(b) Ray, 1 worker (1 core)"] = ray_runs(paths, dbs, 1, half)
            two = RayOptions(actors=2, actor_cpus=0.5, task_cpus=0.5)
            seconds[f"(c) Ray, 2 workers ({cores} cores)"] = ray_runs(paths, dbs, cores, two)
            seconds[f"(d) Ray, defaults ({cores} cores)"] = ray_runs(paths, dbs, cores, RayOptions())
            if postgres:
                seconds["(e) (c) into PostgreSQL"] = ray_runs(paths, iter(url for url, _ in postgres), cores, two)
            ms = stages(paths[:300], postgres[2][0] if postgres else next(dbs))
    finally:
        for _, drop in postgres:
            drop()
    n, fifth = len(paths), len(paths) // 5
    rates = {k: (n / s[1], (n - fifth) / (s[1] - s[0])) for k, s in seconds.items()}
    single = rates["(a) single process"]
    print(f"{n} clothing-small photos, batch 32, {cores} cores; images/s over the whole run, and past the start-up")
    for name, (whole, past) in rates.items():
        print(f"{name:<34}: {whole:6.1f} images/s ({whole / single[0]:4.2f}x)   past the start-up {past:6.1f} "
              f"({past / single[1]:4.2f}x)   start-up {seconds[name][1] - n / past:5.1f} s")
    print(f"\nper image, one core: decode {ms['decode']:.1f} ms, models {ms['model']:.1f} ms, store write "
          f"{ms['write']:.2f} ms ({'PostgreSQL' if args.postgres else 'SQLite'}, batches of 32), "
          f"index rebuild {ms['index']:.3f} ms")
    per_core = 1000 / (ms["decode"] + ms["model"])
    print(f"\n{TARGET:,} images: hours per bound")
    print(f"{'machines x cores':<18}{'decode + models':>16}{'store writes':>14}{'index rebuild':>15}")
    for machines in (1, 10, 100):
        for machine_cores in (2, 16):
            compute = TARGET / (per_core * machines * machine_cores) / 3600
            print(f"{f'{machines} x {machine_cores}':<18}{compute:>16.2f}{TARGET * ms['write'] / 1000 / 3600:>14.2f}"
                  f"{TARGET * ms['index'] / 1000 / 3600:>15.2f}")
    if args.record:
        ratio = rates[f"(d) Ray, defaults ({cores} cores)"][0] / single[0]
        record("ingest-ray", area="Scale-out", title="Ingest on Ray (machine loaded by other jobs: ratios only)",
               data=f"{n:,} clothing-small photos into a fresh catalogue, each way, one run", part="speed", issue=None,
               guide="guides/ray.md",
               figures=[{"figure": f"Ray with its defaults on {cores} cores against single-process ingest",
                         "value": round(ratio, 2), "unit": "x"}])


if __name__ == "__main__":
    main()
