"""The one stem-cache training loop, on a toy task (a linear fit on fixed 'stems'): resume after an interruption
gives the weights of an unbroken run, early stopping and the kept epoch follow the schedule, and the state saved
with each checkpoint is the typed `TrainingState`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fashionlens.checkpoints import TrainingState
from fashionlens.epoch_log import EpochLog
from fashionlens.stem_training import Schedule, StemTask, train_on_stems

VIEWS = 2


class _Trunk(torch.nn.Module):
    """What the loop asks of a network's backbone: pretrained `blocks` and a frozen `bn1`."""

    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.Sequential(torch.nn.Linear(4, 4))
        self.bn1 = torch.nn.BatchNorm1d(4)


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = _Trunk()
        self.head = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.backbone.blocks(x))


def _task(scores: list[float] | None = None) -> StemTask:
    """24 photos of VIEWS views each; `scores`, when given, are the validation scores of epochs 1, 2, ..."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(24 * VIEWS, 4)).astype(np.float32))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    model = _Toy()
    epochs = iter(scores or [])

    def loss(m, rows):
        return {"mse": torch.nn.functional.mse_loss(m(x[rows]), y[rows])}

    def validate(m):
        with torch.no_grad():
            fit = -float(torch.nn.functional.mse_loss(m(x[::VIEWS]), y[::VIEWS]))
        return {"neg_mse": next(epochs, fit)}

    return StemTask("toy", model, list(range(24)), loss, validate, "neg_mse")


SCHEDULE = Schedule(epochs=5, batch_size=4, lr=0.05, backbone_lr_scale=0.2, weight_decay=0.0, patience=10,
                    views=VIEWS, seed=0)


def _weights(task: StemTask) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in task.model.state_dict().items()}


@pytest.mark.slow  # three short trainings: about 1.5 s
def test_resumed_training_ends_with_the_weights_of_an_unbroken_run(tmp_path, monkeypatch):
    unbroken = _task()
    train_on_stems(unbroken, SCHEDULE, tmp_path / "a", tmp_path / "a" / "logs", "key", progress=False)

    logged = EpochLog.log

    def stop_at_3(self, stage, epoch, values):
        if epoch == 3:
            raise KeyboardInterrupt
        logged(self, stage, epoch, values)

    monkeypatch.setattr(EpochLog, "log", stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        train_on_stems(_task(), SCHEDULE, tmp_path / "b", tmp_path / "b" / "logs", "key", progress=False)
    monkeypatch.setattr(EpochLog, "log", logged)
    saved = json.loads((tmp_path / "b" / "state.json").read_text())
    assert TrainingState.from_json(saved).epoch == 2 and {"param_groups", "scheduler"} <= set(saved)

    resumed = _task()
    run = train_on_stems(resumed, SCHEDULE, tmp_path / "b", tmp_path / "b" / "logs", "key", progress=False)
    assert [r.split(",")[0] for r in (tmp_path / "b" / "logs" / "toy.csv").read_text().split()[1:]] == \
        ["1", "2", "3", "4", "5"]  # no epoch twice
    assert run.state.epoch == 5 and sorted(run.state.validation) == [1, 2, 3, 4, 5]
    for name, value in _weights(unbroken).items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_other_settings_do_not_resume(tmp_path):
    train_on_stems(_task(), SCHEDULE, tmp_path, tmp_path / "logs", "key", progress=False)
    run = train_on_stems(_task(), SCHEDULE, tmp_path, tmp_path / "logs2", "other", progress=False)
    assert run.state.config_key == "other" and (tmp_path / "logs2" / "toy.csv").read_text().count("\n") == 6


def test_best_epoch_kept_and_patience_stops(tmp_path):
    scores = [0.1, 0.5, 0.3, 0.2, 0.4]
    task = _task(scores)
    run = train_on_stems(task, Schedule(**{**SCHEDULE.__dict__, "patience": 2}), tmp_path, tmp_path / "logs", "k",
                         progress=False)
    assert (run.state.best_epoch, run.kept_epoch, run.state.epoch) == (2, 2, 4)  # two epochs without better: stop
    kept = load_file(tmp_path / "best.safetensors")  # the model ends holding the best epoch's weights
    assert all(torch.equal(v, task.model.state_dict()[k]) for k, v in kept.items())


def test_keep_last_runs_the_whole_schedule(tmp_path):
    task = _task([0.9, 0.1, 0.1, 0.1, 0.1])
    run = train_on_stems(task, Schedule(**{**SCHEDULE.__dict__, "patience": 1, "keep": "last"}), tmp_path,
                         tmp_path / "logs", "k", progress=False)
    assert (run.state.best_epoch, run.kept_epoch, run.state.epoch) == (1, 5, 5)
    with pytest.raises(ValueError, match="keep must be one of"):
        Schedule(**{**SCHEDULE.__dict__, "keep": "first"})


def test_weight_average_is_validated_kept_and_resumed(tmp_path):
    averaged = Schedule(**{**SCHEDULE.__dict__, "ema_decay": 0.9})
    run = train_on_stems(_task(), averaged, tmp_path, tmp_path / "logs", "k", progress=False)
    header = (tmp_path / "logs" / "toy.csv").read_text().split()[0].split(",")
    assert header == ["epoch", "mse", "val_neg_mse", "raw_val_neg_mse", "minutes"]
    assert run.state.ema_steps == 5 * (24 // 4) and (tmp_path / "ema.safetensors").is_file()


def test_training_state_reads_an_older_state_file():
    old = {"config_key": "k", "epoch": 3, "best_score": 0.5, "best_epoch": 2, "since_best": 1, "seconds": 9.0,
           "validation": {"2": {"miou": 0.5}}, "param_groups": [], "scheduler": {}}
    state = TrainingState.from_json(old)
    assert state.validation == {2: {"miou": 0.5}} and state.ema_steps == 0
    assert TrainingState.from_json(json.loads(json.dumps(state.to_json()))) == state
