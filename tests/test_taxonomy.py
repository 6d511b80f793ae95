"""Each attribute model declares, in its manifest, the garment kinds its classes fit; the taxonomy reads those
declarations, so a user's model is never silenced by the shipped model's vocabulary."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fashionlens.attributes import kinds_named, read_attributes
from fashionlens.backbone_spec import backbone_key
from fashionlens.classify.model_io import load_model
from fashionlens.classify.tasks import TaskSpec
from fashionlens.defaults import resolve_model


@pytest.fixture(scope="module")
def shipped():
    return load_model(resolve_model("default", "classifier"))


def _model(backbone, task: TaskSpec, probs: list[float]):
    """A stand-in attribute model that gives every row the same probabilities."""
    return SimpleNamespace(folder=Path("my-model"), tasks=[task], tta=False, backbone_info=backbone,
                           probabilities_from=lambda f, m=None: {task.name: np.tile(probs, (len(f), 1))})


def test_the_shipped_manifests_declare_the_kinds_their_classes_fit(shipped):
    category = shipped.tasks[0]
    assert category.names_kind and set(category.fits["shirt"]) == {"shirt", "longsleeve", "t-shirt"}
    assert category.kind_of("outwear") == "jacket" and category.fitting("bag") == ()
    types = load_model(resolve_model("types", "classifier")).tasks[0]
    assert not types.names_kind and "sneakers" in types.fitting("shoe")
    assert kinds_named([shipped]) == set(category.fits)


def test_a_users_category_task_is_not_silenced_by_the_shipped_vocabulary(shipped):
    user = _model(shipped.backbone_info, TaskSpec("category", ("top", "bottom", "outerwear")), [0.1, 0.7, 0.2])
    features = {backbone_key(shipped.backbone_info): np.zeros((3, shipped.backbone_info.feature_dim), np.float32)}
    read = read_attributes([user], features, {}, ["pants", "bag", None], top_k=1)
    assert [a.labels["category"][0].label for a in read] == ["bottom"] * 3
    assert all(not a.disputed for a in read) and read[2].kind is None  # a user's task names no kind unless declared


def test_declared_fits_restrict_and_name_kinds(shipped):
    task = TaskSpec("category", ("top", "bottom"), fits={"shirt": ("top",), "pants": ("bottom",)}, names_kind=True)
    model = _model(shipped.backbone_info, task, [0.3, 0.7])
    features = {backbone_key(shipped.backbone_info): np.zeros((3, shipped.backbone_info.feature_dim), np.float32)}
    shirt, bag, whole = read_attributes([model], features, {}, ["shirt", "bag", None], top_k=2)
    assert [s.label for s in shirt.labels["category"]] == ["top"] and shirt.labels["category"][0].score == 0.3
    assert shirt.disputed[0].label == "bottom"  # the model's own best, kept beside the fitting label
    assert "category" not in bag.labels  # no class fits a bag
    assert whole.kind == "pants" and whole.labels["category"][0].label == "bottom"


def test_fits_round_trip_and_are_checked():
    task = TaskSpec("colour", ("red", "blue"), fits={"shirt": ("red", "blue")}, names_kind=False)
    assert TaskSpec.from_dict(task.to_dict()) == task
    assert "fits" not in TaskSpec("colour", ("red",)).to_dict()  # manifests without fits stay as they were
    with pytest.raises(ValueError, match="does not have: \\['green'\\]"):
        TaskSpec("colour", ("red",), fits={"shirt": ("green",)})
    with pytest.raises(ValueError, match="names_kind needs"):
        TaskSpec("colour", ("red",), names_kind=True)
