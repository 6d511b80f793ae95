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
import tempfile
import threading
from pathlib import Path

import numpy as np

from fashionlens.catalog.ingest import Analyser, Decoder
from fashionlens.sources import read_source
from fashionlens.ray_jobs import RayJob, RayOptions, run_on_ray, workers_write
from fashionlens.catalog.store import NewItem, Store
from fashionlens.data.samples import SkippedInput
from fashionlens.fetch import FetchPolicy


def ingest_on_ray(catalog, names: list[str], given: list[dict], options: RayOptions, *, models: list, colors: bool,
                  batch_size: int, policy: FetchPolicy | None, progress: bool, stop: threading.Event | None):
    """`Catalog.ingest`'s work on Ray; the same `AddReport`."""
    from fashionlens.catalog.catalog import AddReport

    report = AddReport()
    stored = catalog.store.known_sources(names)  # a rerun reads and downloads none of these
    report.present.update({name: stored[name] for name in dict.fromkeys(names) if name in stored})
    todo = [i for i, name in enumerate(names) if name not in stored]
    url = catalog.store.url if workers_write(catalog.store.url) else None

    def job() -> RayJob:
        embedder = catalog.embedder
        return RayJob(rows=[{"source": names[i], "attributes": json.dumps(given[i])} for i in todo],
                      prepare=_decode, prepare_kwargs={"decoder": Analyser.decoder_for(embedder, models, colors),
                                                       "policy": policy or FetchPolicy.from_env()},
                      actor=_Analyse, actor_kwargs={"models": (embedder, models, colors, batch_size),
                                                    "threads": options.threads, "url": url},
                      batch_size=batch_size)

    report.interrupted = run_on_ray(job, options, url=url, label="ingest", total=len(names), progress=progress,
                                    stop=stop, collect=lambda batch: _collect(catalog, batch, catalog.embedder.key,
                                                                              report))
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
        for k, (status, item_id) in zip(rows, stored_outcomes(items, added, existing), strict=True):
            statuses[k], ids[k] = status, item_id
    for source, status, item_id, reason in zip(batch["source"], statuses, ids, batch["reason"], strict=True):
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
            for j, image in enumerate(decoded[1]):
                inputs[j][k] = image
    return {**batch, "sha256": np.array(sha256), "colors": np.array(colors), "reason": np.array(reasons),
            **{f"input{j}": x for j, x in enumerate(inputs)}}


class _Analyse:
    """A Ray actor: the models, loaded once; each batch analysed, then stored here (`url`) or returned."""

    def __init__(self, models, threads: int, url: str | None):
        from fashionlens.runtime import small_ops_on_one_thread

        small_ops_on_one_thread()  # ONNX Runtime has the actor's CPUs; the small ops around it take one thread
        embedder, attribute_models, colors, batch_size = models
        self.analyser = Analyser(embedder, attribute_models, colors=colors, batch_size=batch_size, threads=threads)
        self.key, self.dim = embedder.key, embedder.dim
        self.store = Store(url) if url else None

    def __call__(self, batch: dict) -> dict:
        n = len(batch["source"])
        ok = [k for k in range(n) if not batch["reason"][k]]
        inputs = [batch[f"input{j}"] for j in range(len(self.analyser.runners))]
        decoded = [(str(batch["sha256"][k]), [x[k] for x in inputs], json.loads(batch["colors"][k]))
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
            for k, (status, item_id) in zip(ok, stored_outcomes(items, added, existing), strict=True):
                out["status"][k], out["item_id"][k] = status, item_id
            return out
        out["status"][ok] = "analysed"
        out["embedding"] = np.zeros((n, self.dim), np.float32)
        out["embedding"][ok] = analysed.embeddings
        out["predicted"], out["colors"] = np.array(["{}"] * n, dtype=object), batch["colors"]
        out["predicted"][ok] = [json.dumps(p) for p in analysed.predicted]
        return out
