"""Training and evaluation on the real data in ../shared/datasets (skipped where it is absent).

Floors sit about 0.05 below what was measured with efficientnet_lite0 when these tests were written, so a
drop in quality fails while run-to-run noise does not.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from fashionlens.classify import TrainConfig, evaluate, train
from fashionlens.data import parse_label_map, read_folder, read_table
from fashionlens.defaults import default_classifier_dir
from fashionlens.fingerprints import sha256_file

pytestmark = pytest.mark.integration

BACKBONE = "efficientnet_lite0"
PER_CLASS = 30
PRODUCT_ROWS = 1500

# measured accuracy minus about 0.05 (measured: clothing subset 0.72, products gender 0.79 and masterCategory
# 0.98, decor styles 0.95, decor countries 0.95; the default model 0.89, its floor is the product requirement)
CLOTHING_SUBSET_FLOOR = 0.67
PRODUCTS_FLOOR = {"gender": 0.74, "masterCategory": 0.93}
DECOR_FLOOR = 0.78  # 57 test images: one image is 1.8 points, and the split moves with the grouping (0.82 to 0.90 seen)
COUNTRY_FLOOR = 0.90
# 5-fold cross-validation scores all 285 product photos (measured with lite0, colour and stage features: styles
# 0.884 ± 0.021, countries 0.930 ± 0.029); the floors sit 0.05 below the means
DECOR_CV_FLOOR = 0.83
COUNTRY_CV_FLOOR = 0.88
DEFAULT_MODEL_FLOOR = 0.88  # measured 0.900 (README)

COUNTRY_OF = [
    "decor:Gzhel,Khokhloma,Gorodets=Russia",
    "decor:Wycinanki łowickie,Wzory kaszubskie=Poland",
    "decor:Iznik=Turkey",
    "decor:Neglyubka=Belarus",
]


def config(**kwargs) -> TrainConfig:
    return TrainConfig(backbone=BACKBONE, progress=False, **kwargs)


@pytest.fixture(scope="module")
def clothing(shared_datasets) -> Path:
    return shared_datasets / "clothing-small"


@pytest.fixture(scope="module")
def clothing_validation(clothing):
    return read_folder(clothing / "validation")


# --------------------------------------------------------------------------- 12. clothing-small, 30 per class


def test_clothing_subset_linear(clothing, clothing_validation, tmp_path):
    full = read_folder(clothing / "train")
    taken: dict[str, int] = defaultdict(int)
    keep = []
    for i, sample in enumerate(full.samples):  # read_folder sorts: the first 30 files of each class
        label = sample.labels["category"]
        if taken[label] < PER_CLASS:
            taken[label] += 1
            keep.append(i)
    subset = full.subset(keep)
    assert len(subset) == 10 * PER_CLASS and set(subset.counts("category").values()) == {PER_CLASS}

    result = train(subset, tmp_path / "model", config())
    assert not result.skipped
    assert len(clothing_validation) == 341
    metrics = evaluate(result.model_dir, clothing_validation, tmp_path / "report", progress=False)
    m = metrics["category"]
    print(f"clothing-small, {PER_CLASS}/class, lite0 linear: validation folder accuracy {m['accuracy']:.4f}")
    assert m["n"] == 341
    assert m["accuracy"] >= CLOTHING_SUBSET_FLOOR, m["accuracy"]
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == metrics


# --------------------------------------------------------------------------- 13. fashion-products, two tasks


def test_fashion_products_two_tasks(shared_datasets, tmp_path):
    root = shared_datasets / "fashion-products"
    with open(root / "styles.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    table = tmp_path / "styles-1500.csv"
    with open(table, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows[: PRODUCT_ROWS + 1])

    data = read_table(table, image_column="id", images_root=root / "images", tasks=["gender", "masterCategory"])
    assert len(data) == PRODUCT_ROWS
    result = train(data, tmp_path / "model", config(test=0.2))
    assert not result.skipped

    test = result.metrics["test"]
    print("fashion-products, 1500 rows, lite0 linear: test accuracy "
          + ", ".join(f"{task} {m['accuracy']:.4f}" for task, m in test.items()))
    for task, floor in PRODUCTS_FLOOR.items():
        assert test[task]["n"] == len(result.split.test)
        assert test[task]["accuracy"] >= floor, (task, test[task]["accuracy"])

    # byte-identical product images are grouped, and every group stays inside one split
    split = result.split
    assert split.duplicate_groups > 0
    part = {i: name for name, rows_ in (("train", split.train), ("validation", split.validation), ("test", split.test))
            for i in rows_}
    copies: dict[str, list[int]] = defaultdict(list)
    for i, sample in enumerate(data.samples):
        copies[sha256_file(sample.path)].append(i)
    groups = [g for g in copies.values() if len(g) > 1]
    assert groups  # the README's byte-identical listings are among these rows
    for group in groups:
        assert len({part[i] for i in group}) == 1, [data.samples[i].path.name for i in group]


# --------------------------------------------------------------------------- 14. decor products, label merging


@pytest.fixture(scope="module")
def decor_rows(shared_datasets) -> list[dict]:
    with open(shared_datasets / "decor" / "decor.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_decor_products(shared_datasets, decor_rows, tmp_path):
    products = [r for r in decor_rows if r["type"] == "product"]
    data = read_table(shared_datasets / "decor" / "decor.csv", image_column="file", tasks=["decor"],
                      where={"type": {"product"}})
    assert len(data) == len(products) and not data.skipped
    assert data.counts("decor") == {d: sum(r["decor"] == d for r in products) for d in {r["decor"] for r in products}}

    result = train(data, tmp_path / "model", config(test=0.2))
    m = result.metrics["test"]["decor"]
    print(f"decor products, 7 styles, lite0 linear: test accuracy {m['accuracy']:.4f} (n={m['n']})")
    assert m["accuracy"] >= DECOR_FLOOR, m["accuracy"]


def test_decor_styles_merged_into_countries(shared_datasets, decor_rows, tmp_path):
    label_map = parse_label_map(COUNTRY_OF)
    data = read_table(shared_datasets / "decor" / "decor.csv", image_column="file", tasks=["decor"],
                      where={"type": {"product"}}, label_map=label_map)
    country_of_file = {r["file"]: r["country"] for r in decor_rows if r["type"] == "product"}
    assert len(data) == len(country_of_file)
    for sample in data.samples:  # the merge reproduces the table's own country column
        assert sample.labels["decor"] == country_of_file[sample.path.name], sample.path.name
    assert set(data.classes("decor")) == {"Russia", "Poland", "Turkey", "Belarus"}

    result = train(data, tmp_path / "model", config(test=0.2))
    manifest = json.loads((result.model_dir / "manifest.json").read_text())
    assert manifest["tasks"][0]["classes"] == ["Belarus", "Poland", "Russia", "Turkey"]
    m = result.metrics["test"]["decor"]
    print(f"decor products by country, lite0 linear: test accuracy {m['accuracy']:.4f} (n={m['n']})")
    assert m["accuracy"] >= COUNTRY_FLOOR, m["accuracy"]


def test_decor_products_cross_validated(shared_datasets, tmp_path):
    from fashionlens.classify import cross_validate

    data = read_table(shared_datasets / "decor" / "decor.csv", image_column="file", tasks=["decor", "country"],
                      where={"type": {"product"}})
    settings = config(pool_stages=(1, 2, 3, 4), colour_bins=8, colour_space="hsv", standardize=True, validation=0)
    result = cross_validate(data, settings, folds=5, out=tmp_path / "cv")
    scores = {s.task: s for s in result.tasks}
    for task in ("decor", "country"):
        assert sum(f.images for f in scores[task].folds) == len(data)  # every photo scored once
        print(f"decor products, {task}, lite0 + stages + HSV, 5-fold: {scores[task].accuracy_mean:.4f} "
              f"± {scores[task].accuracy_std:.4f}")
    assert scores["decor"].accuracy_mean >= DECOR_CV_FLOOR, scores["decor"]
    assert scores["country"].accuracy_mean >= COUNTRY_CV_FLOOR, scores["country"]


# --------------------------------------------------------------------------- 15. the shipped default model


def test_default_model_on_clothing_validation(clothing_validation, tmp_path):
    folder = default_classifier_dir()
    if not (folder / "manifest.json").is_file():
        pytest.skip(f"the shipped default model is not trained yet ({folder} has no manifest.json)")
    metrics = evaluate(folder, clothing_validation, tmp_path / "report", progress=False)
    m = metrics["category"]
    print(f"shipped default model on clothing-small validation: accuracy {m['accuracy']:.4f}")
    assert m["n"] == 341
    assert m["accuracy"] >= DEFAULT_MODEL_FLOOR, m["accuracy"]


def test_copy_verification_on_a_catalogues_judged_look_alikes(shared_datasets):
    """The near-copy links an earlier verification made on fashion-products, judged by eye
    (benchmarks/near_links.py): then 36% were copies; the shipped rule must keep its precision and its copies."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from near_links import judged_links, linked_verdicts

    from fashionlens.dedup.verify import DEFAULT_RULE

    links = judged_links(shared_datasets / "fashion-products" / "images")
    linked = linked_verdicts(links, DEFAULT_RULE)
    shown = linked["copy"] + linked["different"] + linked["variant"]
    assert linked["copy"] / shown >= 0.6, linked
    assert linked["copy"] >= 0.95 * list(links.verdict.values()).count("copy"), linked


# What `analyze` shows on colorful-fashion's validation photos, the part its operating point was chosen on
# (measured: precision 0.867, recall 0.745, duplicates 0.1%); the test part is scored once per kept change in
# benchmarks/pipeline_street.py. The floors sit a little below, and at the targets for duplicates.
STREET_PRECISION_FLOOR, STREET_RECALL_FLOOR, STREET_DUPLICATES_CEILING = 0.82, 0.70, 0.01


def test_street_photos_show_real_garments_once(shared_datasets, tmp_path):
    from fashionlens.detect.formats import read_dataset
    from fashionlens.detect.train import split_dataset
    from fashionlens.pipeline import Analyzer, PipelineConfig
    from fashionlens.pipeline.evaluate import evaluate_pipeline

    photos = split_dataset(read_dataset(shared_datasets / "colorful-fashion"), 0.1, 0.15)["validation"]
    report = evaluate_pipeline(Analyzer(PipelineConfig(similar_k=0)), photos, out_dir=tmp_path / "report")
    overall = report.boxes["overall"]
    assert overall["precision"] >= STREET_PRECISION_FLOOR, overall
    assert overall["recall"] >= STREET_RECALL_FLOOR, overall
    assert overall["duplicate_share"] <= STREET_DUPLICATES_CEILING, overall
    assert report.operating_point["operating_point"]["source"] == "manifest"
    assert (tmp_path / "report" / "index.html").exists() and list((tmp_path / "report" / "worst").glob("*.jpg"))
