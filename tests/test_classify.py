"""Classification end to end on generated images: train, save/load, export, feature cache, splits, fine-tuning.

Everything uses efficientnet_lite0 (the fastest backbone). The generated data is built once per module and
trained on once; tests that change a model work on a copy of its folder.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from fashionlens.backbones import create_backbone
from fashionlens.cache import FeatureCache, default_cache_dir
from fashionlens.classify import (
    Classifier,
    Heads,
    ModelError,
    Predictor,
    TaskSpec,
    TrainConfig,
    export,
    load_model,
    save_model,
    train,
)
from fashionlens.classify.finetune import _set_train_mode, unfreeze_last_blocks
from fashionlens.classify.heads import class_weights, multitask_loss
from fashionlens.classify.train import HEAD_DEFAULTS, label_matrix
from fashionlens.data import read_folder, read_table
from fashionlens.fingerprints import sha256_file
from fashionlens.features import DecodeDataset, extract_features
from fashionlens.preprocess import PreprocessConfig
from fashionlens.splits import make_folds, make_split, parse_fold

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples" / "clothing").glob("*.jpg"))
ONE_PER_CLASS = SAMPLES[::3]  # real photos for runtime comparisons; fewer images keep the tests fast
BACKBONE = "efficientnet_lite0"
COLOURS = {"red": (205, 35, 30), "green": (35, 165, 55), "blue": (40, 60, 215)}
PER_CLASS = 12


# --------------------------------------------------------------------------- generated data


def picture(colour: tuple[int, int, int], rng: np.random.Generator, *, striped: bool = True, size: int = 96) -> Image.Image:
    """A clearly coloured image; random stripes and noise make every picture (and its perceptual hash) distinct."""
    base = np.array(colour, dtype=np.float32)
    img = np.broadcast_to(base, (size, size, 3)).copy()
    if striped:
        period = int(rng.integers(8, 28))
        phase = int(rng.integers(0, period))
        yy, xx = np.mgrid[0:size, 0:size]
        coord = {0: xx, 1: yy, 2: xx + yy, 3: xx - yy + size}[int(rng.integers(0, 4))]
        stripe = ((coord + phase) % period) < period // 2
        img[stripe] = base * float(rng.uniform(0.35, 0.6))
    else:  # plain: a few soft blotches, no regular stripes
        for _ in range(3):
            x0, y0 = rng.integers(0, size - 20, 2)
            w, h = rng.integers(10, 40, 2)
            img[y0 : y0 + h, x0 : x0 + w] *= float(rng.uniform(0.75, 0.95))
    img += rng.normal(0, 10, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_class_folders(root: Path, per_class: int = PER_CLASS, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            picture(colour, rng).save(root / name / f"{name}_{i:02d}.jpg", quality=92)
    return root


def corrupt_jpeg(path: Path) -> Path:
    """A real JPEG cut in half: the header parses, decoding fails."""
    buf = io.BytesIO()
    picture((120, 120, 120), np.random.default_rng(99), size=128).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture(scope="module")
def lite0():
    return create_backbone(BACKBONE)


@pytest.fixture(scope="module")
def colour_dir(tmp_path_factory) -> Path:
    return make_class_folders(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def trained(colour_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "colours"
    config = TrainConfig(backbone=BACKBONE, validation=0.25, progress=False, workers=0)
    return train(read_folder(colour_dir), out, config)


@pytest.fixture(scope="module")
def torch_reference(trained):
    """PyTorch eager probabilities of the trained model on one real photo per clothing class."""
    return Predictor(load_model(trained.model_dir).classifier, "torch").probabilities(ONE_PER_CLASS)


def copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ("manifest.json", "weights.safetensors"):
        shutil.copy2(src / name, dst / name)
    return dst


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest))


# --------------------------------------------------------------------------- 1. linear training


def test_linear_training_writes_complete_model_folder(trained, lite0):
    folder = trained.model_dir
    assert (folder / "manifest.json").is_file() and (folder / "weights.safetensors").is_file()
    m = read_manifest(folder)

    assert m["format"] == "fashionlens-classifier"
    assert m["backbone"]["name"] == BACKBONE
    assert m["backbone"]["weights_id"] == lite0.weights_id and m["backbone"]["weights_id"].startswith("sha256:")
    assert m["backbone"]["feature_dim"] == lite0.feature_dim
    assert m["backbone"]["stored"] is False
    assert PreprocessConfig.from_dict(m["preprocess"]) == lite0.preprocess
    assert [t["name"] for t in m["tasks"]] == ["category"]
    assert m["tasks"][0]["classes"] == sorted(COLOURS)
    assert m["weights"]["sha256"] == sha256_file(folder / "weights.safetensors")

    # a linear model stores its heads only, not the backbone
    with safe_open(folder / "weights.safetensors", "pt") as fh:
        keys = list(fh.keys())
    assert keys and all(k.startswith("heads.") for k in keys)

    data = m["data"]
    assert data["images"] == 3 * PER_CLASS
    assert data["tasks"]["category"] == {name: PER_CLASS for name in COLOURS}
    split = data["split"]
    assert split["train"] + split["validation"] == 3 * PER_CLASS
    assert split["train"] > 0 and split["validation"] > 0 and split["test"] == 0
    assert split["duplicate_groups"] == 0  # every generated picture is distinct: no false grouping
    assert split == trained.split.summary()
    assert set(trained.split.train).isdisjoint(trained.split.validation)

    validation = m["metrics"]["validation"]["category"]
    assert validation["n"] == split["validation"]
    assert validation["accuracy"] >= 0.9, validation
    assert m["metrics"] == trained.metrics
    assert json.loads((folder / "report" / "validation" / "metrics.json").read_text()) == trained.metrics["validation"]

    assert m["versions"]["fashionlens"] != "not installed"
    for package in ("python", "torch", "timm", "onnxruntime", "safetensors", "numpy"):
        assert m["versions"][package]
    assert m["training"]["mode"] == "linear" and m["training"]["backbone"] == BACKBONE


# --------------------------------------------------------------------------- 2. save / load round trip


@pytest.mark.parametrize("store_backbone", [False, True])
def test_save_load_round_trip_is_exact(tmp_path, store_backbone):
    torch.manual_seed(1)
    backbone = create_backbone(BACKBONE)
    tasks = [TaskSpec("colour", ("a", "b", "c")), TaskSpec("size", ("s", "m", "l", "xl"), hidden=16)]
    classifier = Classifier(backbone, Heads(backbone.feature_dim, tasks)).eval()
    images = SAMPLES[1::6]
    before = Predictor(classifier, "torch").probabilities(images)

    save_model(classifier, tmp_path / "m", store_backbone=store_backbone)
    loaded = load_model(tmp_path / "m")
    after = Predictor(loaded.classifier, "torch").probabilities(images)

    assert [t.to_dict() for t in loaded.classifier.tasks] == [t.to_dict() for t in tasks]
    assert after.indices == before.indices == list(range(len(images)))
    for task in tasks:
        assert before.probs[task.name].shape == (len(images), len(task.classes))
        assert np.array_equal(before.probs[task.name], after.probs[task.name]), task.name
    # random heads on real photos: the probabilities depend on the image (the comparison is not trivial)
    assert np.ptp(before.probs["colour"][:, 0]) > 1e-3


def test_features_runtime_agrees_with_torch(trained, torch_reference):
    loaded = load_model(trained.model_dir)
    feats_p = Predictor(loaded.classifier, "features").probabilities(ONE_PER_CLASS)
    assert torch_reference.indices == feats_p.indices == list(range(len(ONE_PER_CLASS)))
    diff = np.abs(torch_reference.probs["category"] - feats_p.probs["category"]).max()
    assert diff <= 1e-4, diff


# --------------------------------------------------------------------------- 3. load errors


def _drop_manifest(folder: Path) -> None:
    (folder / "manifest.json").unlink()


def _garble_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"format": "fashionlens-classifier", ')


def _wrong_format(folder: Path) -> None:
    m = read_manifest(folder)
    m["format"] = "someone-elses-model"
    write_manifest(folder, m)


def _newer_format_version(folder: Path) -> None:
    m = read_manifest(folder)
    m["format_version"] = 99
    write_manifest(folder, m)


def _tamper_weights(folder: Path) -> None:
    path = folder / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))


def _drop_weights(folder: Path) -> None:
    (folder / "weights.safetensors").unlink()


def _other_backbone_weights(folder: Path) -> None:
    m = read_manifest(folder)
    m["backbone"]["weights_id"] = "sha256:" + "0" * 64
    write_manifest(folder, m)


def _class_added(folder: Path) -> None:
    m = read_manifest(folder)
    m["tasks"][0]["classes"].append("purple")
    write_manifest(folder, m)


@pytest.mark.parametrize(
    "damage, message",
    [
        (_drop_manifest, r"not a fashionlens model \(no manifest\.json\)"),
        (_garble_manifest, r"manifest\.json: not valid JSON"),
        (_wrong_format, r"format is 'someone-elses-model', expected 'fashionlens-classifier'"),
        (_newer_format_version, r"format version 99 is newer"),
        (_tamper_weights, r"weights\.safetensors: sha256 .* does not match the manifest"),
        (_drop_weights, r"weights\.safetensors: weights file missing"),
        (_other_backbone_weights, r"trained on backbone weights sha256:0000.*but 'efficientnet_lite0' here has sha256:"),
        (_class_added, r"tensors do not fit the manifest's task 'category'"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "",
)
def test_load_errors_are_model_errors(trained, tmp_path, damage, message):
    folder = copy_model(trained.model_dir, tmp_path / "model")
    load_model(folder)  # the intact copy loads
    damage(folder)
    with pytest.raises(ModelError, match=message):
        load_model(folder).classifier  # backbone weights are checked when the PyTorch network is built


def test_load_missing_folder(tmp_path):
    with pytest.raises(ModelError, match="model folder not found"):
        load_model(tmp_path / "no-such-model")


# --------------------------------------------------------------------------- 4. export


def test_export_onnx_is_used_and_goes_stale(trained, torch_reference, tmp_path):
    folder = copy_model(trained.model_dir, tmp_path / "model")
    assert Predictor.from_model(load_model(folder)).runtime == "features"  # nothing exported yet

    onnx_path = export(folder)
    assert onnx_path == folder / "model.onnx" and onnx_path.is_file()
    record = json.loads((folder / "export.json").read_text())
    assert record["weights_sha256"] == read_manifest(folder)["weights"]["sha256"]
    assert record["onnx_sha256"] == sha256_file(onnx_path)

    loaded = load_model(folder)
    onnx = Predictor.from_model(loaded)
    assert onnx.runtime == "onnx"
    got = onnx.probabilities(ONE_PER_CLASS)
    assert got.indices == torch_reference.indices == list(range(len(ONE_PER_CLASS)))
    diff = np.abs(got.probs["category"] - torch_reference.probs["category"]).max()
    assert diff <= 1e-4, diff

    # new weights saved into the folder (as a retraining does) make the export stale
    stale_record = (folder / "export.json").read_text()
    with torch.no_grad():
        loaded.classifier.heads.by_task["category"][-1].bias.add_(0.5)
    save_model(loaded.classifier, folder, store_backbone=False, info={"training": {"note": "retrained"}})
    assert not (folder / "export.json").exists()
    retrained = load_model(folder)
    assert retrained.weights_sha256 != record["weights_sha256"]
    assert Predictor.from_model(retrained).runtime == "features"
    with pytest.raises(ValueError, match="no up-to-date ONNX export"):
        Predictor.from_model(retrained, "onnx")
    # an export record put back by hand is not trusted either: it names other weights
    (folder / "export.json").write_text(stale_record)
    assert Predictor.from_model(load_model(folder)).runtime == "features"


# --------------------------------------------------------------------------- 5. feature cache


def test_feature_cache_serves_repeats_by_content(tmp_path, lite0, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    paths = []
    for p in SAMPLES[:6]:
        paths.append(images / p.name)
        shutil.copy2(p, paths[-1])
    # beside the session's backbone export, so that is not made again; a database of its own
    cache = FeatureCache(default_cache_dir() / f"{tmp_path.name}.sqlite")

    first = extract_features(lite0, paths, cache=cache, progress=False)
    assert first.vectors.shape == (6, lite0.feature_dim) and not first.failures

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone ran although every image was cached")

    monkeypatch.setattr("fashionlens.features.backbone_runner", no_backbone)
    second = extract_features(lite0, paths, cache=cache, progress=False)
    assert np.array_equal(first.vectors, second.vectors)
    assert (second.indices, second.sha256, second.phash) == (first.indices, first.sha256, first.phash)

    # keyed by content: a copy under another name and folder is served from the cache too
    other = tmp_path / "elsewhere" / "renamed.jpeg"
    other.parent.mkdir()
    shutil.copy2(paths[2], other)
    renamed = extract_features(lite0, [other], cache=cache, progress=False)
    assert np.array_equal(renamed.vectors[0], first.vectors[2])

    # ... and not by name: new content under a cached path must reach the (patched) backbone
    paths[0].write_bytes(SAMPLES[10].read_bytes())
    with pytest.raises(AssertionError, match="the backbone ran"):
        extract_features(lite0, [paths[0]], cache=cache, progress=False)


# --------------------------------------------------------------------------- 6. duplicate-aware split


def _reencode(src: Path, dst: Path, scale: float, quality: int) -> None:
    with Image.open(src) as image:
        image = image.convert("RGB")
        if scale != 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        image.save(dst, "JPEG", quality=quality)


@pytest.fixture(scope="module")
def planted(tmp_path_factory, lite0):
    """The 30 sample photos plus 4 byte-identical and 4 re-encoded copies, each under another name."""
    folder = tmp_path_factory.mktemp("planted")
    paths = []
    for p in SAMPLES:
        paths.append(folder / p.name)
        shutil.copy2(p, paths[-1])
    pairs = []
    for k, i in enumerate((0, 4, 8, 12)):  # exact copies
        dst = folder / f"{paths[i].stem.rsplit('_', 1)[0]}_copy{k}.jpg"
        shutil.copy2(paths[i], dst)
        pairs.append((i, len(paths)))
        paths.append(dst)
    for k, (i, scale, quality) in enumerate(((16, 1.0, 70), (20, 0.75, 85), (24, 1.5, 90), (28, 1.0, 95))):
        dst = folder / f"{paths[i].stem.rsplit('_', 1)[0]}_reenc{k}.jpg"
        _reencode(paths[i], dst, scale, quality)
        pairs.append((i, len(paths)))
        paths.append(dst)
    # the fingerprints exactly as extract_features computes them (same decoder), without the backbone pass
    decoded = DecodeDataset(paths, lite0)
    items = [decoded[i] for i in range(len(paths))]
    assert all(reason is None for *_, reason in items)
    feats = SimpleNamespace(sha256=[item[1][1] for item in items], phash=[item[1][2] for item in items])
    strata = [p.stem.rsplit("_", 1)[0] for p in paths]
    return paths, pairs, strata, feats


def test_split_keeps_copies_together(planted):
    paths, pairs, strata, feats = planted
    for i, j in pairs[:4]:
        assert feats.sha256[i] == feats.sha256[j]
    for i, j in pairs[4:]:
        assert feats.sha256[i] != feats.sha256[j] and feats.phash[i] == feats.phash[j], paths[j].name

    split = make_split(strata, feats.sha256, feats.phash, validation=0.25, test=0.25, seed=0)
    assert split.duplicate_groups == len(pairs) == 8
    assert split.duplicate_images == 16
    assert split.dropped_leaks == 0
    parts = {"train": set(split.train), "validation": set(split.validation), "test": set(split.test)}
    assert all(parts.values())
    assert sorted(split.train + split.validation + split.test) == list(range(len(paths)))
    for i, j in pairs:
        home = [name for name, rows in parts.items() if i in rows]
        assert home and j in parts[home[0]], (paths[i].name, paths[j].name, home)


def test_split_is_reproducible_per_seed(planted):
    paths, pairs, strata, feats = planted

    def split(seed):
        s = make_split(strata, feats.sha256, feats.phash, validation=0.25, test=0.25, seed=seed)
        return s.train, s.validation, s.test

    assert split(0) == split(0)
    assert split(7) == split(7)
    assert split(7) != split(0)


def test_split_with_given_layout_drops_training_copies_of_held_out_images(planted):
    paths, pairs, strata, feats = planted
    layout = ["train"] * len(paths)
    held = [i for i, _ in pairs[:2]] + [pairs[4][1]]  # two originals and one re-encoded copy
    for i in held:
        layout[i] = "validation"
    split = make_split(strata, feats.sha256, feats.phash, layout, seed=0)
    assert split.validation == sorted(held)
    leaked = {pairs[0][1], pairs[1][1], pairs[4][0]}
    assert split.dropped_leaks == 3
    assert leaked.isdisjoint(split.train)
    assert set(split.train) == set(range(len(paths))) - set(held) - leaked


def test_folds_never_split_a_copy_group_and_hold_every_image_once(planted):
    paths, pairs, strata, feats = planted
    folds = make_folds(strata, feats.sha256, feats.phash, 4, validation=0.2, seed=0)
    assert len(folds) == 4
    tests = [set(f.test) for f in folds]
    assert sorted(i for t in tests for i in t) == list(range(len(paths)))  # every image held out exactly once
    for fold in folds:
        assert fold.validation and set(fold.validation).isdisjoint(fold.test)
        assert sorted(fold.train + fold.validation + fold.test) == list(range(len(paths)))  # copies kept together
        assert fold.duplicate_groups == 8 and fold.dropped_leaks == 0
    for i, j in pairs:
        for fold in folds:
            for part in (fold.train, fold.validation, fold.test):
                assert (i in part) == (j in part), (paths[i].name, paths[j].name)
    assert [f.test for f in make_folds(strata, feats.sha256, feats.phash, 4, validation=0.2, seed=0)] == [f.test for f in folds]
    assert all(not f.validation for f in make_folds(strata, feats.sha256, feats.phash, 4, validation=0, seed=0))


def test_folds_hold_out_only_scored_images(planted):
    paths, pairs, strata, feats = planted
    copy_of = {j: i for i, j in pairs}
    scored = [k % 5 != 0 and k not in copy_of for k in range(len(paths))]  # the copies are never scored
    folds = make_folds(strata, feats.sha256, feats.phash, 2, validation=0.2, seed=0, scored=scored)
    assert sorted(i for f in folds for i in f.test) == [k for k in range(len(paths)) if scored[k]]
    for fold in folds:
        assert all(scored[i] for i in fold.validation + fold.test)
        held = set(fold.validation + fold.test)
        # an unscored image always trains, unless it is a copy of a held-out one
        for k in range(len(paths)):
            if not scored[k]:
                assert (k in fold.train) != (copy_of.get(k) in held), paths[k].name
    with pytest.raises(ValueError, match="at most the"):
        make_folds(strata[:3], feats.sha256[:3], feats.phash[:3], 4)
    with pytest.raises(ValueError, match="no class has 4 images"):
        make_folds(strata, feats.sha256, feats.phash, 4, scored=scored)
    with pytest.raises(ValueError, match="entries for"):
        make_folds(strata, feats.sha256, feats.phash, 2, scored=scored[:-1])


def test_heads_without_validation_train_every_epoch_and_keep_the_last():
    from fashionlens.classify.heads import fit_heads

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.int64)
    tasks = [TaskSpec("sign", ("minus", "plus"))]
    heads, info = fit_heads(x, y, x[:0], y[:0], tasks, epochs=25, lr=0.1, patience=1)
    assert info == {"best_epoch": 25, "epochs_run": 25, "val_accuracy": None}
    assert (heads.probabilities(x)["sign"].argmax(1) == y[:, 0]).mean() > 0.9


@pytest.mark.parametrize("text, fold", [("1/5", (1, 5)), ("5/5", (5, 5)), ("2/2", (2, 2))])
def test_parse_fold(text, fold):
    assert parse_fold(text) == fold


@pytest.mark.parametrize("text", ["0/5", "6/5", "1/1", "1", "a/b", "1/5/2", ""])
def test_parse_fold_refuses(text):
    with pytest.raises(ValueError, match="expected I/K"):
        parse_fold(text)


def test_cross_validation_trains_each_fold_from_the_same_backbone(colour_dir, tmp_path):
    """Fine-tuning changes its backbone in place: every fold must start again from the ImageNet weights."""
    from fashionlens.classify import cross_validate

    config = TrainConfig(backbone=BACKBONE, mode="finetune", epochs=1, finetune_blocks=1, validation=0.25,
                         progress=False, workers=0)
    result = cross_validate(read_folder(colour_dir), config, folds=2, out=tmp_path / "cv")
    assert sum(f.images for f in result.tasks[0].folds) == len(COLOURS) * PER_CLASS
    assert sorted(i for s in result.splits for i in s.test) == list(range(len(COLOURS) * PER_CLASS))
    assert (tmp_path / "cv" / "folds" / "1" / "checkpoint" / "state.json").is_file()
    assert (tmp_path / "cv" / "folds" / "2" / "checkpoint" / "state.json").is_file()
    reference = create_backbone(BACKBONE).model.state_dict()
    import fashionlens.classify.crossval as crossval

    seen = []
    original = crossval.fit_classifier

    def spy(lf, split, config, out):
        seen.append(all(torch.equal(v, reference[k]) for k, v in lf.backbone.model.state_dict().items()))
        return original(lf, split, config, out)

    crossval.fit_classifier = spy
    try:
        cross_validate(read_folder(colour_dir), config, folds=2, out=tmp_path / "cv2")
    finally:
        crossval.fit_classifier = original
    assert seen == [True, True]


# --------------------------------------------------------------------------- 7. unreadable files


def test_unreadable_files_are_reported_and_skipped(colour_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(colour_dir, data_dir)
    corrupt = corrupt_jpeg(data_dir / "red" / "broken.jpg")
    text = data_dir / "green" / "notes.jpg"
    text.write_text("this is a shopping list, not a photo\n")

    data = read_folder(data_dir)
    assert len(data) == 3 * PER_CLASS + 2
    result = train(data, tmp_path / "model", TrainConfig(backbone=BACKBONE, validation=0.25, progress=False, workers=0))
    reasons = {Path(s.source): s.reason for s in result.skipped}
    assert set(reasons) == {corrupt, text}
    assert "not an image" in reasons[text]
    assert "truncated" in reasons[corrupt] or "decode" in reasons[corrupt] or "corrupt" in reasons[corrupt]
    m = read_manifest(result.model_dir)
    assert m["data"]["unreadable"] == 2
    assert len(result.split.train) + len(result.split.validation) == 3 * PER_CLASS
    assert m["metrics"]["validation"]["category"]["accuracy"] >= 0.9

    loaded = load_model(result.model_dir)
    good = [data_dir / "blue" / "blue_00.jpg", data_dir / "red" / "red_03.jpg"]
    batch = [good[0], corrupt, text, good[1]]
    for runtime in ("features", "torch"):
        predictions, failures = Predictor(loaded.classifier, runtime).predict(batch, top_k=2)
        assert [p.image for p in predictions] == [str(g) for g in good], runtime
        assert [p.predictions["category"][0].label for p in predictions] == ["blue", "red"], runtime
        assert {Path(f.source): f.reason for f in failures} == reasons, runtime


# --------------------------------------------------------------------------- 8. multi-task tables


TONE = {"red": "warm", "green": "cool", "blue": "cool"}


def test_multitask_table_with_missing_labels(colour_dir, tmp_path):
    images = sorted(colour_dir.rglob("*.jpg"))
    rows = []
    for n, path in enumerate(images):
        colour = path.parent.name
        # every 4th row lacks its colour, another every 4th its tone
        rows.append({"file": path.relative_to(colour_dir).as_posix(), "colour": "" if n % 4 == 1 else colour,
                     "tone": "" if n % 4 == 3 else TONE[colour], "note": "x"})
    rows[-1]["colour"] = rows[-1]["tone"] = ""  # a row without any label
    table = tmp_path / "labels.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "colour", "tone", "note"])
        writer.writeheader()
        writer.writerows(rows)

    data = read_table(table, image_column="file", tasks=["colour", "tone"], images_root=colour_dir)
    n = len(images) - 1
    assert len(data) == n
    assert [s.reason for s in data.skipped] == ["no label in any task column"]
    result = train(data, tmp_path / "model", TrainConfig(backbone=BACKBONE, validation=0.25, progress=False, workers=0))

    m = read_manifest(result.model_dir)
    assert [(t["name"], t["classes"]) for t in m["tasks"]] == [("colour", sorted(COLOURS)), ("tone", ["cool", "warm"])]
    colour_n = sum(1 for r in rows if r["colour"])
    tone_n = sum(1 for r in rows if r["tone"])
    assert sum(m["data"]["tasks"]["colour"].values()) == colour_n < n
    assert sum(m["data"]["tasks"]["tone"].values()) == tone_n < n

    tasks = [TaskSpec.from_dict(t) for t in m["tasks"]]
    y = label_matrix(data.samples, tasks)
    assert (y[:, 0] == -1).sum() == n - colour_n and (y[:, 1] == -1).sum() == n - tone_n
    # each task is scored on the validation rows that carry its label, and only on those
    val = result.split.validation
    metrics = m["metrics"]["validation"]
    assert metrics["colour"]["n"] == int((y[val, 0] >= 0).sum())
    assert metrics["tone"]["n"] == int((y[val, 1] >= 0).sum())
    assert metrics["colour"]["n"] + metrics["tone"]["n"] < 2 * len(val)  # some validation rows lack a label
    # a handful of validation rows per task: one mistake allowed; chance is 0.33 (colour) and about 0.6 (tone)
    assert metrics["colour"]["accuracy"] >= 0.85 and metrics["tone"]["accuracy"] >= 0.85

    loaded = load_model(result.model_dir)
    assert set(loaded.classifier.heads.by_task) == {"colour", "tone"}
    predictions, _ = Predictor(loaded.classifier, "features").predict([data.samples[0].path], top_k=5)
    assert {task: len(scores) for task, scores in predictions[0].predictions.items()} == {"colour": 3, "tone": 2}


# --------------------------------------------------------------------------- training loss


def test_balanced_loss_prefers_the_right_class_over_a_rare_one():
    """Balanced class weights must not make predicting a rare class cheaper than predicting the true one."""
    tasks = [TaskSpec("t", ("common", "rare"))]
    weights = {"t": class_weights(np.array([0] * 98 + [1] * 2), 2)}
    assert float(weights["t"][1]) > 20 * float(weights["t"][0])
    target = torch.tensor([[0]])
    right = multitask_loss({"t": torch.tensor([[4.0, -4.0]])}, target, tasks, weights)
    wrong = multitask_loss({"t": torch.tensor([[-4.0, 4.0]])}, target, tasks, weights)
    assert float(right) < 0.5 and float(wrong) > 5  # (label smoothing keeps even a sure right answer above 0)
    # rows without a label for the task add nothing
    logits = torch.tensor([[4.0, -4.0], [-3.0, 3.0], [0.5, 0.1]])
    padded = multitask_loss({"t": logits}, torch.tensor([[0], [-1], [-1]]), tasks, weights)
    assert torch.allclose(padded, right)


def test_label_smoothing_is_a_setting():
    tasks = [TaskSpec("t", ("a", "b", "c"))]
    logits, target = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[0]])
    plain = multitask_loss({"t": logits}, target, tasks, None, smoothing=0.0)
    assert torch.allclose(plain, torch.nn.functional.cross_entropy(logits, target[:, 0]))
    smoothed = multitask_loss({"t": logits}, target, tasks, None, smoothing=0.3)
    expected = torch.nn.functional.cross_entropy(logits, target[:, 0], label_smoothing=0.3)
    assert torch.allclose(smoothed, expected)
    assert TrainConfig().label_smoothing == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)


# --------------------------------------------------------------------------- 9. fine-tuning


def test_finetune_stores_backbone_and_resumes(colour_dir, tmp_path, monkeypatch):
    warm_starts = []
    train_module = importlib.import_module("fashionlens.classify.train")  # the package's `train` is the function
    fit = train_module.fit_heads
    monkeypatch.setattr(train_module, "fit_heads", lambda *a, **kw: warm_starts.append(kw) or fit(*a, **kw))
    small = tmp_path / "small"
    for name in COLOURS:
        (small / name).mkdir(parents=True)
        for p in sorted((colour_dir / name).glob("*.jpg"))[:4]:
            shutil.copy2(p, small / name / p.name)
    out = tmp_path / "model"

    def run(epochs):
        # batch 4 on 9 training images: two optimiser steps per epoch; 64 px input, as for small thumbnails
        config = TrainConfig(mode="finetune", backbone=BACKBONE, epochs=epochs, patience=1, batch_size=4,
                             validation=0.25, image_size=64, colour_jitter=0.0, progress=False, workers=0)
        return train(read_folder(small), out, config)

    def logged_epochs():
        with open(out / "logs" / "finetune.csv", newline="") as fh:
            return [int(row["epoch"]) for row in csv.DictReader(fh)]

    first = run(1)
    assert len(first.split.train) > 4
    m = read_manifest(out)
    assert m["backbone"]["stored"] is True
    assert m["backbone"]["weights_id"].startswith("finetuned:")
    with safe_open(out / "weights.safetensors", "pt") as fh:
        assert any(k.startswith("backbone.") for k in fh.keys())
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1
    assert logged_epochs() == [1]
    assert m["training"]["finetune"]["epochs_run"] == 1
    # epochs and patience are fine-tuning's: the warm-start heads keep their own
    assert {k: warm_starts[0][k] for k in HEAD_DEFAULTS} == HEAD_DEFAULTS
    assert first.metrics["validation"]["category"]["n"] == len(first.split.validation) > 0

    run(2)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2
    assert logged_epochs() == [1, 2]  # resumed: epoch 1 was not run again
    m = read_manifest(out)
    assert m["training"]["finetune"]["epochs_run"] == 2
    assert m["backbone"]["stored"] is True
    assert m["preprocess"]["input_size"] == [64, 64] and m["training"]["image_size"] == 64
    loaded = load_model(out)
    assert loaded.backbone_trained
    assert loaded.classifier.backbone_info.weights_id == f"model:{loaded.weights_sha256}"
    # the input size travels with the weights: inference after loading feeds 64 px images
    assert loaded.preprocess.input_size == loaded.classifier.backbone_info.preprocess.input_size == (64, 64)
    image = Image.open(next((small / "red").glob("*.jpg"))).convert("RGB")
    assert loaded.classifier.backbone_info.preprocess.eval_transform()(image).shape == (3, 64, 64)


@pytest.mark.parametrize("freeze_norm", [False, True])
def test_freeze_norm_keeps_batch_norm_statistics(freeze_norm):
    backbone = create_backbone(BACKBONE, image_size=64)
    classifier = Classifier(backbone, Heads(backbone.feature_dim, [TaskSpec("c", ("a", "b"))]))
    unfreeze_last_blocks(classifier, 2)
    norms = [m for m in classifier.backbone.net.blocks[-1].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    _set_train_mode(classifier, freeze_norm)
    classifier(torch.randn(2, 3, 64, 64))
    unchanged = all(torch.equal(b, m.running_mean) for b, m in zip(before, norms, strict=True))
    assert unchanged is freeze_norm
    assert classifier.heads.training and norms[0].weight.requires_grad  # scale and shift still train


def test_image_size_sets_the_input_and_is_checked():
    backbone = create_backbone(BACKBONE, image_size=96, resize="pad")
    assert backbone.preprocess.input_size == (96, 96)
    assert backbone.preprocess.train_transform(colour_jitter=0.0)(Image.new("RGB", (60, 80))).shape == (3, 96, 96)
    with pytest.raises(ValueError, match="image_size"):
        create_backbone(BACKBONE, image_size=8)


# --------------------------------------------------------------------------- 7. test-time flips


def mirror_symmetric(path: Path, source: Path) -> Path:
    """A photo whose right half is its left half mirrored (square, PNG: no JPEG blocks to break the symmetry)."""
    image = np.asarray(Image.open(source).convert("RGB").resize((128, 128)))
    image = np.concatenate([image[:, :64], image[:, :64][:, ::-1]], axis=1)
    Image.fromarray(np.ascontiguousarray(image)).save(path)
    return path


def test_tta_is_a_no_op_on_mirror_symmetric_images_and_averages_otherwise(trained, tmp_path):
    classifier = load_model(trained.model_dir).classifier
    symmetric = [mirror_symmetric(tmp_path / f"sym{i}.png", p) for i, p in enumerate(ONE_PER_CLASS[:3])]
    for runtime in ("torch", "features"):
        plain = Predictor(classifier, runtime, tta=False).probabilities(symmetric).probs["category"]
        flipped = Predictor(classifier, runtime, tta=True).probabilities(symmetric).probs["category"]
        assert np.abs(plain - flipped).max() <= 1e-4, runtime
    # an ordinary photo: the mean of its own probabilities and its mirror's
    photos = ONE_PER_CLASS[:3]
    mirrors = []
    for i, p in enumerate(photos):
        image = Image.open(p).convert("RGB")
        image = image.crop((0, 0, image.width - image.width % 2, image.height - image.height % 2))
        image.save(tmp_path / f"even{i}.png")
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / f"mirror{i}.png")
        mirrors.append((tmp_path / f"even{i}.png", tmp_path / f"mirror{i}.png"))
    plain = Predictor(classifier, "torch").probabilities([a for a, _ in mirrors]).probs["category"]
    mirror = Predictor(classifier, "torch").probabilities([b for _, b in mirrors]).probs["category"]
    both = Predictor(classifier, "torch", tta=True).probabilities([a for a, _ in mirrors]).probs["category"]
    assert np.abs(both - (plain + mirror) / 2).max() <= 2e-3
    assert np.abs(both - plain).max() > 1e-4  # the flips do change something on a real photo
    assert np.allclose(both.sum(1), 1.0, atol=1e-5)


def test_tta_setting_survives_save_load_and_is_the_predictor_default(tmp_path):
    torch.manual_seed(2)
    backbone = create_backbone(BACKBONE)
    classifier = Classifier(backbone, Heads(backbone.feature_dim, [TaskSpec("c", ("a", "b", "c"))]), tta=True).eval()
    save_model(classifier, tmp_path / "m", store_backbone=False)
    assert read_manifest(tmp_path / "m")["inference"] == {"tta": "flip"}
    loaded = load_model(tmp_path / "m")
    assert loaded.tta and loaded.classifier.tta
    assert Predictor.from_model(loaded).tta
    assert not Predictor.from_model(loaded, tta=False).tta
    images = SAMPLES[:2]
    before = Predictor(classifier, "torch").probabilities(images).probs["c"]
    after = Predictor(loaded.classifier, "torch").probabilities(images).probs["c"]
    assert np.array_equal(before, after)

    m = read_manifest(tmp_path / "m")
    del m["inference"]  # a model saved before test-time flips existed predicts without them
    write_manifest(tmp_path / "m", m)
    assert not load_model(tmp_path / "m").tta
    m["inference"] = {"tta": "five-crop"}
    write_manifest(tmp_path / "m", m)
    with pytest.raises(ModelError, match="unknown test-time augmentation 'five-crop'"):
        load_model(tmp_path / "m")


def test_tta_on_onnx_runtime_matches_torch(trained, tmp_path):
    folder = copy_model(trained.model_dir, tmp_path / "model")
    export(folder)
    loaded = load_model(folder)
    onnx = Predictor.from_model(loaded, tta=True)
    assert onnx.runtime == "onnx"
    got = onnx.probabilities(ONE_PER_CLASS, batch_size=3)
    reference = Predictor(loaded.classifier, "torch", tta=True).probabilities(ONE_PER_CLASS)
    assert got.indices == reference.indices == list(range(len(ONE_PER_CLASS)))
    assert np.abs(got.probs["category"] - reference.probs["category"]).max() <= 1e-4


def test_train_with_tta_saves_it_and_reports_both(colour_dir, tmp_path):
    config = TrainConfig(backbone=BACKBONE, validation=0.25, progress=False, workers=0, tta=True, epochs=20)
    result = train(read_folder(colour_dir), tmp_path / "m", config)
    assert set(result.metrics) == {"validation", "validation_no_tta"}
    assert (tmp_path / "m" / "report" / "validation_no_tta" / "metrics.json").is_file()
    manifest = read_manifest(tmp_path / "m")
    assert manifest["inference"] == {"tta": "flip"} and manifest["training"]["tta"] is True
    assert load_model(tmp_path / "m").tta


# --------------------------------------------------------------------------- 8. standardised features


def test_standardized_heads_train_save_load_and_export(colour_dir, tmp_path):
    config = TrainConfig(backbone=BACKBONE, validation=0.25, progress=False, workers=0, standardize=True,
                         hidden=16, epochs=30)
    result = train(read_folder(colour_dir), tmp_path / "m", config)
    assert result.metrics["validation"]["category"]["accuracy"] >= 0.9
    with safe_open(tmp_path / "m" / "weights.safetensors", "pt") as f:
        assert {"heads.shift", "heads.scale"} <= set(f.keys())
    loaded = load_model(tmp_path / "m")
    heads = loaded.classifier.heads
    assert heads.standardize and bool((heads.scale > 0).all())
    feats = extract_features(loaded.classifier.backbone_info, sorted(colour_dir.rglob("*.jpg")), use_cache=False,
                             progress=False)
    standardized = heads.inputs(torch.from_numpy(feats.vectors))
    assert float(standardized.mean(0).abs().median()) < 0.5  # centred on these (mostly training) images
    torch_p = Predictor(loaded.classifier, "torch").probabilities(ONE_PER_CLASS)
    export(tmp_path / "m")  # checks ONNX against PyTorch itself
    onnx_p = Predictor.from_model(load_model(tmp_path / "m")).probabilities(ONE_PER_CLASS)
    assert np.abs(onnx_p.probs["category"] - torch_p.probs["category"]).max() <= 1e-4
    # heads without it keep their old tensors, so older model folders load unchanged
    plain = Heads(8, [TaskSpec("c", ("a", "b"))])
    assert not plain.standardize and "shift" not in plain.state_dict()


def test_standardization_floors_near_constant_features():
    heads = Heads(3, [TaskSpec("c", ("a", "b"))], standardize=True)
    x = np.stack([np.random.default_rng(0).normal(5, 2, 100), np.zeros(100), np.random.default_rng(1).normal(0, 1, 100)], 1)
    heads.set_standardization(x.astype(np.float32))
    assert abs(float(heads.shift[0]) - 5) < 0.5 and abs(float(heads.scale[0]) - 0.5) < 0.1
    median = float(np.median(x.std(0, ddof=1)))
    assert float(heads.scale[1]) == pytest.approx(1 / (0.1 * median), rel=1e-4)  # a tenth of the median deviation


def test_hsv_colour_histogram_matches_colorsys_and_exports(tmp_path):
    import colorsys

    from fashionlens.backbones import rgb_to_hsv
    from fashionlens.runtime import OnnxRunner, export_onnx

    rgb = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    rgb[0, :, 0, 0] = 0.5  # a grey: hue 0
    hsv = rgb_to_hsv(rgb)
    for y in range(6):
        for x in range(7):
            want = colorsys.rgb_to_hsv(*rgb[0, :, y, x].tolist())
            assert np.allclose(hsv[0, :, y, x].numpy(), want, atol=1e-5), (y, x)
    backbone = create_backbone(BACKBONE, colour_bins=4, colour_space="hsv", image_size=64)
    assert backbone.colour_space == "hsv" and backbone.feature_dim == 1280 + 64
    rgb_backbone = create_backbone(BACKBONE, colour_bins=4, image_size=64)
    from fashionlens.features import backbone_key
    assert backbone_key(backbone) != backbone_key(rgb_backbone)
    classifier = Classifier(backbone, Heads(backbone.feature_dim, [TaskSpec("c", ("a", "b"))])).eval()
    save_model(classifier, tmp_path / "m", store_backbone=False)
    loaded = load_model(tmp_path / "m")
    assert loaded.classifier.backbone_info.colour_space == "hsv"
    export_onnx(backbone.model, (64, 64), tmp_path / "b.onnx", ["features"])
    pre = backbone.preprocess.eval_transform()
    images = torch.from_numpy(np.stack([pre(Image.open(p).convert("RGB")) for p in SAMPLES[:3]]))
    with torch.inference_mode():
        reference = backbone.model(images).numpy()
    got = OnnxRunner(tmp_path / "b.onnx")(images.numpy())["features"]
    assert np.abs(got[:, :1280] - reference[:, :1280]).max() <= 1e-3
    assert np.abs(got[:, 1280:] - reference[:, 1280:]).max() <= 1 / 256 + 1e-6  # at most a pixel in another cell
    assert np.allclose(got[:, 1280:].sum(1), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="colour space"):
        create_backbone(BACKBONE, colour_bins=4, colour_space="lab")


# --------------------------------------------------------------------------- 9. logistic heads


def test_logistic_heads_are_scikit_learns_regression_inside_the_heads():
    """The solved regression goes into the same Heads: its probabilities are scikit-learn's, a two-class task is
    a sigmoid, and a class with no training image (a small fold) is never predicted."""
    from sklearn.linear_model import LogisticRegression

    from fashionlens.classify.heads import fit_logistic_heads

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 6)).astype(np.float32) * np.array([1, 10, 100, 1, 1, 1], np.float32)
    y = np.stack([np.digitize(x[:, 0], [-0.5, 0.5]), (x[:, 1] > 0).astype(np.int64)], 1)
    y[:5, 1] = -1  # unknown labels are left out of that task's fit
    tasks = [TaskSpec("three", ("a", "b", "c", "never")), TaskSpec("two", ("minus", "plus"))]
    heads, info = fit_logistic_heads(x, y, tasks, c=0.5, standardize=True)
    probs = heads.probabilities(x)
    assert probs["three"][:, 3].max() < 1e-9
    z = heads.inputs(torch.from_numpy(x)).numpy()
    for t, task in enumerate(tasks):
        known = y[:, t] >= 0
        reference = LogisticRegression(C=0.5, max_iter=3000, class_weight="balanced").fit(z[known], y[known, t])
        np.testing.assert_allclose(probs[task.name][:, reference.classes_], reference.predict_proba(z), atol=1e-5)
    assert (probs["three"].argmax(1) == y[:, 0]).mean() >= 0.85 and set(info["lbfgs_iterations"]) == {"three", "two"}
    with pytest.raises(ValueError, match="2 classes"):
        fit_logistic_heads(x, np.zeros((60, 2), np.int64), tasks)


def test_logistic_head_fit_trains_saves_and_exports(colour_dir, tmp_path):
    config = TrainConfig(backbone=BACKBONE, validation=0.25, progress=False, workers=0, standardize=True,
                         head_fit="logistic", head_c=0.1)
    result = train(read_folder(colour_dir), tmp_path / "m", config)
    assert result.metrics["validation"]["category"]["accuracy"] >= 0.9
    assert read_manifest(tmp_path / "m")["training"]["head_fit"] == "logistic"
    torch_p = Predictor(load_model(tmp_path / "m").classifier, "torch").probabilities(ONE_PER_CLASS)
    export(tmp_path / "m")
    onnx_p = Predictor.from_model(load_model(tmp_path / "m")).probabilities(ONE_PER_CLASS)
    assert np.abs(onnx_p.probs["category"] - torch_p.probs["category"]).max() <= 1e-4
    for bad in ({"hidden": 16}, {"mode": "finetune"}, {"head_c": 0.0}, {"head_fit": "sgd"}):
        with pytest.raises(ValueError):
            TrainConfig(head_fit=bad.pop("head_fit", "logistic"), **bad)


def test_colour_sqrt_is_the_square_root_of_the_shares_and_is_kept(tmp_path):
    from fashionlens.features import backbone_key

    plain = create_backbone(BACKBONE, colour_bins=4, colour_space="hsv", image_size=64)
    rooted = create_backbone(BACKBONE, colour_bins=4, colour_space="hsv", colour_sqrt=True, image_size=64)
    pre = plain.preprocess.eval_transform()
    images = torch.from_numpy(np.stack([pre(Image.open(p).convert("RGB")) for p in SAMPLES[:2]]))
    with torch.inference_mode():
        shares, roots = plain.model(images)[:, 1280:], rooted.model(images)[:, 1280:]
    assert torch.allclose(roots, shares.sqrt(), atol=1e-6) and float((roots**2).sum(1).min()) == pytest.approx(1, abs=1e-4)
    assert backbone_key(rooted) != backbone_key(plain)  # cached features of one are never served for the other
    classifier = Classifier(rooted, Heads(rooted.feature_dim, [TaskSpec("c", ("a", "b"))])).eval()
    save_model(classifier, tmp_path / "m", store_backbone=False)
    assert load_model(tmp_path / "m").classifier.backbone_info.colour_sqrt
