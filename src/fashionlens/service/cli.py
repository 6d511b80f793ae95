"""`fashionlens serve` (the HTTP service) and `fashionlens analyze` (the same pipeline on files, no server)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite file (default: $FASHIONLENS_DB, else ./fashionlens-catalog.db).")]


def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    seed: Annotated[Optional[list[str]], typer.Option("--seed", help="Images or folders added to the catalogue on start (already present ones are skipped).")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    text_model: Annotated[Optional[Path], typer.Option("--text-model", help="Text model folder (from train-text): POST /v1/search and the page's catalogue then search by words.")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Serve a non-loopback --host with no API token (anyone who can reach it can read and change everything).")] = False,
) -> None:
    """Run the HTTP API and its web page (at /; API docs at /docs): analyse photos, browse the history, manage and
    search the catalogue. Access logs are JSON lines on stderr."""
    import logging

    import uvicorn

    from fashionlens.catalog import CatalogError
    from fashionlens.cli_common import console, fail
    from fashionlens.service.access import Tokens, is_loopback
    from fashionlens.service.app import create_app
    from fashionlens.service.settings import ServiceSettings

    try:
        settings = ServiceSettings.from_env(db=db, seed=tuple(seed or ()), text_model=text_model)
        tokens = Tokens.from_settings(settings.api_token, settings.read_tokens, settings.token_file)
        if not tokens.required and not is_loopback(host) and not insecure:
            fail(f"--host {host} is reachable from other machines, and no API token is set, so anyone there could "
                 "read every photo and change the catalogue. Set FASHIONLENS_API_TOKEN (and FASHIONLENS_READ_TOKENS "
                 "or FASHIONLENS_TOKEN_FILE), or pass --insecure to serve it open anyway.")
        if text_model is not None:  # refused here, named, rather than when the service starts
            from fashionlens.text import load_text_model

            load_text_model(text_model)
        app = create_app(settings)
    except (CatalogError, ValueError) as exc:  # ModelError (a bad --text-model) is a ValueError
        fail(str(exc))
    access = logging.getLogger("fashionlens.access")
    access.addHandler(logging.StreamHandler(sys.stderr))
    access.setLevel(logging.INFO if log_level.lower() in ("info", "debug", "trace") else logging.WARNING)
    access.propagate = False
    shown = f"[{host}]" if ":" in host else host
    console.print(f"fashionlens: loading models, then serving on [bold]http://{shown}:{port}/[/bold] "
                  f"(the web page; API docs at http://{shown}:{port}/docs)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)  # ours: JSON, with request ids


def analyze(
    images: Annotated[list[str], typer.Argument(help="Photos, folders (read recursively) or globs.")],
    db: Annotated[Optional[str], typer.Option("--db", help="Catalogue to find similar items in (default: none).")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0, max=1, help="Every class from this score (default: the detector's own per-class thresholds, which the service and detect use too).")] = None,
    similar: Annotated[int, typer.Option("--similar", min=0, help="Similar catalogue items per garment (needs --db).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document per photo, one per line (--engine ray: the summary of the run).")] = False,
    coco: Annotated[Optional[Path], typer.Option("--coco", help="Also write every garment to this COCO file (boxes, "
                                                 "scores, mask polygons as segmentation).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="'local': this process; 'ray': a Ray cluster (local unless --ray-address), every result stored in the --db's analyses history.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="With --engine ray: join this cluster (HOST:PORT, ray://HOST:PORT or 'auto').")] = None,
    actors: Annotated[Optional[int], typer.Option("--actors", min=1, help="With --engine ray: model actors (default: one per two CPUs of the cluster).")] = None,
    actor_cpus: Annotated[float, typer.Option("--actor-cpus", min=0.1, help="With --engine ray: CPUs each model actor holds (its ONNX Runtime threads).")] = 1.0,
    task_cpus: Annotated[float, typer.Option("--task-cpus", min=0.1, help="With --engine ray: CPUs each reading task holds.")] = 1.0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="With --engine ray: photos a batch (one transaction).")] = 8,
) -> None:
    """Each garment in each photo: box, label, attributes, colours (and similar items with --db). With --engine ray
    the photos are analysed on a Ray cluster and stored in the --db's analyses history (an image analysed before
    under the same models is kept once; rerun after a crash or Ctrl-C to do the rest)."""
    from dataclasses import replace

    from fashionlens.catalog import Catalog, CatalogError
    from fashionlens.catalog.similar import add_similar
    from fashionlens.cli_common import console, fail, image_paths, report_skipped
    from fashionlens.data.samples import SkippedInput, failure_reason
    from fashionlens.pipeline import Analyzer, PipelineConfig

    from fashionlens.runtime import small_ops_on_one_thread

    if engine not in ("local", "ray"):
        fail(f"--engine {engine!r}: use 'local' or 'ray'")
    if engine == "local" and (ray_address or actors):
        fail("--ray-address and --actors need --engine ray")
    if engine == "ray" and (not db or coco is not None):
        fail("--engine ray stores its results in the analyses history: it needs --db, and writes no --coco file")
    files = image_paths(images, "photos")
    config = replace(PipelineConfig(), min_score=min_score, similar_k=similar)
    if engine == "ray":
        from fashionlens.ray_jobs import RayOptions

        _analyze_on_ray(files, db, config, RayOptions(ray_address, actors, actor_cpus, task_cpus), batch_size, as_json)
        return
    small_ops_on_one_thread()
    try:
        catalog = Catalog.open(db) if db else None
        analyzer = Analyzer(config, embedder=catalog.embedder if catalog is not None else None)
    except (CatalogError, ValueError) as exc:
        fail(str(exc))
    skipped = []
    export = None
    if coco is not None:
        from fashionlens.pipeline.coco_export import CocoExport

        export = CocoExport(analyzer.detector.classes if analyzer.detector is not None else None)
    for path in files:
        try:
            result = analyzer.analyze(path)
            add_similar(result, catalog, config.similar_k, config.similar_filter)
        except Exception as exc:  # one photo the pipeline cannot take never ends the batch; its reason is reported
            skipped.append(SkippedInput(str(path), failure_reason(exc, "analysis")))
            continue
        if export is not None:
            export.add(path, result)
        if as_json:
            print(json.dumps({"image": str(path), **result.to_json()}), flush=True)
            continue
        console.print(f"[bold]{path}[/bold] {result.width}x{result.height}, {result.timings_ms['total']:.0f} ms",
                      highlight=False)
        for g in result.items:
            attrs = ", ".join(f"{t}={s[0].label} {s[0].score:.2f}" for t, s in g.attributes.items() if s)
            colors = ", ".join(f"{c.name} {c.fraction:.0%}" for c in g.colors)
            box = ",".join(f"{v:.0f}" for v in g.box)
            similar_ids = " similar: " + ", ".join(f"#{h.id} {h.score:.2f}" for h in g.similar) if g.similar else ""
            console.print(f"  {g.label} {g.score:.2f} [{box}] {attrs}; {colors}{similar_ids}", highlight=False)
    if catalog is not None:
        catalog.close()
    if export is not None:
        from fashionlens.atomic import write_text_atomic

        write_text_atomic(coco, json.dumps(export.to_dict()))
        console.print(f"COCO file written to [bold]{coco}[/bold]")
    report_skipped(skipped)
    if skipped and len(skipped) == len(files):
        raise typer.Exit(1)


def _analyze_on_ray(files: list[Path], db: str, config, options, batch_size: int, as_json: bool) -> None:
    """`analyze --engine ray`: a summary (JSON with --json) and the photos that failed, each with its reason."""
    import threading

    from fashionlens.catalog import CatalogError
    from fashionlens.cli_common import fail, print_batch_report, stop_on_interrupt
    from fashionlens.catalog.ray_analyze import analyze_on_ray

    stop = threading.Event()
    try:
        with stop_on_interrupt(stop):
            report = analyze_on_ray(db, files, options, config, batch_size=batch_size, stop=stop,
                                    progress=not as_json and sys.stderr.isatty())
    except (CatalogError, ValueError) as exc:
        fail(str(exc))
    summary = report.to_json()
    print_batch_report(report, as_json, f"analysed {summary['analysed']}, already present {summary['already_present']}, "
                       f"failed {summary['failed']} (see them with GET /v1/analyses of `fashionlens serve --db ...`)",
                       f"{len(report.analysed)} analysed")
    if report.failed and not report.analysed and not report.present:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("analyze")(analyze)
