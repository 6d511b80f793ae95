"""What every command module shares: one stderr console, failing with a message, expanding image arguments,
stopping a batch job on Ctrl-C, and the labelled-data options of `train`, `evaluate` and `audit`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console

PIPED_WIDTH = 200
"""Columns of the console when stderr is not a terminal: a piped or logged table keeps its words (Rich's 80 would
cut them to `accur…`)."""
console = Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)


def stdout_console() -> Console:
    """A console on stdout, for tables that are a command's output, as wide as `console` when piped."""
    return Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)


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


def print_batch_report(report, as_json: bool, totals: str, done: str) -> None:
    """A batch job's ending, shared by ingest and analyze: its JSON summary, or the failures and the `totals` line;
    then, if Ctrl-C stopped it, how far it got (`done`) and exit 130, as a shell expects."""
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        report_skipped(report.failed, what="failed", more=" (--json lists them all)")
        console.print(totals, highlight=False)
    if report.interrupted:
        console.print(f"interrupted: {done}; run the same command again to resume", highlight=False)
        raise typer.Exit(130)


@contextmanager
def stop_on_interrupt(stop: threading.Event):
    """The first Ctrl-C sets `stop` (the run ends after the current batch); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            signal.default_int_handler(signum, frame)
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


DataArg = Annotated[Path, typer.Argument(help="Image folder: <class>/<image>, optionally under train/ validation/ test/; with --labels, the folder the table's image paths are relative to.")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="CSV/TSV table with an image column and label columns.")]
ImageColOpt = Annotated[str, typer.Option("--image-column", help="Table column naming each image (path or bare file name).")]
TaskOpt = Annotated[Optional[list[str]], typer.Option("--task", help="Label column to learn (repeatable). With a folder: the task's name.")]
WhereOpt = Annotated[Optional[list[str]], typer.Option("--where", help="Keep rows where COLUMN=VALUE[,VALUE] (repeatable).")]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", help="Merge labels: TASK:LABEL[,LABEL]=NEW (repeatable).")]
SplitColOpt = Annotated[Optional[str], typer.Option("--split-column", help="Table column holding train/validation/test.")]


def load_data(data: Path, labels, image_column, tasks, where, maps, split_column):
    from fashionlens.data import parse_label_map, parse_where, read_folder, read_table

    try:
        if labels is not None:
            if not tasks:
                fail("--labels needs at least one --task COLUMN")
            return read_table(labels, image_column=image_column, tasks=tasks, images_root=data,
                              where=parse_where(where or []), label_map=parse_label_map(maps or []),
                              split_column=split_column)
        if where or maps:
            fail("--where and --map apply to a --labels table")
        return read_folder(data, task=(tasks or ["category"])[0])
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
