"""What every catalogue job on Ray shares (`ray_ingest.py`: ingest; `pipeline/ray_analyze.py`: batch analysis).

A job is a Ray Data pipeline of two steps over rows of sources: `prepare` runs in tasks (reading, downloading,
hashing, decoding), then an actor pool runs the models, each actor loading them once. With a server database
(PostgreSQL) the actors write their batches themselves; with SQLite, a file only one machine can open, the
results flow back to the driver, which writes them alone. The driver joins or starts the cluster, checks that
every node reaches the database before any work, shows progress and stops after the current batch on request.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass

from fashionlens.progress import progress_bar


class RayJobError(ValueError):
    """A Ray job that cannot start as asked: no cluster there, no CPU left to decode, a database its workers
    cannot reach."""

DEFAULT_RAY_PORT = 6379
DECODE_MEMORY = 2**30  # a decoding task's worker: Python with torch (~600 MiB measured) and a batch in flight
ACTOR_MEMORY = 2 * 2**30  # a model actor: the models in PyTorch and ONNX Runtime (1.4-1.6 GiB measured)
REACH_TIMEOUT = 60  # seconds the workers get to connect to the database before the job is refused


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run. `address`: None starts a local Ray on this machine's CPUs; "auto", "HOST:PORT"
    or "ray://HOST:PORT" joins a running cluster. `actors`: model actors (default: one per two CPUs of the
    cluster), each holding `actor_cpus` CPUs; each reading and decoding task holds `task_cpus`, and they get the
    CPUs the actors leave. Fractions share a core (0.5 + 0.5: a model actor and a decoding task on one core, as
    the single-process ingest shares its cores). `runtime_env`: Ray's runtime environment for the tasks and
    actors (e.g. {"env_vars": {...}})."""

    address: str | None = None
    actors: int | None = None
    actor_cpus: float = 1.0
    task_cpus: float = 1.0
    runtime_env: dict | None = None

    def actor_count(self, cpus: float) -> int:
        """The model actors on a cluster of `cpus` CPUs; a RayJobError when they would leave no CPU to decode
        (Ray would wait for one forever)."""
        actors = self.actors or max(1, int(cpus // 2))
        if actors * self.actor_cpus + self.task_cpus > cpus:
            raise RayJobError(f"{actors} model actors of {self.actor_cpus:g} CPUs and a decoding task of "
                               f"{self.task_cpus:g} need {actors * self.actor_cpus + self.task_cpus:g} CPUs; the Ray "
                               f"cluster has {cpus:g}: use fewer --actors or smaller --actor-cpus/--task-cpus")
        return actors

    @property
    def threads(self) -> int:
        """ONNX Runtime threads in each model actor: the CPUs it holds."""
        return max(1, round(self.actor_cpus))


@dataclass(frozen=True)
class RayJob:
    """One job's two steps. `prepare(batch, **prepare_kwargs)` runs in tasks; `actor(**actor_kwargs)` is built
    once per actor of the pool and called on each prepared batch (dicts of numpy columns)."""

    rows: list[dict]
    prepare: Callable[..., dict]
    prepare_kwargs: dict
    actor: type
    actor_kwargs: dict
    batch_size: int


def workers_write(url: str) -> bool:
    """The actors write to a server database themselves; SQLite is written by the driver alone."""
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name() != "sqlite"


def run_on_ray(make_job: Callable[[], RayJob], options: RayOptions, *, url: str | None, label: str, total: int,
               progress: bool, stop: threading.Event | None, collect: Callable[[dict], None]) -> bool:
    """Run the job `make_job()` builds once the cluster answers (so a wrong address is reported before any model
    loads), handing each result batch to `collect` on the driver; True when `stop` ended it early. `url`: the
    database the actors open (checked from every node first), or None. The progress bar counts `total` rows, of
    which those not in the job's rows were done before."""
    import ray

    started = connect(options.address)
    try:
        if url is not None:
            check_workers_reach(url, options.runtime_env)
        with closing(_results(make_job(), options, total, progress, label)) as results:  # closed: Ray Data stops
            for batch in results:
                collect(batch)
                if stop is not None and stop.is_set():
                    return True
        return False
    finally:
        if started:
            ray.shutdown()


def _results(job: RayJob, options: RayOptions, total: int, progress: bool, label: str) -> Iterator[dict]:
    import ray

    actors = options.actor_count(ray.cluster_resources().get("CPU", 0))
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts rows, not blocks
    dataset = (ray.data.from_items(job.rows)
               .map_batches(job.prepare, fn_kwargs=job.prepare_kwargs,
                            # its memory reservation, unlike the actors', also keeps Ray Data from fusing the
                            # preparation into the actors: it scales apart, on the CPUs they leave
                            batch_size=job.batch_size, num_cpus=options.task_cpus, memory=DECODE_MEMORY,
                            runtime_env=options.runtime_env)
               .map_batches(job.actor, fn_constructor_kwargs=job.actor_kwargs, batch_size=job.batch_size,
                            num_cpus=options.actor_cpus, memory=ACTOR_MEMORY,
                            compute=ray.data.ActorPoolStrategy(size=actors), runtime_env=options.runtime_env))
    with progress_bar(label, total, progress) as advance:
        advance(total - len(job.rows))
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy") if job.rows else ():
            yield batch
            advance(len(batch["source"]))


def _reach_database(url: str) -> str | None:
    """Run on a worker: None if it can open the database, else why not. A SQLite file must exist already
    (connecting would create an empty one on a node that does not share it)."""
    from pathlib import Path

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return f"no such file {parsed.database} on this node (a SQLite catalogue serves a local Ray only)"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect is the answer, whatever the driver raises
        return str(getattr(exc, "orig", None) or exc).strip()
    finally:
        engine.dispose()
    return None


def connect(address: str | None) -> bool:
    """Join the cluster at `address`, or start a local Ray; False when this process is in one already (the
    caller's own `ray.init`)."""
    import ray

    if address and address != "auto":
        _check_listening(address)
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayJobError(f"--ray-address {address}: cannot join the Ray cluster ({exc})") from None
    return True


def _check_listening(address: str) -> None:
    """A clear error at once for an address nothing listens on (Ray itself retries for a minute or more)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:
        host, port = port, str(DEFAULT_RAY_PORT)
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        raise RayJobError(f"--ray-address {address}: no Ray cluster answers there ({exc}); start one with "
                           f"`ray start --head`, or leave the option out for a local Ray") from None


def check_workers_reach(url: str, runtime_env: dict | None) -> None:
    """Before any work: every node of the cluster opens the database the actors will read or write."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from sqlalchemy.engine import make_url

    reach = ray.remote(num_cpus=0)(_reach_database)
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
    answers = ray.get([reach.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                                     runtime_env=runtime_env)
                       .remote(url) for node in nodes], timeout=REACH_TIMEOUT)
    for node, answer in zip(nodes, answers, strict=True):
        if answer is not None:
            raise RayJobError(f"the Ray workers cannot reach the database {make_url(url)!r} (node "
                               f"{node[:12]}): {answer}; nothing was done")
