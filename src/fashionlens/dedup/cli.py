"""`fashionlens dedup`: exact and near-duplicate groups among image files and folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def dedup(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Image files and folders (searched recursively).")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Find near duplicates among a catalogue's items instead (SQLAlchemy URL or SQLite file).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per group on stdout.")] = False,
    embeddings: Annotated[bool, typer.Option(
        help="Also compare backbone embeddings (finds crops and recolours).")] = True,
    verify: Annotated[bool, typer.Option(
        help="Confirm each candidate pair with keypoints (ORB + RANSAC) and an aligned comparison, so that look-alikes and colour variants stay apart.")] = True,
    max_hamming: Annotated[int, typer.Option(help="Perceptual-hash bits that may differ (for a candidate, with --verify).")] = -1,
    min_cosine: Annotated[float, typer.Option(help="Embedding cosine for a near duplicate (for a candidate, with --verify).")] = -1.0,
    workers: Annotated[int, typer.Option(min=0, help="Processes decoding and fingerprinting beside the main one (0: none).")] = 1,
) -> None:
    """Groups of duplicate images: "exact" (byte-identical) or "near" (re-encoded, resized, cropped, flipped,
    turned, rotated or sheared a little, letterboxed, greyscale, relit, blurred). Unreadable files are listed
    and skipped. Defaults for the thresholds are the calibrated ones."""
    from fashionlens.cli_common import fail, report_skipped, stdout_console
    from dataclasses import replace

    from fashionlens.dedup import CANDIDATES, DEFAULT_THRESHOLDS, find_duplicates

    defaults = CANDIDATES if verify and db is None else DEFAULT_THRESHOLDS  # a catalogue keeps no pixels to verify
    thresholds = replace(defaults, max_hamming=max_hamming if max_hamming >= 0 else defaults.max_hamming,
                         min_cosine=min_cosine if min_cosine >= 0 else defaults.min_cosine)
    if db is not None:
        report = _catalogue_duplicates(db, thresholds)
    else:
        if not paths:
            fail("give image files or folders, or --db for a catalogue")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            fail(f"not found: {', '.join(missing)}")
        report = find_duplicates(paths, thresholds=thresholds, embeddings=embeddings, verify=verify,
                                 workers=workers, progress=not as_json)
    report_skipped(report.failures)
    if as_json:
        for group in report.groups:
            print(json.dumps({"kind": group.kind, "images": group.images}))
        return
    out = stdout_console()
    for number, group in enumerate(report.groups, 1):
        out.print(f"[bold]{number}. {group.kind}[/bold] ({len(group.images)} images)")
        for image in group.images:
            out.print(f"   {image}", highlight=False)
    copies = sum(len(g.images) - 1 for g in report.groups)
    out.print(f"{report.images} images read, {len(report.groups)} duplicate groups, {copies} redundant copies, "
              f"{len(report.failures)} unreadable")


def _catalogue_duplicates(db: str, thresholds):
    from fashionlens.catalog import Catalog, CatalogError
    from fashionlens.cli_common import fail
    from fashionlens.dedup import DuplicateReport

    try:
        with Catalog.open(db) as catalog:
            return DuplicateReport(catalog.duplicates(thresholds), catalog.store.count(), [])
    except CatalogError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command()(dedup)
