"""What every command module shares: one stderr console, failing with a message, expanding image arguments."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


def image_paths(paths: list[str], what: str = "images") -> list[Path]:
    """`find_files`, reporting what matched nothing, and failing when nothing is left."""
    from fashionlens.images import find_files

    found, missing = find_files(paths)
    for item in missing:
        console.print(f"[yellow]skipped[/yellow] {item}: no such file, folder or matching glob", highlight=False)
    if not found:
        fail(f"no {what}")
    return found


def report_skipped(skipped, limit: int = 20, *, what: str = "skipped", more: str = "") -> None:
    """The inputs a batch went on without, each with its reason; `more` hints where the rest are listed."""
    if not skipped:
        return
    console.print(f"[yellow]{what} {len(skipped)} input(s):[/yellow]")
    for item in skipped[:limit]:
        console.print(f"  {item.source}: {item.reason}", highlight=False, markup=False)
    if len(skipped) > limit:
        console.print(f"  … and {len(skipped) - limit} more{more}", highlight=False)
