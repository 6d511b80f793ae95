"""Speed of copy detection's two stages on an export-like set (benchmarks/dedup_calibrate.py's "export" set, made
small): the cheap stage in images per second of this process's CPU time, and the verification of the cheap
stage's candidates in pairs per second. The library is whatever `fashionlens` imports, so a change is measured
against the code before it in one sitting by running this twice, the first time with PYTHONPATH pointing at a
copy of the earlier src/:

    git archive <commit> src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/src python benchmarks/dedup_speed.py && PYTHONPATH=src python benchmarks/dedup_speed.py

--record writes the verification speed to benchmarks/results/dedup-calibrate.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup_calibrate import make_set  # noqa: E402
from record import add_flag, record  # noqa: E402

import fashionlens  # noqa: E402
from fashionlens.dedup import CANDIDATES, hash_images, near_pairs  # noqa: E402
from fashionlens.dedup.verify import WORK_SIDE, Picture, verify_pair  # noqa: E402
from fashionlens.images import load_image  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=10, help="originals per dataset")
    parser.add_argument("--distractors", type=int, default=100, help="distractor photos per dataset")
    parser.add_argument("--seed", type=int, default=0)
    add_flag(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files, _, _ = make_set(Path(tmp), "export", args.originals, args.distractors, args.seed)
        cpu = time.process_time()
        _, fingerprints, _ = hash_images(files, progress=False, workers=0)
        cheap = time.process_time() - cpu
        candidates = near_pairs(fingerprints, CANDIDATES)  # hashes and signatures: no embedding model to load
        cpu = time.process_time()
        pictures = {i: Picture(load_image(files[i], min_size=WORK_SIDE)) for i in set(candidates.ravel().tolist())}
        for a, b in candidates.tolist():
            verify_pair(pictures[a], pictures[b])
        verify = time.process_time() - cpu
    print(f"{Path(fashionlens.__file__).parent}: {len(files)} images, cheap stage {len(files) / cheap:.0f} images per "
          f"CPU second; verification of {len(candidates)} candidate pairs {len(candidates) / verify:.0f} pairs per CPU "
          f"second (pictures prepared included)")
    if args.record:
        record("dedup-calibrate", area="Duplicates and audit", title="Near copies and annotation-tool exports",
               data=f"an export-like set of {len(files)} images, {len(candidates)} candidate pairs", part="speed",
               issue=30, guide="guides/dedup-audit.md",
               figures=[{"figure": "Verification, one process", "value": round(len(candidates) / verify),
                         "unit": "pairs per CPU second"}])


if __name__ == "__main__":
    main()
