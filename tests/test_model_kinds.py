"""The one table of model-folder kinds: each shipped folder is of the kind it is filed under, every kind's loader,
exporter and runtime can be found, shipped names resolve alike, and a folder that is no model says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fashionlens.defaults import resolve_model
from fashionlens.model_folder import ModelError
from fashionlens.lazy import attribute
from fashionlens.model_kinds import KINDS, kind_of


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_shipped_folder_is_of_its_kind_and_its_code_is_found(name):
    kind = KINDS[name]
    for shipped in kind.shipped:
        assert kind_of(kind.shipped_folder(shipped)) is kind
    assert resolve_model(None, name) == resolve_model("default", name) == kind.shipped_folder()
    assert isinstance(kind.runtime_class(), type) and callable(attribute(kind.loader))


@pytest.mark.slow  # the exporters import PyTorch: about 5 s
@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_has_an_exporter(name):
    assert callable(attribute(KINDS[name].exporter))


def test_a_shipped_folder_loads_through_its_kind():
    loaded = KINDS["detector"].load(resolve_model(None, "detector"))
    assert loaded.manifest["format"] == KINDS["detector"].format


def test_names_that_are_not_shipped_are_paths(tmp_path):
    assert resolve_model("types", "classifier") == KINDS["classifier"].shipped_folder("types")
    assert resolve_model("types", "detector") == Path("types")  # only the classifier ships one by that name
    assert resolve_model(tmp_path, "parser") == tmp_path


def test_a_folder_that_is_no_model_says_why(tmp_path):
    with pytest.raises(ModelError, match="model folder not found"):
        kind_of(tmp_path / "missing")
    with pytest.raises(ModelError, match=r"no manifest\.json"):
        kind_of(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="not a JSON object"):
        kind_of(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "someone-elses-model"}))
    with pytest.raises(ModelError, match="'someone-elses-model', not one of 'fashionlens-classifier'"):
        kind_of(tmp_path)
