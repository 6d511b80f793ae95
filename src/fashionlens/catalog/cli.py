"""`fashionlens catalog ...`: add, search, list, stats, remove, reindex; a thin wrapper over `Catalog`."""

from __future__ import annotations

import json
import sys
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


def table_attributes(table: Path, image_column: str, images_root: Path | None) -> tuple[dict[Path, dict], list]:
    """{resolved image path: {column: value}} from every other column of a CSV/TSV table, and skipped rows."""
    import csv

    from fashionlens.data import read_table

    delimiter = "\t" if table.suffix.lower() in (".tsv", ".tab") else ","
    with open(table, newline="", encoding="utf-8-sig") as fh:
        columns = next(csv.reader(fh, delimiter=delimiter), [])
    others = [c for c in columns if c != image_column]
    data = read_table(table, image_column=image_column, tasks=others, images_root=images_root)
    attributes = {s.path.resolve(): {k: v for k, v in s.labels.items() if v is not None} for s in data.samples}
    return attributes, data.skipped


@catalog_app.command("add")
def add(
    paths: Annotated[list[str], typer.Argument(help="Images, folders (read recursively) or globs.")],
    db: DbOpt = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="CSV/TSV table: an image column, every other column an attribute; its images are added too.")] = None,
    image_column: Annotated[str, typer.Option("--image-column", help="Table column naming each image: absolute, relative to the table or to PATH, or a bare file name.")] = "image",
    classifier: Annotated[str, typer.Option("--classifier", help="Model folder predicting attributes, 'default' (shipped garment classifier) or 'none'.")] = "default",
    colors: Annotated[bool, typer.Option("--colors/--no-colors", help="Name each item's dominant colours.")] = True,
    model: ModelOpt = "default",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    json_out: JsonOpt = False,
) -> None:
    """Add images to the catalogue; an image already in it (same bytes) is kept once."""
    from fashionlens.catalog import CatalogError
    from fashionlens.classify import ModelError
    from fashionlens.cli_common import console, expand_paths, fail, report_skipped

    files, missing = expand_paths(paths)
    skipped = []
    attributes: dict[Path, dict] = {}
    if labels is not None:
        root = Path(paths[0]) if len(paths) == 1 and Path(paths[0]).is_dir() else None
        try:
            attributes, skipped = table_attributes(labels, image_column, root)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        listed = {f.resolve() for f in files}
        files += [p for p in attributes if p not in listed]
    for item in missing:
        console.print(f"[yellow]skipped[/yellow] {item}: no such file, folder or matching glob", highlight=False)
    if not files:
        fail("no images to add")
    catalog = _open(db, model)
    try:
        report = catalog.add_images(files, [attributes.get(f.resolve(), {}) for f in files],
                                    classifier=None if classifier == "none" else classifier, colors=colors,
                                    batch_size=batch_size, progress=not json_out and sys.stderr.isatty())
    except (CatalogError, ModelError) as exc:
        fail(str(exc))
    finally:
        catalog.close()
    report_skipped(skipped + report.failed)
    summary = report.to_json()
    if json_out:
        print(json.dumps(summary))
    else:
        console.print(f"added {summary['added']}, already present {summary['already_present']}, "
                      f"failed {summary['failed']} ({catalog.store.url})", highlight=False)
    if report.failed and not report.added and not report.present:
        raise typer.Exit(1)


@catalog_app.command("search")
def search(
    images: Annotated[list[str], typer.Argument(help="Query images, folders or globs (all searched in one batch).")],
    db: DbOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1)] = 10,
    where: Annotated[Optional[list[str]], typer.Option("--where", help="Only items with KEY=VALUE[,VALUE] (repeatable; e.g. category=dress, color=red).")] = None,
    model: ModelOpt = "default",
    json_out: JsonOpt = False,
) -> None:
    """Most similar catalogue items to each query image, best first."""
    from fashionlens.catalog import CatalogError
    from fashionlens.cli_common import console, fail, image_paths
    from fashionlens.data import parse_where

    files = image_paths(images, "query images")
    try:
        filters = parse_where(where or [])
    except ValueError as exc:
        fail(str(exc))
    catalog = _open(db, model)
    try:
        results = catalog.search(files, top_k=top_k, where=filters, progress=not json_out and sys.stderr.isatty())
    except (CatalogError, ValueError) as exc:
        fail(str(exc))
    finally:
        catalog.close()
    for result in results:
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
        raise typer.Exit(1)


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
