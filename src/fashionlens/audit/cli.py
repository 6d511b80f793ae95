"""`fashionlens audit`: what is wrong with a labelled image set, as a report, JSON lines and a cleaned table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fashionlens.cli_common import (DataArg, ImageColOpt, LabelsOpt, MapOpt, SplitColOpt, TaskOpt, WhereOpt, console,
                                    fail, load_data, report_skipped)


def audit(
    data: DataArg,
    labels: LabelsOpt = None,
    image_column: ImageColOpt = "image",
    task: TaskOpt = None,
    where: WhereOpt = None,
    map: MapOpt = None,
    split_column: SplitColOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Report folder: index.html with thumbnails, findings.jsonl, summary.json.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per finding on stdout.")] = False,
    fix_out: Annotated[Optional[Path], typer.Option("--fix-out", help="Write a cleaned table here: flagged rows dropped (or relabelled with --relabel). The data is never changed.")] = None,
    relabel: Annotated[bool, typer.Option(help="With --fix-out: give label issues the suggested label instead of dropping them.")] = False,
    backbone: Annotated[str, typer.Option(help="Backbone whose cached features the label check and outliers use.")] = "efficientnet_lite1",
    resize: Annotated[str, typer.Option(help="crop (centre crop) or pad (letterbox on white, for product photos).")] = "crop",
    image_size: Annotated[Optional[int], typer.Option(help="Square input size in pixels instead of the backbone's.")] = None,
    folds: Annotated[int, typer.Option(min=2, help="Folds of the out-of-fold label check.")] = 5,
    min_class_images: Annotated[int, typer.Option(min=1, help="Classes with fewer images are reported and left out of the label check.")] = 5,
    duplicates: Annotated[bool, typer.Option(help="Look for exact and near copies (fashionlens dedup).")] = True,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Audit labelled images: label issues, copies straddling splits or labels, outliers, unreadable files and
    table problems. Reports; changes nothing."""
    from rich.table import Table

    from fashionlens.extras import require

    require("audit", "the audit")
    from fashionlens.audit import AuditConfig, json_lines, write_clean_table, write_report
    from fashionlens.audit import audit as run_audit
    from fashionlens.backbones import BackboneError
    from fashionlens.data import SkippedInput, parse_where, read_rows

    dataset = load_data(data, labels, image_column, task, where, map, split_column)
    try:
        table = read_rows(labels, parse_where(where or [])) if labels is not None else None
        config = AuditConfig(backbone=backbone, resize=resize, image_size=image_size, folds=folds,
                             min_class_images=min_class_images, duplicates=duplicates, seed=seed, progress=not as_json)
        report = run_audit(dataset, config, table=table)
        cleaned = write_clean_table(report, dataset, fix_out, relabel=relabel, image_column=image_column) if fix_out else None
        page = write_report(report, out) if out else None
    except (ValueError, BackboneError, OSError) as exc:
        fail(str(exc))
    if as_json:
        for line in json_lines(report):
            print(line)
    else:
        counts = Table(title=f"audit of {dataset.source} ({len(dataset)} images, {sum(report.seconds.values()):.0f} s)")
        counts.add_column("finding")
        counts.add_column("count", justify="right")
        for key, value in report.counts().items():
            counts.add_row(key, str(value))
        console.print(counts)
        for name, check in report.label_check.items():
            console.print(f"label check {name}: {check}", highlight=False)
        for finding in report.of("table"):
            console.print(f"[yellow]table[/yellow] {', '.join(finding.columns)}: {finding.message}", highlight=False)
        report_skipped([SkippedInput(f.image, f.reason) for f in report.of("unreadable")], what="unreadable")
    if page:
        console.print(f"report written to [bold]{page}[/bold]")
    if cleaned:
        console.print(f"cleaned table [bold]{cleaned.path}[/bold]: {cleaned.rows} rows, {cleaned.dropped} dropped, "
                      f"{cleaned.relabelled} relabelled")


def register(app: typer.Typer) -> None:
    app.command()(audit)
