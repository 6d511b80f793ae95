"""The base install: analysing without PyTorch gives what the code with PyTorch gave (the golden file was written by
`fashionlens analyze --json` at 1ece522, the commit before the light runtime; one colour since, dress_1's third,
grey -> taupe, when photos of one garment began to be parsed at two thirds of the size for their colours), commands
that need an extra say which, and model folders carry their ONNX graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionlens.backbones import create_backbone
from fashionlens.classify import Classifier, Heads, Predictor, TaskSpec, load_model, save_model

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_TORCH = [sys.executable, str(ROOT / "benchmarks" / "without_torch.py")]
GOLDEN = json.loads((ROOT / "tests" / "data" / "analyze_before_light_runtime.json").read_text())
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def without_torch(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*WITHOUT_TORCH, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=600)


def test_analysis_without_torch_equals_the_analysis_before_it():
    photos = [entry["image"] for entry in GOLDEN]
    run = without_torch("-m", "fashionlens", "analyze", *photos, "--json")
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["image"] for r in results] == photos
    for before, after in zip(GOLDEN, results, strict=True):
        assert [i["label"] for i in after["items"]] == [i["label"] for i in before["items"]], before["image"]
        for x, y in zip(before["items"], after["items"], strict=True):
            assert np.abs(np.subtract(x["box"], y["box"])).max() <= 0.5, before["image"]
            assert abs(x["score"] - y["score"]) <= 1e-3, before["image"]
            top = {task: scores[0] for task, scores in y["attributes"].items() if scores}
            assert {t: s["label"] for t, s in top.items()} == {t: s["label"] for t, s in x["attributes"].items()}
            for task, score in x["attributes"].items():
                assert abs(score["score"] - top[task]["score"]) <= 1e-3, (before["image"], task)
            assert [c["name"] for c in y["colors"]] == x["colors"], before["image"]


def test_the_service_and_the_cli_import_without_torch():
    code = ("import sys, fashionlens.service.app, fashionlens.cli, fashionlens.catalog, fashionlens.dedup.hashing; "
            "assert not {'torch', 'torchvision', 'timm', 'scipy'} & set(sys.modules)")
    run = without_torch(str(_script(code)))
    assert run.returncode == 0, run.stderr


def _script(code: str) -> Path:
    path = ROOT / "build" / "light-runtime-check.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(code)
    return path


def test_a_command_that_needs_an_extra_says_which_in_one_line(tmp_path):
    run = without_torch("-m", "fashionlens", "train", str(ROOT / "samples" / "clothing"), "--out", str(tmp_path / "m"))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'fashionlens[train]'" in lines[0], run.stderr


def _saved_model(folder: Path, *, store_backbone: bool) -> Path:
    torch.manual_seed(3)
    backbone = create_backbone("efficientnet_lite0")
    classifier = Classifier(backbone, Heads(backbone.feature_dim, [TaskSpec("colour", ("a", "b", "c"))])).eval()
    return save_model(classifier, folder, store_backbone=store_backbone)


def test_a_saved_model_folder_carries_its_onnx_graph_with_its_parity(tmp_path):
    folder = _saved_model(tmp_path / "m", store_backbone=True)
    record = json.loads((folder / "manifest.json").read_text())["onnx"]
    assert (folder / record["backbone"]).is_file()
    assert record["parity_max_abs"] < 1e-4
    photos = sorted((ROOT / "samples" / "clothing").glob("*_1.jpg"))[:3]
    code = ("import sys, json; from fashionlens.classify import load_model, Predictor; "
            f"p = Predictor.from_model(load_model({str(folder)!r})).probabilities({[str(p) for p in photos]!r}); "
            "print(json.dumps(p.probs['colour'].tolist()))")
    run = without_torch(str(_script(code)))
    assert run.returncode == 0, run.stderr
    expected = Predictor(load_model(folder).classifier, "torch").probabilities(photos).probs["colour"]
    assert np.abs(np.array(json.loads(run.stdout)) - expected).max() < 1e-4


def test_a_folder_without_its_graph_is_exported_with_torch_and_explained_without(tmp_path):
    folder = _saved_model(tmp_path / "m", store_backbone=True)
    graph = folder / json.loads((folder / "manifest.json").read_text())["onnx"]["backbone"]
    graph.unlink()
    photo = str(ROOT / "samples" / "clothing" / "dress_1.jpg")
    code = ("from fashionlens.classify import load_model, Predictor; "
            f"Predictor.from_model(load_model({str(folder)!r})).probabilities([{photo!r}])")
    run = without_torch(str(_script(code)))
    assert run.returncode != 0
    assert "pip install 'fashionlens[train]'" in run.stderr and graph.name in run.stderr
    # with PyTorch the graph is exported from the folder's own (fine-tuned) weights
    got = Predictor.from_model(load_model(folder)).probabilities([photo]).probs["colour"]
    expected = Predictor(load_model(folder).classifier, "torch").probabilities([photo]).probs["colour"]
    assert np.abs(got - expected).max() < 1e-4


def test_the_shipped_backbone_spec_is_the_registry_backbone():
    from fashionlens.backbone_spec import backbone_key, named_backbone

    shipped, built = named_backbone("efficientnet_lite1"), create_backbone("efficientnet_lite1")
    assert type(shipped).__name__ == "BackboneSpec"  # read from the package, no PyTorch
    assert backbone_key(shipped) == backbone_key(built) and shipped.feature_dim == built.feature_dim
