"""How the label check's flagging rule was chosen: random subsets of clothing-small's train folder (never the
held-out validation folder, on which audit_flips.py --splits validation reports), a share of their labels flipped
in memory, out-of-fold probabilities from the audit's fold heads, then each rule's precision and recall on the
flipped images, averaged over the draws (with the worst draw).

Rules: `ratio<R>` flags p(given) / max p < R (the audit's, `MAX_GIVEN_RATIO`); a cleanlab `filter_by` name runs
`cleanlab.filter.find_label_issues` with it; `top<F>` flags the F share of images with the least likely given
label (an oracle's count: the ranking's ceiling).

    .venv/bin/python benchmarks/audit_rule.py --images 350 --draws 12 ratio0.1 ratio0.15 ratio0.2 both
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from _shared import dataset


def flag(rule: str, y: np.ndarray, probs: np.ndarray) -> set[int]:
    from fashionlens.audit.labels import label_issues

    if rule.startswith("ratio"):
        return set(label_issues(y, probs, max_ratio=float(rule[5:])).rows.tolist())
    if rule.startswith("top"):
        return set(np.argsort(probs[np.arange(len(y)), y])[:round(float(rule[3:]) * len(y))].tolist())
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return set(np.flatnonzero(find_label_issues(y, probs, filter_by=rule, n_jobs=1)).tolist())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rules", nargs="+")
    parser.add_argument("--images", type=int, default=350)
    parser.add_argument("--draws", type=int, default=12)
    parser.add_argument("--rate", type=float, default=0.07)
    parser.add_argument("--repeats", type=int, default=None, help="cross-validations averaged (default: the audit's)")
    args = parser.parse_args()
    from fashionlens.audit.labels import HeadSettings, out_of_fold_probabilities
    from fashionlens.backbones import create_backbone
    from fashionlens.cache import FeatureCache
    from fashionlens.classify.model import TaskSpec
    from fashionlens.features import extract_features

    paths = sorted((dataset("clothing-small") / "train").glob("*/*.jpg"))
    feats = extract_features(create_backbone(), paths, cache=FeatureCache(), progress=False)
    names = [paths[i].parent.name for i in feats.indices]
    classes = sorted(set(names))
    truth = np.array([classes.index(n) for n in names])
    task = TaskSpec("category", tuple(classes))
    heads = HeadSettings() if args.repeats is None else HeadSettings(repeats=args.repeats)
    scores: dict[str, list[tuple[float, float, int]]] = {rule: [] for rule in args.rules}
    accuracy = []
    for draw in range(args.draws):
        rng = np.random.default_rng(draw)
        pick = np.sort(rng.choice(len(truth), args.images, replace=False))
        y = truth[pick].copy()
        flipped = rng.choice(args.images, round(args.rate * args.images), replace=False)
        for i in flipped:
            y[i] = rng.choice([c for c in range(len(classes)) if c != y[i]])
        probs = out_of_fold_probabilities(feats.vectors[pick], y[:, None], [task], [feats.sha256[i] for i in pick],
                                          [feats.phash[i] for i in pick], seed=draw, heads=heads)[task.name]
        accuracy.append(float((probs.argmax(1) == truth[pick]).mean()))
        for rule in args.rules:
            found = flag(rule, y, probs)
            hits = len(found & set(flipped.tolist()))
            scores[rule].append((hits / max(len(found), 1), hits / len(flipped), len(found)))
    print(f"{args.draws} draws of {args.images} clothing-small train images, {args.rate:.0%} flipped, "
          f"{heads.repeats_for(args.images)} cross-validation(s) averaged; out-of-fold "
          f"accuracy against the true labels {np.mean(accuracy):.3f}")
    for rule, rows in scores.items():
        p, r, n = np.array(rows).T
        print(f"{rule:24s} precision {p.mean():.3f} (worst {p.min():.2f})  recall {r.mean():.3f} (worst {r.min():.2f})  "
              f"flagged {n.mean():.1f}")


if __name__ == "__main__":
    main()
