"""A benchmark's figures into `benchmarks/results/NAME.json`: the files the documentation's results page and the
README's table of headline results are generated from (`docs/gen/render.py`). A benchmark calls `record` when run
with `--record`; the command, the date and the commit are taken from the run itself, so no figure is typed."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def this_command() -> str:
    """The command line of this run, as the results page prints it (without --record)."""
    args = [a for a in sys.argv[1:] if a != "--record"]
    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *args])


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS.parent, capture_output=True, text=True)
    return done.stdout.strip()


def record(name: str, *, area: str, title: str, data: str, part: str, issue: int | None, figures: list[dict],
           guide: str = "") -> Path:
    """Writes the file; each figure is {"figure", "value"[, "unit", "target"]}. A figure of the same name marked
    `headline` in the file before stays a headline (the README's table picks those)."""
    path = RESULTS / f"{name}.json"
    before = json.loads(path.read_text()) if path.exists() else {}
    headline = {f["figure"] for f in before.get("figures", []) if f.get("headline")}
    figures = [{**f, "headline": True} if f["figure"] in headline else f for f in figures]
    record = {"area": area, "title": title, "command": this_command(), "data": data, "part": part,
              "date": datetime.now(timezone.utc).date().isoformat(), "issue": issue, "commit": _commit(),
              "guide": guide, "figures": figures}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded in {path.relative_to(RESULTS.parent.parent)} (python docs/gen/render.py --readme updates the README)")
    return path
