"""A benchmark's figures into `benchmarks/results/NAME.json`: the files the documentation's results page and the
README's table of headline results are generated from (`docs/gen/render.py`). A benchmark calls `record` when run
with `--record` (`add_flag`); the command, the date and the commit are taken from the run itself, so no figure is
typed. Several commands may feed one file: each run replaces only the figures it measured (`merge`)."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
OWN = ("command", "part", "date", "commit", "data")  # what a figure keeps of the run that measured it
MARKS = ("headline", "target")  # set on the file by hand, kept when a run replaces the figure


def add_flag(parser: argparse.ArgumentParser) -> None:
    """The `--record` flag every benchmark that feeds a results file takes."""
    parser.add_argument("--record", action="store_true",
                        help="write the figures to benchmarks/results/ (the documentation's results page)")


def this_command() -> str:
    """The command line of this run, as the results page prints it (without --record)."""
    args = [a for a in sys.argv[1:] if a != "--record"]
    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *args])


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                          capture_output=True, text=True)
    return done.stdout.strip()


def merge(before: dict, run: dict) -> dict:
    """`run`'s record over the file's `before`: a figure of the same name is replaced (keeping its headline and
    target marks); the file's other figures stay, each keeping the command, part, date, commit and data that
    measured it where they differ from this run's."""
    marks = {f["figure"]: {k: f[k] for k in MARKS if k in f} for f in before.get("figures", [])}
    measured = {f["figure"]: f | {k: v for k, v in marks.get(f["figure"], {}).items() if k not in f}
                for f in run["figures"]}
    figures = []
    for figure in before.get("figures", []):
        if figure["figure"] in measured:
            figures.append(measured.pop(figure["figure"]))
            continue
        kept = {k: v for k, v in figure.items() if k not in OWN}
        own = {k: figure.get(k, before.get(k, "")) for k in OWN}
        figures.append(kept | {k: v for k, v in own.items() if v != run.get(k, "")})
    return run | {"figures": figures + list(measured.values())}


def record(name: str, *, area: str, title: str, data: str, part: str, issue: int | None, figures: list[dict],
           guide: str = "") -> Path:
    """Writes this run's figures, each {"figure", "value"[, "unit", "target"]}, into the file (`merge`)."""
    path = RESULTS / f"{name}.json"
    before = json.loads(path.read_text()) if path.exists() else {}
    run = {"area": area, "title": title, "command": this_command(), "data": data, "part": part,
           "date": datetime.now(timezone.utc).date().isoformat(), "issue": issue, "commit": _commit(),
           "guide": guide, "figures": figures}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(merge(before, run), indent=2, ensure_ascii=False) + "\n")
    print(f"recorded in {path.relative_to(RESULTS.parent.parent)} (python docs/gen/render.py --readme updates the README)")
    return path
