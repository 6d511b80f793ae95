"""`fashionlens colors`: the named colours of images (files, folders, globs), or of one box in each."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer


def _parse_box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        x1, y1, x2, y2 = (float(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected x1,y1,x2,y2 (four numbers)") from None
    return x1, y1, x2, y2


def colors(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or globs.")],
    box: Annotated[Optional[str], typer.Option("--box", help="Only this region, x1,y1,x2,y2 in pixels.")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many colours.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per image on stdout.")] = False,
) -> None:
    """Named dominant colours (fine name and family) and the share of the garment each covers.

    An image that cannot be read or named is reported on stderr and the rest go on; the exit status is 1 only
    when every image failed."""
    from rich.table import Table

    from fashionlens.cli_common import console, image_paths, stdout_console
    from fashionlens.colors import named_colors
    from fashionlens.images import ImageError, load_image

    region = _parse_box(box) if box else None
    failed = 0
    files = image_paths(images)
    for path in files:
        try:
            shares = named_colors(load_image(path), box=region, top=top)
        except (ImageError, ValueError) as exc:
            failed += 1
            console.print(f"[red]failed[/red] {path}: {exc}", highlight=False)
            continue
        if as_json:
            print(json.dumps({"image": str(path), "box": list(region) if region else None, "colors": [
                {"name": s.name, "family": s.family, "hex": s.hex, "fraction": round(s.fraction, 4)}
                for s in shares]}))
            continue
        table = Table(title=str(path))
        for column in ("colour", "family", "share", "shade", ""):
            table.add_column(column)
        for s in shares:
            table.add_row(s.name, s.family, f"{s.fraction:.1%}", s.hex, f"[on {s.hex}]      [/]")
        stdout_console().print(table)
    if failed == len(files):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(colors)
