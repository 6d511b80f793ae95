"""decor products: the shipped heads against prototype and nearest-neighbour heads, on the same 5 folds and features.

    .venv/bin/python benchmarks/decor_heads.py [--pool-stages 1,2,3,4 --colour-bins 8 --colour-space hsv]

The heads are `cross_validate`'s (TrainConfig with --standardize --validation 0); the others are scikit-learn's,
fitted on the same standardised training features of each fold: cosine nearest neighbours (k 1 and 5, distance
weighted), one prototype per class (nearest centroid), and L2-regularised logistic regression.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from _shared import dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="efficientnet_lite1")
    parser.add_argument("--pool-stages", default="1,2,3,4")
    parser.add_argument("--colour-bins", type=int, default=8)
    parser.add_argument("--colour-space", default="hsv")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
    from sklearn.preprocessing import StandardScaler

    warnings.filterwarnings("ignore", message=".*zero standard deviation", category=UserWarning)  # NearestCentroid

    from fashionlens.classify import TrainConfig, cross_validate
    from fashionlens.classify.train import folds_of, labelled_features
    from fashionlens.data import read_table

    root = dataset("decor")
    data = read_table(root / "decor.csv", image_column="file", images_root=root / "images", tasks=["decor"],
                      where={"type": {"product"}})
    stages = tuple(int(v) for v in args.pool_stages.split(",") if v)
    config = TrainConfig(backbone=args.backbone, pool_stages=stages, colour_bins=args.colour_bins,
                         colour_space=args.colour_space, standardize=True, validation=0, progress=False)
    lf = labelled_features(data, config)
    x, y = lf.features.vectors, lf.y[:, 0]
    others = {
        "kNN, k=1 (cosine)": lambda: KNeighborsClassifier(1, metric="cosine"),
        "kNN, k=5 (cosine, distance-weighted)": lambda: KNeighborsClassifier(5, metric="cosine", weights="distance"),
        "prototype per class (nearest centroid)": NearestCentroid,
        "logistic regression (C=0.1)": lambda: LogisticRegression(C=0.1, max_iter=3000),
    }
    print(f"decor products ({len(y)} images), {args.backbone}, stages {stages}, colour bins {args.colour_bins} "
          f"{args.colour_space}, {args.folds} folds")
    shipped = cross_validate(data, config, folds=args.folds).tasks[0]
    print(f"{'linear heads (fashionlens, --standardize --validation 0)':<58}{shipped.accuracy_mean:.4f} ± {shipped.accuracy_std:.4f}")
    for name, make in others.items():
        scores = []
        for split in folds_of(lf, config, args.folds):
            scaler = StandardScaler().fit(x[split.train])
            model = make().fit(scaler.transform(x[split.train]), y[split.train])
            scores.append(float((model.predict(scaler.transform(x[split.test])) == y[split.test]).mean()))
        print(f"{name:<58}{np.mean(scores):.4f} ± {np.std(scores):.4f}")


if __name__ == "__main__":
    main()
