"""`fashionlens analyze --engine ray`: the photo pipeline on a Ray cluster, every result kept in the analyses
history (the table `POST /v1/analyze` fills), with the Ray machinery of the Ray ingest (`fashionlens/ray_jobs.py`).

Tasks read or download and hash each photo (`read_source`, as the ingest does); an actor pool runs `Analyzer`,
its models loaded once per actor with ONNX Runtime on the actor's CPUs, and the catalogue open for the similar
items. A photo already analysed under the same models (`models_key`) is not analysed again, so a rerun only does
what is missing; a photo that cannot be read or decoded is reported with its reason and the job goes on. With
PostgreSQL the actors store each batch in one transaction; with SQLite the driver stores what they return.
"""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.catalog.analyses import AnalysisHistory, NewAnalysis
from fashionlens.catalog.similar import add_similar
from fashionlens.sources import read_source, source_name
from fashionlens.ray_jobs import RayJob, RayOptions, run_on_ray, workers_write
from fashionlens.data.samples import SkippedInput, failure_reason
from fashionlens.fetch import FetchPolicy
from fashionlens.pipeline.analyzer import PipelineConfig


@dataclass
class AnalyzeReport:
    analysed: dict[str, int] = field(default_factory=dict)  # source -> id of its analysis, stored by this run
    present: dict[str, int] = field(default_factory=dict)  # source -> id of the analysis stored before
    failed: list[SkippedInput] = field(default_factory=list)
    interrupted: bool = False  # stopped on request: running the same photos again does the rest

    def to_json(self) -> dict:
        return {"analysed": len(self.analysed), "already_present": len(self.present), "failed": len(self.failed),
                "interrupted": self.interrupted, "failures": [{"source": f.source, "reason": f.reason}
                                                              for f in self.failed]}


def analyze_on_ray(db, photos: list[str | Path], options: RayOptions, config: PipelineConfig | None = None, *,
                   batch_size: int = 8, policy: FetchPolicy | None = None, progress: bool = False,
                   stop: threading.Event | None = None) -> AnalyzeReport:
    """Analyse `photos` (files or URLs) on Ray into the history of the catalogue `db` (URL or SQLite path),
    with its items as the similar ones. Ends after the current batch when `stop` is set."""
    from fashionlens.catalog import Catalog

    names = list(dict.fromkeys(source_name(p) for p in photos))
    report = AnalyzeReport()
    with Catalog.open(db) as catalog:  # migrated, and its index saved, before the actors open it
        catalog.catch_up_index()
        url, history = catalog.store.url, AnalysisHistory(catalog.store.engine)
        writes = workers_write(url)
        job = RayJob(rows=[{"source": name} for name in names], prepare=_read,
                     prepare_kwargs={"policy": policy or FetchPolicy.from_env()}, actor=_AnalysePhotos,
                     actor_kwargs={"url": url, "config": config or PipelineConfig(), "threads": options.threads,
                                   "writes": writes}, batch_size=batch_size)
        report.interrupted = run_on_ray(lambda: job, options, url=url, label="analyze", total=len(names), progress=progress,
                                        stop=stop, collect=lambda batch: _collect(history, batch, report))
    return report


def _collect(history: AnalysisHistory, batch: dict, report: AnalyzeReport) -> None:
    """One batch of the actors' results into the report; with SQLite, stored here first."""
    statuses, ids = [str(s) for s in batch["status"]], [int(i) for i in batch["analysis_id"]]
    if "document" in batch:  # the driver writes: SQLite
        rows = [k for k, status in enumerate(statuses) if status == "analysed"]
        records = [NewAnalysis(str(batch["sha256"][k]), str(batch["models_key"][k]), str(batch["source"][k]),
                               json.loads(batch["document"][k])) for k in rows]
        for k, (analysis_id, created) in zip(rows, history.save_many(records), strict=True):
            statuses[k], ids[k] = "added" if created else "present", analysis_id
    for source, status, analysis_id, reason in zip(batch["source"], statuses, ids, batch["reason"], strict=True):
        if status == "added":
            report.analysed[str(source)] = analysis_id
        elif status == "present":
            report.present[str(source)] = analysis_id
        else:
            report.failed.append(SkippedInput(str(source), str(reason)))


# on the workers

def _read(batch: dict, policy: FetchPolicy) -> dict:
    """A Ray task: each photo's bytes (read or downloaded) and sha256, or why it cannot be read."""
    n = len(batch["source"])
    data, sha256, reasons = [b""] * n, [""] * n, [""] * n
    with tempfile.TemporaryDirectory(prefix="fashionlens-analyze-") as spool:
        for k, source in enumerate(batch["source"]):
            result = read_source(str(source), Path(spool), str(k), policy)
            if isinstance(result, SkippedInput):
                reasons[k] = result.reason
                continue
            data[k], sha256[k] = result[0].read_bytes(), result[1]
    return {"source": batch["source"], "data": np.array(data, dtype=object), "sha256": np.array(sha256),
            "reason": np.array(reasons)}


class _AnalysePhotos:
    """A Ray actor: the pipeline and the catalogue, opened once; each batch analysed, then stored here
    (`writes`) or returned to the driver."""

    def __init__(self, url: str, config: PipelineConfig, threads: int, writes: bool):
        from fashionlens.catalog import Catalog
        from fashionlens.pipeline.analyzer import Analyzer
        from fashionlens.runtime import small_ops_on_one_thread

        small_ops_on_one_thread()  # ONNX Runtime has the actor's CPUs; the small ops around it take one thread
        self.catalog = Catalog.open(url)
        self.analyzer = Analyzer(config, embedder=self.catalog.embedder, threads=threads)
        self.history = AnalysisHistory(self.catalog.store.engine)
        self.writes = writes

    def __call__(self, batch: dict) -> dict:
        n, key = len(batch["source"]), self.analyzer.models_key
        sources, reasons = [str(s) for s in batch["source"]], [str(r) for r in batch["reason"]]
        status, ids = np.array(["failed"] * n, dtype=object), np.full(n, -1, np.int64)
        known = self.history.known([str(s) for s, r in zip(batch["sha256"], reasons, strict=True) if not r], key)
        records, places = [], []
        for k in range(n):
            sha = str(batch["sha256"][k])
            if reasons[k]:
                continue
            if sha in known:
                status[k], ids[k] = "present", known[sha]
                continue
            try:
                analysis = self.analyzer.analyze(bytes(batch["data"][k]), name=sources[k])
                add_similar(analysis, self.catalog, self.analyzer.config.similar_k, self.analyzer.config.similar_filter)
            except Exception as exc:  # one photo the pipeline cannot take never ends the job; its reason is kept
                reasons[k] = failure_reason(exc, "analysis")
                continue
            records.append(NewAnalysis(sha, key, sources[k], analysis.to_json()))
            places.append(k)
        out = {"source": batch["source"], "sha256": batch["sha256"], "reason": np.array(reasons, dtype=object),
               "status": status, "analysis_id": ids, "models_key": np.array([key] * n, dtype=object)}
        if self.writes:
            for k, (analysis_id, created) in zip(places, self.history.save_many(records), strict=True):
                status[k], ids[k] = "added" if created else "present", analysis_id
        else:
            out["document"] = np.array([""] * n, dtype=object)
            for k, record in zip(places, records, strict=True):
                status[k], out["document"][k] = "analysed", json.dumps(record.document)
        return out
