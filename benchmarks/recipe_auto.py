"""`--recipe auto`'s cost and choice: `train` and 5-fold `cross_validate` with no training flags, timed end to end
inside Python (warm: run it twice, the first run fills the feature cache). Prints the figures and writes JSON.

    .venv/bin/python benchmarks/recipe_auto.py [--sets decor clothing-small] [--json build/recipe_auto.json]

decor: the 285 product photos, style and country; clothing-small: train and validation folders, category (`train`
scores the given validation folder; cross-validation is left out, five searches on 3,409 images being the
expensive part).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _shared import dataset, print_metrics, timed


def decor():
    from fashionlens.data import read_table

    root = dataset("decor")
    return read_table(root / "decor.csv", image_column="file", images_root=root / "images", tasks=["decor", "country"],
                      where={"type": {"product"}})


def clothing_small():
    from fashionlens.data import read_folder

    return read_folder(dataset("clothing-small"))


SETS = {"decor": (decor, True), "clothing-small": (clothing_small, False)}  # (data, cross-validate too)


def run(name: str) -> dict:
    from fashionlens.classify import TrainConfig, cross_validate, train

    load, crossval = SETS[name]
    data = load()
    config = TrainConfig(recipe="auto", progress=False)
    figures: dict = {"images": len(data)}
    with tempfile.TemporaryDirectory() as tmp, timed(figures, "train_seconds"):
        result = train(data, Path(tmp) / "model", config)
    figures["train_recipe"] = result.recipe.to_json()
    figures["train_metrics"] = result.metrics
    print(f"\n{name}: {len(data)} images; train {figures['train_seconds']:.1f} s, {result.recipe.describe()}")
    for split_name, metrics in result.metrics.items():
        print_metrics(f"{name}, train: {split_name}", metrics)
    if crossval:
        with timed(figures, "crossval_seconds"):
            cv = cross_validate(data, config, folds=5)
        figures["crossval"] = [s.to_json() for s in cv.tasks]
        figures["crossval_recipes"] = [r.recipe for r in cv.recipes]
        print(f"{name}: 5-fold cross-validation {figures['crossval_seconds']:.1f} s, recipes {figures['crossval_recipes']}")
        for s in cv.tasks:
            print(f"  {s.task}: {s.accuracy_mean:.4f} ± {s.accuracy_std:.4f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=["decor"])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    figures = {name: run(name) for name in args.sets}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
