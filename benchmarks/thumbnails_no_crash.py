"""Every fashion-products thumbnail through `fashionlens analyze` (the command a user runs): how many were
analysed, how many failed and why. A failure is reported with its file and reason and the batch goes on, so a
crash anywhere in the pipeline shows here as a failure line instead of ending the run.

    python benchmarks/thumbnails_no_crash.py [--count 6000] [--workers 2] [--record]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _shared import dataset
from record import add_flag, record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=6000, help="the first N thumbnails by file name")
    ap.add_argument("--workers", type=int, default=2, help="analyze processes, one ONNX thread each")
    add_flag(ap)
    args = ap.parse_args()
    files = sorted(p for p in (dataset("fashion-products") / "images").glob("*.jpg"))[: args.count]
    command = [str(Path(sys.executable).parent / "fashionlens"), "analyze", "--json", "--similar", "0"]
    start = time.perf_counter()
    env = {"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent)}
    runs = [subprocess.Popen(command + [str(f) for f in files[k:: args.workers]], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**__import__("os").environ, **env})
            for k in range(args.workers)]
    analysed, errors = 0, []
    for run in runs:
        out, err = run.communicate()
        analysed += sum(1 for line in out.splitlines() if line.startswith("{") and '"items"' in line)
        errors += [line for line in err.splitlines() if line.strip()]
    elapsed = time.perf_counter() - start
    print(json.dumps({"thumbnails": len(files), "analysed": analysed, "failed": len(files) - analysed,
                      "seconds": round(elapsed, 1)}))
    for line in errors[:20]:
        print("  " + line)
    if args.record:
        record("thumbnails-no-crash", area="Analyse (the whole pipeline)", title=f"No crash on {len(files):,} thumbnails",
               data=f"the first {len(files):,} fashion-products thumbnails (60x80)", part="robustness", issue=None,
               guide="guides/service.md",
               figures=[{"figure": "Thumbnails analysed", "value": analysed},
                        {"figure": "Failures", "value": len(files) - analysed}])


if __name__ == "__main__":
    main()
