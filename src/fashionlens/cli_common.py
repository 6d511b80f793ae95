"""What every command module shares: one stderr console, failing with a message, expanding image arguments."""

from __future__ import annotations

from glob import glob
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


def expand_paths(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files, folders (recursively) and globs, in a stable order; what matches nothing is returned apart."""
    from fashionlens.images import is_image_file

    found: list[Path] = []
    missing: list[str] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if is_image_file(p))
        elif path.exists():
            found.append(path)
        elif matches := sorted(glob(item, recursive=True)):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            missing.append(item)
    return found, missing


def image_paths(paths: list[str], what: str = "images") -> list[Path]:
    """`expand_paths`, reporting what matched nothing, and failing when nothing is left."""
    found, missing = expand_paths(paths)
    for item in missing:
        console.print(f"[yellow]skipped[/yellow] {item}: no such file, folder or matching glob", highlight=False)
    if not found:
        fail(f"no {what}")
    return found


def report_skipped(skipped, limit: int = 20) -> None:
    if not skipped:
        return
    console.print(f"[yellow]skipped {len(skipped)} input(s):[/yellow]")
    for item in skipped[:limit]:
        console.print(f"  {item.source}: {item.reason}", highlight=False, markup=False)
    if len(skipped) > limit:
        console.print(f"  … and {len(skipped) - limit} more")
