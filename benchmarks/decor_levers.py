"""decor products: the logistic heads' levers on cached features, over the 5 folds of several seeds.

    .venv/bin/python benchmarks/decor_levers.py [--resize crop|pad] [--seeds 0,1,2]

For each seed (the folds of `cross-validate --seed S`), style accuracy mean ± std over the folds of the heads
`--head-fit logistic` fits (C 0.1, standardised, `--validation 0`) on Lite1 features with `--pool-stages 1,2,3,4
--colour-bins 8 --colour-space hsv`: the histogram as shares and as square roots (what `--colour-sqrt` computes in
the graph, here from the same cached shares), then with flips: the mirror's features averaged at test (`--tta`),
added as training rows, or both. The mirrors' features are computed once and cached.
"""

from __future__ import annotations

import argparse

import numpy as np
from _shared import dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resize", default="crop", choices=("crop", "pad"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--c", type=float, default=0.1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from fashionlens.classify import TrainConfig
    from fashionlens.classify.heads import fit_logistic_heads
    from fashionlens.classify.train import folds_of, labelled_features
    from fashionlens.data import read_table
    from fashionlens.features import extract_features

    root = dataset("decor")
    data = read_table(root / "decor.csv", image_column="file", images_root=root / "images", tasks=["decor", "country"],
                      where={"type": {"product"}})
    bins = 8
    print(f"decor products, Lite1 {args.resize}, logistic heads C={args.c}, style accuracy over 5 folds")
    for seed in (int(s) for s in args.seeds.split(",")):
        config = TrainConfig(resize=args.resize, pool_stages=(1, 2, 3, 4), colour_bins=bins, colour_space="hsv",
                             standardize=True, validation=0, seed=seed, progress=False)
        lf = labelled_features(data, config)
        shares = lf.features.vectors
        mirror_shares = extract_features(lf.backbone, [s.path for s in lf.samples], cache=lf.cache, progress=False,
                                         mirror=True).vectors
        rooted, mirror = shares.copy(), mirror_shares.copy()
        rooted[:, -bins**3:], mirror[:, -bins**3:] = np.sqrt(rooted[:, -bins**3:]), np.sqrt(mirror[:, -bins**3:])
        y = lf.y
        scores: dict[str, list[float]] = {}

        def score(name: str, x_train, y_train, tests: list[np.ndarray], truth: np.ndarray) -> None:
            heads, _ = fit_logistic_heads(x_train, y_train, lf.tasks, c=args.c, standardize=True)
            probs = sum(heads.probabilities(x)["decor"] for x in tests)
            scores.setdefault(name, []).append(float((probs.argmax(1) == truth).mean()))

        for split in folds_of(lf, config, 5):
            tr, te = split.train, split.test
            both_x, both_y = np.concatenate([rooted[tr], mirror[tr]]), np.concatenate([y[tr], y[tr]])
            score("shares", shares[tr], y[tr], [shares[te]], y[te, 0])
            score("square roots (--colour-sqrt)", rooted[tr], y[tr], [rooted[te]], y[te, 0])
            score("  + test flips", rooted[tr], y[tr], [rooted[te], mirror[te]], y[te, 0])
            score("  + training flips", both_x, both_y, [rooted[te]], y[te, 0])
            score("  + both", both_x, both_y, [rooted[te], mirror[te]], y[te, 0])
        for name, values in scores.items():
            print(f"seed {seed}  {name:<32}{np.mean(values):.3f} ± {np.std(values):.3f}")


if __name__ == "__main__":
    main()
