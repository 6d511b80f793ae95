"""Precision of copy verification on a real catalogue's look-alikes: the near-copy links an earlier audit made
on fashion-products, each judged by eye.

The file benchmarks/data/fashion-products-near-links.csv lists the 132 pairs of different files that the audit's
verification (cache copy-verification-v4) linked on the shared fashion-products images, with a verdict each:
"copy" (one picture: re-encoded, resized, or a greyscale export), "different" (another product or another
photo: two men in white shirts on white, a black and a red flip-flop), "variant" (one photo with the product's
colour edited, a lipstick's swatch: another SKU) or "unsure" (left out). These are the calibration's blind spot:
its look-alikes hold ~3,000 false candidates, a catalogue of 44,000 photos ~430,000, so a false-accept rate too
small to see there fills an audit with false copies. The figures are pair precision among the judged pairs and
the share of judged copies kept, for the shipped rule and with each of its newer tests turned off.

    python benchmarks/near_links.py [--record]   # --record: the shipped rule's figure to results/dedup-calibrate.json
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import dataset  # noqa: E402
from record import add_flag, record  # noqa: E402

from fashionlens.dedup import verified_pairs  # noqa: E402
from fashionlens.dedup.verify import (DEFAULT_RULE, NO_MATCH, WORK_SIDE, CopyRule, Picture,  # noqa: E402
                                      Verification, verify_pair)
from fashionlens.fingerprints import sha256_bytes  # noqa: E402
from fashionlens.images import load_image  # noqa: E402

LINKS = Path(__file__).resolve().parent / "data" / "fashion-products-near-links.csv"
RULES = {
    "shipped rule": DEFAULT_RULE,
    "without the fine grid": dataclasses.replace(DEFAULT_RULE, min_fine_similarity=-1.0),
    "without the grey shift": dataclasses.replace(DEFAULT_RULE, max_grey_shift=255.0),
    "without either": dataclasses.replace(DEFAULT_RULE, min_fine_similarity=-1.0, max_grey_shift=255.0),
}


@dataclass
class JudgedLinks:
    paths: list[Path]
    sha256: list[str]
    pairs: np.ndarray  # int64 [m, 2], positions in paths, ascending within a row
    verdict: dict[tuple[int, int], str]


def judged_links(images: Path) -> JudgedLinks:
    """The judged pairs, read from LINKS, with the fashion-products `images` folder they name."""
    with LINKS.open(newline="") as f:
        rows = list(csv.DictReader(f))
    files = sorted({name for r in rows for name in (r["image_a"], r["image_b"])})
    position = {name: i for i, name in enumerate(files)}
    paths = [images / name for name in files]
    pairs = np.sort(np.array([(position[r["image_a"]], position[r["image_b"]]) for r in rows], np.int64), axis=1)
    return JudgedLinks(paths, [sha256_bytes(p.read_bytes()) for p in paths], pairs,
                       {tuple(p): r["verdict"] for p, r in zip(pairs.tolist(), rows, strict=True)})


def measured_links(links: JudgedLinks) -> tuple[Verification, list[str]]:
    """Each judged pair measured once, as the audit measures it (from the smaller sha256; too small to verify:
    NO_MATCH), as one Verification of arrays that any rule judges at once, with the verdicts in the same order."""
    rows, verdicts = [], []
    for a, b in links.pairs.tolist():
        verdicts.append(links.verdict[(a, b)])
        if links.sha256[a] > links.sha256[b]:
            a, b = b, a
        first, second = (Picture(load_image(links.paths[i], min_size=WORK_SIDE)) for i in (a, b))
        rows.append((verify_pair(first, second) if first.verifiable and second.verifiable else NO_MATCH).row())
    return Verification(*np.array(rows).T), verdicts


def precision_and_kept(measured: tuple[Verification, list[str]], rule: CopyRule) -> tuple[float, float]:
    """(precision among the judged pairs `rule` links, share of the judged copies it links)."""
    evidence, verdicts = measured
    linked = Counter(v for v, ok in zip(verdicts, np.atleast_1d(rule.accepts(evidence)), strict=True) if ok)
    other = linked["different"] + linked["variant"]
    return linked["copy"] / max(1, linked["copy"] + other), linked["copy"] / max(1, verdicts.count("copy"))


def linked_verdicts(links: JudgedLinks, rule: CopyRule) -> Counter:
    """How many of the judged pairs of each verdict `rule` links, each measured as the audit measures it."""
    linked = verified_pairs(links.paths, links.pairs, rule, progress=False, sha256=links.sha256)
    return Counter(links.verdict[tuple(p)] for p in linked.tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_flag(parser)
    args = parser.parse_args()
    links = judged_links(dataset("fashion-products") / "images")
    counts = Counter(links.verdict.values())
    print(f"{len(links.pairs)} pairs judged by eye: " + ", ".join(f"{n} {v}" for v, n in counts.most_common()))
    judged = counts["copy"] + counts["different"] + counts["variant"]
    print(f"the v4 audit's precision on them: {counts['copy'] / judged:.3f} (every pair here was linked)")
    print(f"\n{'rule':<26}{'linked':>8}{'copies':>8}{'other':>7}{'precision':>11}{'copies kept':>13}")
    for name, rule in RULES.items():
        linked = linked_verdicts(links, rule)
        other = linked["different"] + linked["variant"]
        print(f"{name:<26}{sum(linked.values()):>8}{linked['copy']:>8}{other:>7}"
              f"{linked['copy'] / max(1, linked['copy'] + other):>11.3f}{linked['copy'] / counts['copy']:>13.3f}")
    if args.record:
        linked = linked_verdicts(links, DEFAULT_RULE)
        kept = f"all {counts['copy']}" if linked["copy"] == counts["copy"] else f"{linked['copy']} of {counts['copy']}"
        precision = linked["copy"] / max(1, linked["copy"] + linked["different"] + linked["variant"])
        record("dedup-calibrate", area="Duplicates and audit", title="Near copies and annotation-tool exports",
               data=f"{len(links.pairs)} near-copy links of an earlier audit on fashion-products, each judged by eye",
               part="real catalogue, judged by eye", issue=30, guide="guides/dedup-audit.md",
               figures=[{"figure": f"Judged fashion-products near links: precision ({kept} copies kept)",
                         "value": round(precision, 3)}])


if __name__ == "__main__":
    main()
