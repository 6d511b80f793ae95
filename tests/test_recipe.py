"""Training recipes: `auto` chooses on training rows only, named recipes and explicit flags override, and the
choice is saved. Generated pictures of three colours (as tests/test_classify.py), efficientnet_lite0."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fashionlens.classify import TrainConfig, cross_validate, train
from fashionlens.classify.recipe import RECIPES, apply_recipe, candidate_configs, given_fields
from fashionlens.cli import app
from fashionlens.data import read_folder
from tests.test_classify import make_class_folders

train_module = importlib.import_module("fashionlens.classify.train")  # the package's `train` is the function
BACKBONE = "efficientnet_lite0"
PER_CLASS = 20  # 60 images: 3 outer folds leave 40 training images, enough for auto's inner folds


@pytest.fixture(scope="module")
def colour_dir(tmp_path_factory) -> Path:
    return make_class_folders(tmp_path_factory.mktemp("recipe-colours"), per_class=PER_CLASS, seed=3)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# --------------------------------------------------------------------------- settings, without images


def test_a_recipe_fills_only_the_settings_not_given():
    config = apply_recipe(TrainConfig(colour_bins=4, fixed=("colour_bins",)), "colour-logistic")
    assert config.colour_bins == 4  # given
    assert config.pool_stages == (1, 2, 3, 4) and config.head_fit == "logistic" and config.colour_sqrt  # the recipe's
    assert config.recipe == "colour-logistic" and config.fixed == ("colour_bins",)


def test_without_fixed_the_given_settings_are_those_off_the_defaults():
    assert given_fields(TrainConfig(hidden=64, validation=0.2)) == ("hidden", "validation")
    assert apply_recipe(TrainConfig(validation=0.2), "logistic").validation == 0.2
    assert apply_recipe(TrainConfig(), "logistic").validation == 0.0


def test_classic_is_the_plain_config_and_auto_drops_clashing_candidates():
    assert apply_recipe(TrainConfig(), "classic") == TrainConfig(fixed=())
    # logistic heads are linear: with a hidden layer given, auto keeps only the candidates that can have one
    assert list(candidate_configs(TrainConfig(recipe="auto", hidden=64), 5000)) == ["colour-mlp"]
    assert list(candidate_configs(TrainConfig(recipe="auto"), 300)) == ["logistic", "colour-logistic"]
    with pytest.raises(ValueError, match="logistic heads"):
        candidate_configs(TrainConfig(recipe="logistic", hidden=64), 300)
    with pytest.raises(ValueError, match="recipe must be one of"):
        TrainConfig(recipe="best")
    assert set(RECIPES) >= {"classic", "logistic", "colour-logistic", "colour-mlp"}


def test_mlp_heads_fit_without_class_weights_unless_told():
    assert apply_recipe(TrainConfig(), "colour-mlp").balance is False  # plain accuracy: what the search scores
    assert apply_recipe(TrainConfig(), "colour-logistic").balance is True
    assert apply_recipe(TrainConfig(balance=True, fixed=("balance",)), "colour-mlp").balance is True  # --balance
    with pytest.raises(ValueError, match="resize must be one of"):
        TrainConfig(resize="stretch")


# --------------------------------------------------------------------------- no leak


class Spy:
    """Wraps `choose_recipe`: records the rows it was given and every row its inner fits trained or scored on."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[set[int], set[int]]] = []
        real = train_module.choose_recipe

        def choose(configs, features_of, rows, groups, fit, **kwargs):
            touched: set[int] = set()

            def spied_fit(lf, split, config, out):
                touched.update(split.train, split.validation, split.test)
                return fit(lf, split, config, out)

            choice = real(configs, features_of, rows, groups, spied_fit, **kwargs)
            self.calls.append((set(rows), touched))
            return choice

        monkeypatch.setattr(train_module, "choose_recipe", choose)


def test_auto_never_chooses_on_the_scored_fold(colour_dir, monkeypatch):
    spy = Spy(monkeypatch)
    result = cross_validate(read_folder(colour_dir), TrainConfig(backbone=BACKBONE, recipe="auto", progress=False,
                                                                 workers=0), folds=3)
    assert len(spy.calls) == 3 and len(result.recipes) == 3
    for split, (rows, touched) in zip(result.splits, spy.calls, strict=True):
        assert touched, "the inner folds ran"
        assert touched == rows == set(split.train + split.validation)
        assert not touched & set(split.test), "a scored image was used to choose the recipe"
    for choice in result.recipes:
        assert choice.inner_folds >= 2 and all(c.score is not None for c in choice.candidates)
        assert choice.recipe == max(choice.candidates, key=lambda c: c.score).recipe


def test_train_chooses_on_its_training_rows_only(colour_dir, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    config = TrainConfig(backbone=BACKBONE, recipe="auto", test=0.25, progress=False, workers=0)
    result = train(read_folder(colour_dir), tmp_path / "m", config)
    (rows, touched), = spy.calls
    assert touched == rows == set(result.split.train)
    assert not touched & set(result.split.test + result.split.validation)
    assert "test" in result.metrics and result.recipe.recipe in RECIPES


# --------------------------------------------------------------------------- the command


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_train_defaults_to_auto_and_saves_the_choice(colour_dir, tmp_path):
    result = invoke("train", colour_dir, "--out", tmp_path / "m", "--backbone", BACKBONE)
    assert result.exit_code == 0, result.output
    assert "recipe" in result.output and "inner 3-fold accuracy" in " ".join(result.output.split())
    manifest = manifest_of(tmp_path / "m")
    recipe = manifest["recipe"]
    assert [c["recipe"] for c in recipe["candidates"]] == ["logistic", "colour-logistic"]
    assert all(c["score"] is not None for c in recipe["candidates"])
    assert manifest["training"]["recipe"] == recipe["recipe"]
    assert "validation" not in manifest["metrics"]  # a recipe's heads fit on every image: nothing held out unasked


def test_the_report_shows_each_candidates_inner_score(colour_dir, tmp_path):
    result = invoke("train", colour_dir, "--out", tmp_path / "m", "--backbone", BACKBONE, "--test", "0.25")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "m" / "report" / "test" / "index.html").read_text()
    assert "inner accuracy" in page and "colour-logistic" in page


def test_a_named_recipe_and_explicit_flags_override_auto(colour_dir, tmp_path):
    result = invoke("train", colour_dir, "--out", tmp_path / "m", "--backbone", BACKBONE, "--recipe", "colour-logistic",
                    "--colour-bins", "4", "--no-colour-sqrt")
    assert result.exit_code == 0, result.output
    training = manifest_of(tmp_path / "m")["training"]
    assert training["recipe"] == "colour-logistic" and training["head_fit"] == "logistic"
    assert training["pool_stages"] == [1, 2, 3, 4] and training["colour_bins"] == 4 and not training["colour_sqrt"]
    assert manifest_of(tmp_path / "m")["backbone"]["colour_bins"] == 4

    result = invoke("train", colour_dir, "--out", tmp_path / "a", "--backbone", BACKBONE, "--head-fit", "adamw",
                    "--epochs", "5")
    assert result.exit_code == 0, result.output
    training = manifest_of(tmp_path / "a")["training"]
    assert training["head_fit"] == "adamw" and training["epochs"] == 5  # given: every candidate keeps them

    result = invoke("train", colour_dir, "--out", tmp_path / "c", "--backbone", BACKBONE, "--recipe", "classic")
    assert result.exit_code == 0, result.output
    training = manifest_of(tmp_path / "c")["training"]
    assert training["head_fit"] == "adamw" and training["validation"] == 0.15 and training["pool_stages"] == []
