"""Does the light runtime (no PyTorch) describe photos as the code before it did? `fashionlens analyze --json` on the
same photos: once with this checkout and PyTorch blocked, once with another checkout's source (`--before`, e.g. a
worktree of the commit before the change) and PyTorch. Counts label, attribute and colour differences, the largest
box and score differences, and writes JSON.

    git worktree add --detach /tmp/before 1ece522
    python benchmarks/light_parity.py --before /tmp/before/src --photos 100 --out build/light_parity.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _shared import dataset

ROOT = Path(__file__).resolve().parents[1]


def analyse(photos: list[Path], *, before: Path | None) -> list[dict]:
    """One JSON document per photo, from a subprocess: `before`'s source with PyTorch, else this one without."""
    env = dict(os.environ)
    if before is not None:
        env["PYTHONPATH"] = str(before)
        command = [sys.executable, "-m", "fashionlens", "analyze"]
    else:
        env["PYTHONPATH"] = str(ROOT / "src")
        command = [sys.executable, str(ROOT / "benchmarks" / "without_torch.py"), "-m", "fashionlens", "analyze"]
    out = subprocess.run([*command, *map(str, photos), "--json"], env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def item_key(item: dict) -> tuple:
    top = {task: scores[0]["label"] for task, scores in item["attributes"].items() if scores}
    return item["label"], tuple(sorted(top.items())), tuple(c["name"] for c in item["colors"])


def compare(before: list[dict], after: list[dict]) -> dict:
    """Differences over photos whose items are matched in order (the pipeline sorts them the same way)."""
    result = {"photos": len(before), "items": 0, "count_diffs": 0, "label_diffs": 0, "attribute_or_colour_diffs": 0,
              "box_max_px": 0.0, "score_max": 0.0, "attribute_score_max": 0.0}
    for b, a in zip(before, after, strict=True):
        if len(b["items"]) != len(a["items"]):
            result["count_diffs"] += 1
            continue
        for x, y in zip(b["items"], a["items"], strict=True):
            result["items"] += 1
            result["label_diffs"] += x["label"] != y["label"]
            result["attribute_or_colour_diffs"] += item_key(x)[1:] != item_key(y)[1:]
            result["box_max_px"] = max(result["box_max_px"], *(abs(p - q) for p, q in zip(x["box"], y["box"], strict=True)))
            result["score_max"] = max(result["score_max"], abs(x["score"] - y["score"]))
            for task, scores in x["attributes"].items():
                if scores and y["attributes"].get(task):
                    result["attribute_score_max"] = max(result["attribute_score_max"],
                                                        abs(scores[0]["score"] - y["attributes"][task][0]["score"]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the earlier checkout's src folder")
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "light_parity.json")
    args = parser.parse_args()
    street = sorted((ROOT / "samples" / "street").glob("*.jpg"))
    ccp = sorted((dataset("clothing-parsing") / "images").glob("*.jpg"))
    photos = (street + ccp[:: max(1, len(ccp) // args.photos)])[: args.photos]
    result = {"before": str(args.before), **compare(analyse(photos, before=args.before), analyse(photos, before=None))}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
