"""The label check's flagging rule and its repeated cross-validation (no images: probabilities given directly)."""

import numpy as np

from fashionlens.audit.labels import MAX_GIVEN_RATIO, HeadSettings, label_issues, out_of_fold_probabilities
from fashionlens.classify.model import TaskSpec


def test_flags_only_labels_far_less_likely_than_the_best_least_likely_first():
    probs = np.array([[0.80, 0.15, 0.05],   # given 0: the likeliest, kept
                      [0.50, 0.45, 0.05],   # given 1: a near tie (a look-alike class), kept
                      [0.90, 0.09, 0.01],   # given 1: 0.1 of the best, flagged
                      [0.02, 0.96, 0.02],   # given 2: 0.02 of the best, flagged first
                      [0.02, 0.96, 0.02]])  # unlabelled: never judged
    labels = np.array([0, 1, 1, 2, -1])
    found = label_issues(labels, probs)
    assert found.rows.tolist() == [3, 2]
    assert found.suggested.tolist() == [1, 0]
    assert np.allclose(found.score, [0.98, 0.91])
    assert found.accuracy == 0.25  # the near tie counts as a miss
    assert label_issues(labels, probs, max_ratio=0.05).rows.tolist() == [3]
    assert 0.05 < MAX_GIVEN_RATIO < 0.5


def test_small_sets_average_several_cross_validations():
    settings = HeadSettings(repeats=3, repeat_below=100)
    assert settings.repeats_for(99) == 3 and settings.repeats_for(100) == 1
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(size=(60, 8)).astype(np.float32) + np.eye(3, 8, dtype=np.float32)[y] * 5
    names = [f"{i:064x}" for i in range(60)]
    calls = []
    probs = out_of_fold_probabilities(x, y[:, None], [TaskSpec("c", ("a", "b", "c"))], names, [None] * 60,
                                      folds=3, heads=settings, advance=lambda n=1: calls.append(n))
    assert len(calls) == 9  # three cross-validations of three folds
    assert np.allclose(probs["c"].sum(1), 1, atol=1e-4)
    assert (probs["c"].argmax(1) == y).mean() > 0.9
