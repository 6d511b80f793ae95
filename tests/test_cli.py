"""The `fashionlens` command through typer's CliRunner: train, evaluate, export, predict, and its error messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.defaults import default_classifier_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples" / "clothing").glob("*.jpg"))
BACKBONE = "efficientnet_lite0"
# the same generated pictures as tests/test_classify.py, so one test session computes their features once
COLOURS = {"red": (205, 35, 30), "green": (35, 165, 55), "blue": (40, 60, 215)}
PER_CLASS = 12

runner = CliRunner()


def picture(colour, rng: np.random.Generator, size: int = 96) -> Image.Image:
    base = np.array(colour, dtype=np.float32)
    img = np.broadcast_to(base, (size, size, 3)).copy()
    period = int(rng.integers(8, 28))
    phase = int(rng.integers(0, period))
    yy, xx = np.mgrid[0:size, 0:size]
    coord = {0: xx, 1: yy, 2: xx + yy, 3: xx - yy + size}[int(rng.integers(0, 4))]
    img[((coord + phase) % period) < period // 2] = base * float(rng.uniform(0.35, 0.6))
    img += rng.normal(0, 10, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def flat(text: str) -> str:
    """Rich wraps long lines (and long paths) at the console width: compare without whitespace."""
    return re.sub(r"\s+", "", text)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sample_class(image: str) -> str:
    return Path(image).stem.rsplit("_", 1)[0]  # "t-shirt_2" -> "t-shirt"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-data")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir()
        for i in range(PER_CLASS):
            picture(colour, rng).save(root / name / f"{name}_{i:02d}.jpg", quality=92)
    return root


@pytest.fixture(scope="module")
def model_dir(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli-models") / "colours"
    result = invoke("train", data_dir, "--out", out, "--backbone", BACKBONE, "--validation", "0.25")
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file() and (out / "weights.safetensors").is_file()
    assert "split:" in result.stderr and "modelwrittento" in flat(result.stderr)
    return out


@pytest.fixture
def bad_files(tmp_path) -> tuple[Path, Path]:
    text = tmp_path / "not-a-photo.jpg"
    text.write_text("just text\n")
    missing = tmp_path / "no-such-photo.jpg"
    return text, missing


def parse_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def check_prediction_shape(record: dict, tasks: dict[str, list[str]], top_k: int) -> None:
    assert set(record) == {"image", "predictions"}
    assert set(record["predictions"]) == set(tasks)
    for task, scores in record["predictions"].items():
        assert isinstance(scores, list) and len(scores) == min(top_k, len(tasks[task]))
        for entry in scores:
            assert set(entry) == {"label", "score"}
            assert entry["label"] in tasks[task]
            assert 0.0 <= entry["score"] <= 1.0
        values = [e["score"] for e in scores]
        assert values == sorted(values, reverse=True)
        assert len({e["label"] for e in scores}) == len(scores)


def model_tasks(folder: Path) -> dict[str, list[str]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return {t["name"]: t["classes"] for t in manifest["tasks"]}


# --------------------------------------------------------------------------- predict with a model folder


def test_predict_json_with_model_folder(model_dir, data_dir, bad_files):
    text, missing = bad_files
    good = [data_dir / "blue" / "blue_01.jpg", data_dir / "red" / "red_02.jpg", data_dir / "green" / "green_03.jpg"]
    result = invoke("predict", model_dir, good[0], text, good[1], missing, good[2], "--json", "--top-k", "2")
    assert result.exit_code == 0, result.output
    records = parse_lines(result.stdout)
    assert [r["image"] for r in records] == [str(p) for p in good]
    for record in records:
        check_prediction_shape(record, model_tasks(model_dir), top_k=2)
    assert [r["predictions"]["category"][0]["label"] for r in records] == ["blue", "red", "green"]
    err = flat(result.stderr)
    assert flat(f"{text}: not an image") in err
    assert flat(f"{missing}: no such file") in err


def test_predict_nothing_readable_fails(model_dir, bad_files):
    text, missing = bad_files
    result = invoke("predict", model_dir, missing)
    assert result.exit_code != 0
    assert "no images to predict" in result.stderr
    result = invoke("predict", model_dir, text, "--json")
    assert result.exit_code != 0 and result.stdout.strip() == ""
    assert flat(f"{text}: not an image") in flat(result.stderr)


# --------------------------------------------------------------------------- the shipped default model


@pytest.fixture(scope="module")
def default_model() -> Path:
    folder = default_classifier_dir()
    if not (folder / "manifest.json").is_file():
        pytest.skip(f"the shipped default model is not trained yet ({folder} has no manifest.json)")
    return folder


@pytest.fixture(scope="module")
def default_run(default_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("default-predict")
    text = tmp / "broken.jpg"
    text.write_text("not a jpeg")
    missing = tmp / "missing.jpg"
    paths = [*SAMPLES[:15], text, *SAMPLES[15:], missing]
    result = invoke("predict", *paths, "--json")
    return result, text, missing


def test_predict_default_model_json(default_model, default_run):
    result, text, missing = default_run
    assert result.exit_code == 0, result.output
    records = parse_lines(result.stdout)
    assert [r["image"] for r in records] == [str(p) for p in SAMPLES]  # one line per good image, in order
    tasks = model_tasks(default_model)
    for record in records:
        check_prediction_shape(record, tasks, top_k=3)
    err = flat(result.stderr)
    assert flat(f"{text}: not an image") in err
    assert flat(f"{missing}: no such file") in err


def test_default_model_names_the_sample_classes(default_model, default_run):
    result, _, _ = default_run
    tasks = model_tasks(default_model)
    classes = {sample_class(str(p)) for p in SAMPLES}
    task = next((t for t, labels in tasks.items() if classes <= set(labels)), None)
    assert task, f"no task of the default model covers the sample classes {sorted(classes)}: {tasks}"
    records = parse_lines(result.stdout)
    right = [r["image"] for r in records if r["predictions"][task][0]["label"] == sample_class(r["image"])]
    assert len(records) == 30
    assert len(right) >= 24, f"{len(right)}/30 right; wrong: {sorted(set(map(str, SAMPLES)) - set(right))}"


# --------------------------------------------------------------------------- evaluate and export


def test_evaluate_writes_metrics_json(model_dir, data_dir, tmp_path):
    report = tmp_path / "report"
    result = invoke("evaluate", model_dir, data_dir, "--out", report)
    assert result.exit_code == 0, result.output
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics) == {"category"}
    m = metrics["category"]
    assert {"accuracy", "top3", "macro_f1", "per_class", "n"} <= set(m)
    assert m["n"] == 3 * PER_CLASS
    assert set(m["per_class"]) == set(COLOURS)
    assert sum(c["support"] for c in m["per_class"].values()) == 3 * PER_CLASS
    assert m["accuracy"] >= 0.9 and m["top3"] == 1.0  # three classes: the top 3 always hold the answer
    assert 0 < m["macro_f1"] <= 1
    assert (report / "index.html").is_file() and (report / "confusion_category.png").is_file()


def test_tta_flags_of_evaluate_and_predict(model_dir, data_dir, tmp_path):
    for flag in ("--tta", "--no-tta"):
        result = invoke("evaluate", model_dir, data_dir, "--out", tmp_path / flag, flag)
        assert result.exit_code == 0, result.output
        summary = json.loads((tmp_path / flag / "summary.json").read_text())
        assert summary["extra"]["tta"] == ("flip" if flag == "--tta" else "none")
    image = data_dir / "green" / "green_04.jpg"
    scores = {}
    for flag in ("--tta", "--no-tta"):
        result = invoke("predict", model_dir, image, "--json", flag)
        assert result.exit_code == 0, result.output
        (record,) = parse_lines(result.stdout)
        assert record["predictions"]["category"][0]["label"] == "green"
        scores[flag] = record["predictions"]["category"][0]["score"]
    assert scores["--tta"] != scores["--no-tta"]


def test_train_tta_is_saved_with_the_model(data_dir, tmp_path):
    result = invoke("train", data_dir, "--out", tmp_path / "m", "--backbone", BACKBONE, "--validation", "0.25",
                    "--tta", "--epochs", "20")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["inference"] == {"tta": "flip"}
    assert "validation_no_tta" in result.output


def test_export_to_a_file_outside_the_model(model_dir, data_dir, tmp_path):
    onnx_file = tmp_path / "exported" / "colours.onnx"
    result = invoke("export", model_dir, "--onnx", onnx_file)
    assert result.exit_code == 0, result.output
    assert onnx_file.is_file() and onnx_file.stat().st_size > 1_000_000  # the whole network, backbone included
    record = json.loads((model_dir / "export.json").read_text())
    assert Path(record["onnx"]) == onnx_file.resolve()
    # predict now finds and runs that file
    image = data_dir / "red" / "red_05.jpg"
    result = invoke("predict", model_dir, image, "--runtime", "onnx", "--json")
    assert result.exit_code == 0, result.output
    (record,) = parse_lines(result.stdout)
    assert record["predictions"]["category"][0]["label"] == "red"


def test_train_names_the_copies_that_straddle_the_given_splits(tmp_path):
    """An augmented export put a rotated, letterboxed copy and a turned greyscale copy of two training photos
    into validation: train groups them with their originals, drops those training images and names them."""
    from PIL import ImageOps

    data = tmp_path / "export"
    for sample in SAMPLES:
        kind, number = sample.stem.rsplit("_", 1)
        folder = data / ("validation" if number == "3" else "train") / kind
        folder.mkdir(parents=True, exist_ok=True)
        (folder / sample.name).write_bytes(sample.read_bytes())
    dress, hat = Image.open(data / "train" / "dress" / "dress_1.jpg"), Image.open(data / "train" / "hat" / "hat_2.jpg")
    rotated = dress.rotate(10, Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    boxed = Image.new("RGB", (max(rotated.size),) * 2)
    boxed.paste(rotated, ((boxed.width - rotated.width) // 2, (boxed.height - rotated.height) // 2))
    boxed.save(data / "validation" / "dress" / "dress_1_aug.jpg", quality=85)
    ImageOps.grayscale(hat.transpose(Image.Transpose.ROTATE_90)).save(data / "validation" / "hat" / "hat_2_aug.jpg")
    result = invoke("train", data, "--out", tmp_path / "m", "--backbone", BACKBONE, "--epochs", "5")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "2trainingcopiesofheld-outimagesdropped" in text
    assert "2groupsofcopiesstraddlethegivensplits" in text
    for name in ("dress_1.jpg(train)", "dress_1_aug.jpg(validation)", "hat_2.jpg(train)", "hat_2_aug.jpg(validation)"):
        assert name in text, result.output
    split = json.loads((tmp_path / "m" / "manifest.json").read_text())["data"]["split"]
    assert split["dropped_leaks"] == 2 and split["leaking_groups"] == 2 and split["train"] == 18


# --------------------------------------------------------------------------- bad input


def test_train_unknown_backbone(data_dir, tmp_path):
    result = invoke("train", data_dir, "--out", tmp_path / "m", "--backbone", "no_such_net")
    assert result.exit_code != 0
    assert "unknown backbone 'no_such_net'" in result.stderr
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_train_image_size_is_saved_with_the_model(data_dir, tmp_path):
    result = invoke("train", data_dir, "--out", tmp_path / "m", "--backbone", BACKBONE, "--image-size", "96",
                    "--validation", "0.25", "--epochs", "5")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["preprocess"]["input_size"] == [96, 96] and manifest["training"]["image_size"] == 96
    assert invoke("train", data_dir, "--out", tmp_path / "n", "--image-size", "8").exit_code != 0


@pytest.fixture
def table(data_dir, tmp_path) -> Path:
    path = tmp_path / "labels.csv"
    rows = [f"{p.relative_to(data_dir).as_posix()},{p.parent.name}" for p in sorted(data_dir.rglob("*.jpg"))]
    path.write_text("image,category\n" + "\n".join(rows) + "\n")
    return path


def test_train_labels_without_task(data_dir, table, tmp_path):
    result = invoke("train", data_dir, "--out", tmp_path / "m", "--labels", table)
    assert result.exit_code != 0
    assert flat("--labels needs at least one --task COLUMN") in flat(result.stderr)
    assert not (tmp_path / "m").exists()


def test_train_unknown_column(data_dir, table, tmp_path):
    result = invoke("train", data_dir, "--out", tmp_path / "m", "--labels", table, "--task", "colour")
    assert result.exit_code != 0
    assert "nocolumn'colour'" in flat(result.stderr)
    assert "columns:image,category" in flat(result.stderr)


def test_train_missing_data_folder(tmp_path):
    missing = tmp_path / "no-such-data"
    result = invoke("train", missing, "--out", tmp_path / "m")
    assert result.exit_code != 0
    assert flat(f"{missing}: data folder not found") in flat(result.stderr)


def test_model_folder_without_manifest(data_dir, tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    for args in (("evaluate", empty, data_dir, "--out", tmp_path / "r"), ("export", empty)):
        result = invoke(*args)
        assert result.exit_code != 0, args[0]
        assert flat(f"{empty}: not a fashionlens model (no manifest.json)") in flat(result.stderr), args[0]
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- cross-validate


def test_cross_validate_scores_every_image_once_and_json_matches_report(data_dir, tmp_path):
    out = tmp_path / "cv"
    result = invoke("cross-validate", data_dir, "--folds", "3", "--backbone", BACKBONE, "--json", "--out", out)
    assert result.exit_code == 0, result.output
    lines = parse_lines(result.stdout)
    summary = json.loads((out / "crossval.json").read_text())
    assert lines == summary["tasks"]  # the JSON lines are the report's figures, number for number
    (line,) = lines
    assert set(line) >= {"task", "accuracy_mean", "accuracy_std", "macro_f1_mean", "folds"}
    assert line["task"] == "category" and len(line["folds"]) == 3
    assert sum(f["images"] for f in line["folds"]) == 3 * PER_CLASS  # every image scored, once
    assert line["accuracy_mean"] == pytest.approx(sum(f["accuracy"] for f in line["folds"]) / 3)
    pooled = json.loads((out / "metrics.json").read_text())["category"]
    assert pooled["n"] == 3 * PER_CLASS
    assert sorted(s["test"] for s in summary["splits"]) == sorted(f["images"] for f in line["folds"])
    page = (out / "index.html").read_text()
    assert "3 folds" in page and f"{line['folds'][0]['accuracy']:.3f}" in page
    assert line["accuracy_mean"] > 0.9  # three plainly different colours


def test_train_fold_holds_out_the_cross_validation_fold(data_dir, tmp_path):
    from fashionlens.classify import TrainConfig, cross_validate
    from fashionlens.data import read_folder

    data = read_folder(data_dir)
    config = TrainConfig(backbone=BACKBONE, recipe="auto", progress=False, workers=0)  # the CLI default
    folds = cross_validate(data, config, folds=3).splits
    result = invoke("train", data_dir, "--out", tmp_path / "m", "--backbone", BACKBONE, "--fold", "2/3")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["data"]["split"] == folds[1].summary()
    assert manifest["training"]["fold"] == [2, 3]
    for bad in ("4/3", "0/3", "1/1", "2of3"):
        result = invoke("train", data_dir, "--out", tmp_path / "bad", "--backbone", BACKBONE, "--fold", bad)
        assert result.exit_code == 2 and flat(f"fold '{bad}'") in flat(result.stderr), bad
    result = invoke("train", data_dir, "--out", tmp_path / "bad", "--fold", "1/3", "--test", "0.2")
    assert result.exit_code == 2 and flat("give a fold or a test fraction") in flat(result.stderr)


def test_cross_validate_score_where_trains_on_all_and_scores_the_matching_rows(data_dir, tmp_path):
    table = tmp_path / "labels.csv"
    images = sorted(data_dir.rglob("*.jpg"))
    kinds = ["product" if i % 3 else "pattern" for i in range(len(images))]
    table.write_text("image,category,kind\n" + "".join(
        f"{p.relative_to(data_dir).as_posix()},{p.parent.name},{k}\n" for p, k in zip(images, kinds, strict=True)))
    args = ("cross-validate", data_dir, "--labels", table, "--task", "category", "--folds", "3", "--backbone", BACKBONE,
            "--json", "--validation", "0")
    result = invoke(*args, "--score-where", "kind=product")
    assert result.exit_code == 0, result.output
    (line,) = parse_lines(result.stdout)
    assert sum(f["images"] for f in line["folds"]) == kinds.count("product")
    result = invoke(*args, "--score-where", "kind=nothing")
    assert result.exit_code == 2 and flat("no usable rows") in flat(result.stderr)
    result = invoke("cross-validate", data_dir, "--score-where", "kind=product")
    assert result.exit_code == 2 and flat("--score-where applies to a --labels table") in flat(result.stderr)


def test_python_m_fashionlens_is_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "fashionlens", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Usage: fashionlens" in done.stdout and "train-parser" in done.stdout


# --------------------------------------------------------------------------- a CLI a script can trust


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"fashionlens {version('fashionlens')}"


def test_predict_with_a_model_path_that_does_not_exist_fails(tmp_path):
    typo = tmp_path / "typo" / "model"
    result = invoke("predict", typo, SAMPLES[0])
    assert result.exit_code == 2
    assert flat(f"{typo}: model folder not found") in flat(result.stderr)
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    assert invoke("predict", empty, SAMPLES[0]).exit_code == 2  # a folder with neither a model nor images


def test_tables_keep_their_words_when_piped():
    from fashionlens.cli import _metrics_table
    from fashionlens.cli_common import PIPED_WIDTH, console

    assert console.width == PIPED_WIDTH  # pytest's stderr is no terminal, as a pipe's
    metrics = {f"category-with-a-long-name-{k}": {"accuracy": 0.9, "top3": 0.99, "macro_f1": 0.88, "n": 300}
               for k in range(3)}
    with console.capture() as captured:
        console.print(_metrics_table("validation", metrics))
    text = captured.get()
    assert "…" not in text and "macro-F1" in text and "category-with-a-long-name-2" in text


def test_help_loads_no_model_stack():
    """`fashionlens --help` (and a command's) answers without importing PyTorch: packages import on first use."""
    import subprocess
    import sys

    code = ("import sys\nfrom typer.testing import CliRunner\nfrom fashionlens.cli import app\n"
            "for args in (['--help'], ['analyze', '--help'], ['dedup', '--help']):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
            "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
