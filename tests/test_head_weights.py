"""The numpy heads' GELU and softmax without scipy: within two ulps of scipy.special's erf (so the float32 outputs
do not move) and its softmax's own steps, exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fashionlens.classify.head_weights import erf, gelu, softmax

special = pytest.importorskip("scipy.special", reason="scipy (the train extra) is the reference")


def test_erf_is_the_c_librarys_and_within_two_ulps_of_scipys():
    x = np.concatenate([np.random.default_rng(0).normal(0, 3, 200_000), np.linspace(-7, 7, 10_001), [0.0, -0.0]])
    assert erf(x).dtype == np.float64 and list(erf(x[:50])) == [math.erf(v) for v in x[:50]]
    assert (np.abs(erf(x) - special.erf(x)) <= 2 * np.spacing(np.abs(special.erf(x)))).all()


def test_gelu_and_softmax_give_scipys_float32_outputs():
    logits = np.random.default_rng(1).normal(0, 3, (500, 256)).astype(np.float32)
    old_gelu = 0.5 * logits * (1.0 + special.erf(logits / np.sqrt(2.0)))
    assert np.array_equal(gelu(logits).astype(np.float32), old_gelu.astype(np.float32))
    assert np.array_equal(softmax(logits, axis=-1), special.softmax(logits, axis=-1))
    wide = logits.astype(np.float64) * 40  # large logits: the shift by the maximum keeps exp finite
    assert np.array_equal(softmax(wide, axis=-1), special.softmax(wide, axis=-1))
