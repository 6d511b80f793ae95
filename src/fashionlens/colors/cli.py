"""`fashionlens colors`: the named colours of one image or one box in it."""

from __future__ import annotations

import json
from pathlib import Path
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
    image: Annotated[Path, typer.Argument(help="Image file.")],
    box: Annotated[Optional[str], typer.Option("--box", help="Only this region, x1,y1,x2,y2 in pixels.")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many colours.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Named dominant colours (fixed fashion palette) and the share of the garment each covers."""
    from rich.console import Console
    from rich.table import Table

    from fashionlens.cli_common import fail
    from fashionlens.colors import named_colors
    from fashionlens.images import ImageError, load_image

    region = _parse_box(box) if box else None
    try:
        shares = named_colors(load_image(image), box=region, top=top)
    except (ImageError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"image": str(image), "box": list(region) if region else None, "colors": [
            {"name": s.name, "fraction": round(s.fraction, 4), "rgb": list(s.rgb), "hex": s.hex} for s in shares]}))
        return
    table = Table(title=str(image))
    for column in ("colour", "share", "rgb", ""):
        table.add_column(column)
    for s in shares:
        table.add_row(s.name, f"{s.fraction:.1%}", s.hex, f"[on {s.hex}]      [/]")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(colors)
