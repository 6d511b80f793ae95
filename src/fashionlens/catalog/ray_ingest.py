"""`Catalog.ingest` on a Ray cluster (Ray Data): the single-process ingest's own steps, spread over machines.

The sources not stored yet become a Ray dataset. Tasks read or download, hash and decode them (`read_source`,
`Decoder`: the same code as the single-process ingest); an actor pool runs the models (`Analyser.analyse`), each
actor loading them once, with ONNX Runtime on as many threads as it holds CPUs. With a server database
(PostgreSQL) the actors write their batches to the store themselves (`Store.add`, idempotent by image hash, one
transaction a batch); with SQLite, a file only one machine can open, the results flow back to the driver, which
writes them alone. The driver shows progress, collects the report and catches the FAISS index up at the end.
"""

from __future__ import annotations

import json
import logging
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashionlens.catalog.ingest import Analyser, Decoder, read_source
from fashionlens.catalog.store import CatalogError, NewItem, Store
from fashionlens.data.samples import SkippedInput
from fashionlens.fetch import FetchPolicy
from fashionlens.progress import progress_bar

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
        """The model actors on a cluster of `cpus` CPUs; a CatalogError when they would leave no CPU to decode
        (Ray would wait for one forever)."""
        actors = self.actors or max(1, int(cpus // 2))
        if actors * self.actor_cpus + self.task_cpus > cpus:
            raise CatalogError(f"{actors} model actors of {self.actor_cpus:g} CPUs and a decoding task of "
                               f"{self.task_cpus:g} need {actors * self.actor_cpus + self.task_cpus:g} CPUs; the Ray "
                               f"cluster has {cpus:g}: use fewer --actors or smaller --actor-cpus/--task-cpus")
        return actors


def ingest_on_ray(catalog, names: list[str], given: list[dict], options: RayOptions, *, classifier, colors: bool,
                  batch_size: int, policy: FetchPolicy | None, progress: bool, stop: threading.Event | None):
    """`Catalog.ingest`'s work on Ray; the same `AddReport`."""
    import ray

    from fashionlens.catalog.catalog import AddReport

    report = AddReport()
    stored = catalog.store.known_sources(names)  # a rerun reads and downloads none of these
    report.present.update({name: stored[name] for name in dict.fromkeys(names) if name in stored})
    todo = [i for i, name in enumerate(names) if name not in stored]
    workers_write = catalog.store.engine.dialect.name != "sqlite"
    started = _connect(options.address)
    try:
        if workers_write:
            _check_workers_reach(catalog.store.url, options.runtime_env)
        embedder = catalog.embedder
        actors = options.actor_count(ray.cluster_resources().get("CPU", 0))
        threads = max(1, round(options.actor_cpus))
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts images, not blocks
        rows = [{"source": names[i], "attributes": json.dumps(given[i])} for i in todo]
        decoder = Analyser.decoder_for(embedder, classifier, colors)
        dataset = (ray.data.from_items(rows)
                   .map_batches(_decode, fn_kwargs={"decoder": decoder, "policy": policy or FetchPolicy.from_env()},
                                # its memory reservation, unlike the actors', also keeps Ray Data from fusing
                                # the decoding into the actors: it scales apart, on the CPUs they leave
                                batch_size=batch_size, num_cpus=options.task_cpus, memory=DECODE_MEMORY,
                                runtime_env=options.runtime_env)
                   .map_batches(_Analyse, fn_constructor_kwargs={
                       "models": (embedder, classifier, colors, batch_size), "threads": threads,
                       "url": catalog.store.url if workers_write else None},
                                batch_size=batch_size, num_cpus=options.actor_cpus, memory=ACTOR_MEMORY,
                                compute=ray.data.ActorPoolStrategy(size=actors),
                                runtime_env=options.runtime_env))
        with progress_bar("ingest", len(names), progress) as advance:
            advance(len(names) - len(todo))
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy") if todo else ():
                _collect(catalog, batch, embedder.key, report)
                advance(len(batch["source"]))
                if stop is not None and stop.is_set():
                    report.interrupted = True
                    break
    finally:
        if started:
            ray.shutdown()
    catalog.catch_up_index()
    return report


def _collect(catalog, batch: dict, key: str, report) -> None:
    """One batch of the actors' results into the report; with SQLite, stored here first."""
    statuses, ids = [str(s) for s in batch["status"]], [int(i) for i in batch["item_id"]]
    if "embedding" in batch:  # the driver writes: SQLite
        rows = [k for k, status in enumerate(statuses) if status == "analysed"]
        items = [NewItem(str(batch["sha256"][k]), str(batch["source"][k]), batch["embedding"][k],
                         json.loads(batch["attributes"][k]), json.loads(batch["predicted"][k]),
                         json.loads(batch["colors"][k])) for k in rows]
        added, existing = catalog._add(items, key)
        for k, (status, item_id) in zip(rows, stored_outcomes(items, added, existing)):
            statuses[k], ids[k] = status, item_id
    for source, status, item_id, reason in zip(batch["source"], statuses, ids, batch["reason"]):
        if status == "added":
            report.added.append(int(item_id))
        elif status == "present":
            report.present[str(source)] = int(item_id)
        else:
            report.failed.append(SkippedInput(str(source), str(reason)))


def stored_outcomes(items: list[NewItem], added: dict[str, int], existing: dict[str, int]) -> list[tuple[str, int]]:
    """("added", id) for the copy of an image that was stored now; ("present", id) for an image stored before, or
    a second copy of one stored now."""
    out, seen = [], set()
    for item in items:
        if item.sha256 in added and item.sha256 not in seen:
            seen.add(item.sha256)
            out.append(("added", added[item.sha256]))
        else:
            out.append(("present", added.get(item.sha256, existing.get(item.sha256, -1))))
    return out


# on the workers

def _decode(batch: dict, decoder: Decoder, policy: FetchPolicy) -> dict:
    """A Ray task: read or download, hash and decode each source, with the single-process ingest's own code.
    Rows that fail keep a zero input and their reason; they never fail the batch."""
    n = len(batch["source"])
    inputs = [np.zeros((n, 3, *p.input_size), np.float32) for p in decoder.preprocess]
    sha256, colors, reasons = [""] * n, ["[]"] * n, [""] * n
    with tempfile.TemporaryDirectory(prefix="fashionlens-ingest-") as spool:
        read = [read_source(str(s), Path(spool), str(k), policy) for k, s in enumerate(batch["source"])]
        dataset = decoder.dataset([Path(r[0]) if not isinstance(r, SkippedInput) else Path() for r in read])
        for k, result in enumerate(read):
            if isinstance(result, SkippedInput):
                reasons[k] = result.reason
                continue
            _, decoded, reason = dataset[k]
            if reason is not None:
                reasons[k] = reason
                continue
            sha256[k], colors[k] = decoded[0], json.dumps(decoded[2])
            for j, tensor in enumerate(decoded[1]):
                inputs[j][k] = tensor.numpy()
    return {**batch, "sha256": np.array(sha256), "colors": np.array(colors), "reason": np.array(reasons),
            **{f"input{j}": x for j, x in enumerate(inputs)}}


class _Analyse:
    """A Ray actor: the models, loaded once; each batch analysed, then stored here (`url`) or returned."""

    def __init__(self, models, threads: int, url: str | None):
        from fashionlens.runtime import small_ops_on_one_thread

        small_ops_on_one_thread()  # ONNX Runtime has the actor's CPUs; the small ops around it take one thread
        embedder, classifier, colors, batch_size = models
        self.analyser = Analyser(embedder, classifier, colors=colors, batch_size=batch_size, threads=threads)
        self.key, self.dim = embedder.key, embedder.dim
        self.store = Store(url) if url else None

    def __call__(self, batch: dict) -> dict:
        import torch

        n = len(batch["source"])
        ok = [k for k in range(n) if not batch["reason"][k]]
        inputs = [batch[f"input{j}"] for j in range(len(self.analyser.runners))]
        decoded = [(str(batch["sha256"][k]), [torch.from_numpy(x[k]) for x in inputs], json.loads(batch["colors"][k]))
                   for k in ok]
        out = {k: batch[k] for k in ("source", "sha256", "attributes", "reason")}
        out["status"] = np.array(["failed"] * n, dtype=object)
        out["item_id"] = np.full(n, -1, np.int64)
        if not ok:
            return out
        analysed = self.analyser.analyse(ok, decoded)
        items = analysed.items([str(s) for s in batch["source"]], [json.loads(a) for a in batch["attributes"]])
        if self.store is not None:
            added, existing, _ = self.store.add(items, self.key, self.dim)
            for k, (status, item_id) in zip(ok, stored_outcomes(items, added, existing)):
                out["status"][k], out["item_id"][k] = status, item_id
            return out
        out["status"][ok] = "analysed"
        out["embedding"] = np.zeros((n, self.dim), np.float32)
        out["embedding"][ok] = analysed.embeddings
        out["predicted"], out["colors"] = np.array(["{}"] * n, dtype=object), batch["colors"]
        out["predicted"][ok] = [json.dumps(p) for p in analysed.predicted]
        return out


def _reach_database(url: str) -> str | None:
    """Run on a worker: None if it can open the database, else why not."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect is the answer, whatever the driver raises
        return str(getattr(exc, "orig", None) or exc).strip()
    finally:
        engine.dispose()
    return None


# the cluster

def _connect(address: str | None) -> bool:
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
        raise CatalogError(f"--ray-address {address}: cannot join the Ray cluster ({exc})") from None
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
        raise CatalogError(f"--ray-address {address}: no Ray cluster answers there ({exc}); start one with "
                           f"`ray start --head`, or leave the option out for a local Ray") from None


def _check_workers_reach(url: str, runtime_env: dict | None) -> None:
    """Before any work: every node of the cluster opens the database the actors will write to."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from sqlalchemy.engine import make_url

    reach = ray.remote(num_cpus=0)(_reach_database)
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
    answers = ray.get([reach.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                                     runtime_env=runtime_env)
                       .remote(url) for node in nodes], timeout=REACH_TIMEOUT)
    for node, answer in zip(nodes, answers):
        if answer is not None:
            raise CatalogError(f"the Ray workers cannot reach the database {make_url(url)!r} (node "
                               f"{node[:12]}): {answer}; nothing was ingested")
