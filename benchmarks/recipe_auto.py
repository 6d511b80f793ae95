"""`--recipe auto`'s cost and choice: `train` and 5-fold `cross_validate` with no training flags, timed end to end
inside Python, warm (each candidate's features and the copy check are read once before the clock starts).
Prints the figures and writes JSON.

    .venv/bin/python benchmarks/recipe_auto.py [--sets decor clothing-small fashion-products] [--seeds 0 1 2]
        [--json build/recipe_auto.json] [--record]

decor: the 285 product photos, style and country, cross-validated with each of `--seeds`; clothing-small: train and
validation folders, category (`train` scores the given validation folder; cross-validation is left out, five
searches on 3,409 images being the expensive part); fashion-products: the 12,000 thumbnails, articleType, gender and
baseColour, `train --test 0.2` as the README's command (every class of 2+ images kept), the test part scored.
--record writes decor's folds to benchmarks/results/classify-decor.json and fashion-products' test part to
classify-fashion-products-default.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

from _shared import dataset, print_metrics, timed
from record import add_flag, record


def decor():
    from fashionlens.data import read_table

    root = dataset("decor")
    return read_table(root / "decor.csv", image_column="file", images_root=root / "images", tasks=["decor", "country"],
                      where={"type": {"product"}})


def clothing_small():
    from fashionlens.data import read_folder

    return read_folder(dataset("clothing-small"))


def fashion_products():
    from fashionlens.data import read_table

    root = dataset("fashion-products")
    return read_table(root / "styles.csv", image_column="id", images_root=root / "images",
                      tasks=["articleType", "gender", "baseColour"])


# (data, cross-validate too, test fraction of `train`)
SETS = {"decor": (decor, True, 0.0), "clothing-small": (clothing_small, False, 0.0),
        "fashion-products": (fashion_products, False, 0.2)}


def warm_up(data, config) -> None:
    """Reads every candidate's features and the copy pairs once, so the timed run measures a warm cache."""
    from fashionlens.classify.recipe import candidate_configs
    from fashionlens.classify.train import FeatureSets, groups_of

    sets = FeatureSets(data)
    for candidate in candidate_configs(config, len(data)).values():
        groups_of(sets(candidate), candidate)


def run(name: str, seeds: list[int]) -> dict:
    from fashionlens.classify import TrainConfig, cross_validate, train

    load, crossval, test = SETS[name]
    data = load()
    config = TrainConfig(recipe="auto", test=test, progress=False)
    warm_up(data, config)
    figures: dict = {"images": len(data)}
    with tempfile.TemporaryDirectory() as tmp, timed(figures, "train_seconds"):
        result = train(data, Path(tmp) / "model", config)
    figures["train_recipe"] = result.recipe.to_json()
    figures["train_metrics"] = result.metrics
    figures["train_split"] = result.split.summary()
    print(f"\n{name}: {len(data)} images; train {figures['train_seconds']:.1f} s, {result.recipe.describe()}")
    for split_name, metrics in result.metrics.items():
        print_metrics(f"{name}, train: {split_name}", metrics)
    if crossval:
        figures["crossval"] = {}
        for seed in seeds:
            with timed(figures, f"crossval_seconds_seed{seed}"):
                cv = cross_validate(data, replace(config, seed=seed), folds=5)
            recipes = [r.recipe for r in cv.recipes]
            figures["crossval"][seed] = {"tasks": [s.to_json() for s in cv.tasks], "recipes": recipes}
            print(f"{name}: 5-fold cross-validation, seed {seed}, {figures[f'crossval_seconds_seed{seed}']:.1f} s, "
                  f"recipes {recipes}")
            for s in cv.tasks:
                print(f"  {s.task}: {s.accuracy_mean:.4f} ± {s.accuracy_std:.4f}")
    return figures


def record_decor(figures: dict) -> None:
    runs = figures["crossval"]
    first = min(runs)
    tasks = {t["task"]: t for t in runs[first]["tasks"]}
    style, country = tasks["decor"], tasks["country"]
    rows = [{"figure": "Style accuracy, mean over folds, no training flags (recipe auto)",
             "value": round(style["accuracy_mean"], 3), "target": ">= 0.92", "headline": True},
            {"figure": "Style accuracy, standard deviation over folds", "value": round(style["accuracy_std"], 3)},
            {"figure": "Country accuracy, mean over folds", "value": round(country["accuracy_mean"], 3)}]
    for seed in sorted(runs)[1:]:
        other = {t["task"]: t for t in runs[seed]["tasks"]}["decor"]
        rows.append({"figure": f"Style accuracy, mean over seed {seed}'s folds", "value": round(other["accuracy_mean"], 3)})
    record("classify-decor", area="Classify", title="decor styles, cross-validated",
           data=f"decor: {figures['images']} product photos, 7 styles; 5 folds, seeds {', '.join(map(str, runs))}, "
                f"every photo scored once a seed; recipes chosen on seed {first}: {', '.join(runs[first]['recipes'])}",
           part="5-fold cross-validation", issue=31, guide="guides/classify.md", figures=rows)


def record_products(figures: dict) -> None:
    test = figures["train_metrics"]["test"]
    targets = {"articleType": ">= 0.86", "gender": ">= 0.90", "baseColour": ">= 0.66"}
    rows = [{"figure": f"{task} accuracy", "value": round(test[task]["accuracy"], 3), "target": targets[task]}
            for task in targets]
    rows.append({"figure": "Wall time, warm feature cache", "value": round(figures["train_seconds"] / 60, 1),
                 "unit": "minutes", "target": "< 20", "part": "time, this machine (2 cores shared)"})
    choice = figures["train_recipe"]
    record("classify-fashion-products-default", area="Classify",
           title="fashion-products, `train` with no training flags (recipe auto)",
           data=f"fashion-products: {figures['images']:,} thumbnails, 20% held out by whole copy groups "
                f"({test['articleType']['n']:,} test images); auto chose {choice['recipe']} on inner folds of the "
                f"{choice['images']:,} training images", part="test", issue=31, guide="guides/classify.md", figures=rows)


RECORDS = {"decor": record_decor, "fashion-products": record_products}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=["decor"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="decor's cross-validation folds")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    add_flag(parser)
    args = parser.parse_args()
    figures = {name: run(name, args.seeds) for name in args.sets}
    if args.record:
        for name in set(args.sets) & set(RECORDS):
            RECORDS[name](figures[name])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
