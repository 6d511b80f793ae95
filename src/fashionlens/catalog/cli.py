"""`fashionlens ingest` (also `catalog add`) and `fashionlens catalog ...`: search, list, stats, remove, reindex; a
thin wrapper over `Catalog`."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

catalog_app = typer.Typer(help="A searchable catalogue of images: add, search by image with filters, remove.",
                          no_args_is_help=True)

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite file (default: $FASHIONLENS_DB, else ./fashionlens-catalog.db).")]
ModelOpt = Annotated[str, typer.Option("--model", help="Embedding: 'default' (backbone features + shipped garment classifier's probabilities), 'backbone' (features only) or a model folder (its penultimate layer). Use the same for add and search.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output, one line per record.")]


def _open(db, model):
    from fashionlens.catalog import Catalog, CatalogError
    from fashionlens.classify import ModelError, load_model
    from fashionlens.cli_common import fail
    from fashionlens.embeddings import Embedder

    try:
        if model == "default":
            embedder = None  # made when first needed: list, stats and remove never embed
        elif model == "backbone":
            embedder = Embedder.from_backbone()
        else:
            embedder = Embedder.from_model(load_model(Path(model)))
        return Catalog.open(db, embedder=embedder)
    except (CatalogError, ModelError) as exc:
        fail(str(exc))


def ingest(
    sources: Annotated[list[str], typer.Argument(help="Folders (read recursively), image files, globs, http(s) URLs, .txt lists (one path or URL a line) or CSV/TSV tables (an image column of paths or URLs; every other column an attribute).")],
    db: DbOpt = None,
    image_column: Annotated[str, typer.Option("--image-column", help="Table column naming each image: a path (absolute or relative to the table) or a URL.")] = "image",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Files read or URLs downloaded at once.")] = 8,
    classifier: Annotated[str, typer.Option("--classifier", help="Model folder predicting attributes, 'default' (shipped garment classifier) or 'none'.")] = "default",
    colors: Annotated[bool, typer.Option("--colors/--no-colors", help="Name each item's dominant colours.")] = True,
    model: ModelOpt = "default",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images stored per transaction.")] = 32,
    engine: Annotated[str, typer.Option("--engine", help="'local': this process and its workers; 'ray': a Ray cluster (Ray Data), local unless --ray-address.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="With --engine ray: join this cluster (HOST:PORT, ray://HOST:PORT or 'auto') instead of starting a local Ray.")] = None,
    actors: Annotated[Optional[int], typer.Option("--actors", min=1, help="With --engine ray: model actors (default: one per two CPUs of the cluster).")] = None,
    actor_cpus: Annotated[float, typer.Option("--actor-cpus", min=0.1, help="With --engine ray: CPUs each model actor holds (its ONNX Runtime threads).")] = 1.0,
    task_cpus: Annotated[float, typer.Option("--task-cpus", min=0.1, help="With --engine ray: CPUs each reading and decoding task holds.")] = 1.0,
    folder_label: Annotated[str, typer.Option("--folder-label", help="A folder of class folders (<class>/<image>, as train reads it) gives each image its folder's name as this attribute; 'none': not.")] = "category",
    json_out: JsonOpt = False,
) -> None:
    """Add images to the catalogue; an image already in it (same bytes) is kept once. Resumable: run the same
    command again after a crash or Ctrl-C and only what is missing is added (URLs via $FASHIONLENS_FETCH_ALLOW).
    With --engine ray and a PostgreSQL --db, Ray's workers write to the database themselves."""
    from fashionlens.catalog import CatalogError
    from fashionlens.sources import expand_sources
    from fashionlens.ray_jobs import RayOptions
    from fashionlens.classify import ModelError
    from fashionlens.cli_common import console, fail, print_batch_report, stop_on_interrupt

    if engine not in ("local", "ray"):
        fail(f"--engine {engine!r}: use 'local' or 'ray'")
    if engine == "local" and (ray_address or actors):
        fail("--ray-address and --actors need --engine ray")
    ray = RayOptions(ray_address, actors, actor_cpus, task_cpus) if engine == "ray" else None
    try:
        found = expand_sources(sources, image_column, None if folder_label == "none" else folder_label)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    for item in found.missing:
        console.print(f"[yellow]skipped[/yellow] {item}: no such file, folder, matching glob or URL", highlight=False)
    if not found.sources:
        fail("no images to add")
    catalog = _open(db, model)
    stop = threading.Event()
    try:
        with stop_on_interrupt(stop):
            report = catalog.ingest(found.sources, found.attributes, workers=workers,
                                    classifier=None if classifier == "none" else classifier, colors=colors,
                                    batch_size=batch_size, ray=ray,
                                    progress=not json_out and sys.stderr.isatty(), stop=stop)
    except (CatalogError, ModelError, ValueError) as exc:
        fail(str(exc))
    finally:
        catalog.close()
    report.failed[:0] = found.skipped
    summary = report.to_json()
    print_batch_report(report, json_out, f"added {summary['added']}, already present {summary['already_present']}, "
                       f"failed {summary['failed']} ({catalog.store.url})", f"{len(report.added)} added")
    if report.failed and not report.added and not report.present:
        raise typer.Exit(1)


catalog_app.command("add")(ingest)


@catalog_app.command("search")
def search(
    images: Annotated[Optional[list[str]], typer.Argument(help="Query images, folders or globs (all searched in one batch).")] = None,
    db: DbOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1)] = 10,
    where: Annotated[Optional[list[str]], typer.Option("--where", help="Only items with KEY=VALUE[,VALUE] (repeatable; e.g. category=dress, color=red).")] = None,
    model: ModelOpt = "default",
    text: Annotated[Optional[list[str]], typer.Option("--text", help="Search by words instead of images, e.g. 'navy check shirt men' (repeatable); needs --text-model.")] = None,
    text_model: Annotated[Optional[Path], typer.Option("--text-model", help="Text model folder (from train-text) for --text.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Most similar catalogue items to each query image, or best matching each --text, best first."""
    from fashionlens.catalog import CatalogError
    from fashionlens.cli_common import console, fail, image_paths
    from fashionlens.data import parse_where
    from fashionlens.model_folder import ModelError

    if bool(text) == bool(images):
        fail("give query images or --text, not both" if text else "give query images or --text")
    if text and text_model is None:
        fail("--text needs --text-model (a folder from train-text)")
    files = image_paths(images, "query images") if images else []
    try:
        filters = parse_where(where or [])
    except ValueError as exc:
        fail(str(exc))
    words = None
    if text:
        from fashionlens.text.cli import load_text_model_or_fail

        words = load_text_model_or_fail(text_model)
    catalog = _open(db, model)
    try:
        catalog.check_filters(filters)
        if words is not None:
            results = catalog.search_text(text, words, top_k=top_k, where=filters)
        else:
            results = catalog.search(files, top_k=top_k, where=filters,
                                     progress=not json_out and sys.stderr.isatty())
    except (CatalogError, ModelError, ValueError) as exc:
        fail(str(exc))
    finally:
        catalog.close()
    for result in results:
        if result.unknown_words and not json_out:
            console.print(f"[yellow]unknown words[/yellow] in {result.query!r}: {', '.join(result.unknown_words)}",
                          highlight=False)
        if result.error:
            console.print(f"[yellow]skipped[/yellow] {result.query}: {result.error}", highlight=False)
            continue
        if json_out:
            print(json.dumps(result.to_json(), ensure_ascii=False))
            continue
        print(result.query)
        for hit in result.results:
            attrs = ", ".join(f"{k}={v}" for k, v in hit.attributes.items())
            print(f"  {hit.score:.3f}\t#{hit.id}\t{hit.image}\t{attrs}")
    if all(r.error for r in results):
        raise typer.Exit(2 if text else 1)


@catalog_app.command("list")
def list_items(
    db: DbOpt = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Items in the order they were added."""
    catalog = _open(db, "default")
    try:
        items = catalog.list(limit, offset)
    finally:
        catalog.close()
    for item in items:
        if json_out:
            print(json.dumps(item.to_json(), ensure_ascii=False))
        else:
            colours = ",".join(c["name"] for c in item.colors)
            attrs = ", ".join(f"{k}={v}" for k, v in item.labels.items())
            print(f"#{item.id}\t{item.source}\t{attrs}\t{colours}")


@catalog_app.command("stats")
def stats(db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Size, embedding, index kind and the counts of each filterable value."""
    catalog = _open(db, "default")
    try:
        info = catalog.stats()
    finally:
        catalog.close()
    if json_out:
        print(json.dumps(info, ensure_ascii=False))
        return
    for key in ("database", "items", "embedding", "dim", "index", "index_kind"):
        print(f"{key}: {info[key]}")
    for key, values in info["labels"].items():
        print(f"{key}: " + ", ".join(f"{v} {n}" for v, n in list(values.items())[:15]))


@catalog_app.command("remove")
def remove(ids: Annotated[list[int], typer.Argument(help="Item ids (see `catalog list`).")], db: DbOpt = None) -> None:
    """Remove items from the store and the index."""
    from fashionlens.cli_common import console

    catalog = _open(db, "default")
    try:
        removed = catalog.remove(ids)
    finally:
        catalog.close()
    unknown = sorted(set(ids) - set(removed))
    console.print(f"removed {len(removed)}" + (f"; no such id: {', '.join(map(str, unknown))}" if unknown else ""))
    if unknown:
        raise typer.Exit(1)


@catalog_app.command("reindex")
def reindex(db: DbOpt = None) -> None:
    """Rebuild the vector index from the store (it is also rebuilt by itself when missing or stale)."""
    catalog = _open(db, "default")
    try:
        catalog.reindex(progress=sys.stderr.isatty())
    finally:
        catalog.close()


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.add_typer(catalog_app, name="catalog")
