"""OpenCV standing in for scipy.ndimage: the same part numbers (the order garments and parts come out in follows
them), the same closing at the mask's edge and the same distances, on random masks of every density."""

from __future__ import annotations

import numpy as np
import pytest

from fashionlens.morphology import closing, connected_parts, dilation, distance_to_background

ndimage = pytest.importorskip("scipy.ndimage", reason="scipy (the train extra) is the reference")


def _masks(count: int = 120):
    rng = np.random.default_rng(0)
    for i in range(count):
        h, w = (int(v) for v in rng.integers(1, 160, 2))
        mask = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        yield ndimage.binary_opening(mask) if i % 3 == 0 else mask  # blobs as well as speckle
    yield np.random.default_rng(1).random((700, 500)) < 0.5  # large enough to be split over threads


@pytest.mark.parametrize("connectivity", [4, 8])
def test_parts_are_numbered_as_ndimage_numbers_them(connectivity):
    structure = None if connectivity == 4 else np.ones((3, 3), bool)
    for mask in _masks():
        labels, n = connected_parts(mask, connectivity)
        expected, m = ndimage.label(mask, structure=structure)
        assert n == m and np.array_equal(labels, expected)


def test_dilation_and_closing_are_ndimages_border_included():
    for mask in _masks():
        assert np.array_equal(dilation(mask), ndimage.binary_dilation(mask))
        for iterations in (1, 2):
            assert np.array_equal(closing(mask, iterations), ndimage.binary_closing(mask, iterations=iterations))
    edge = np.zeros((6, 6), bool)
    edge[:, :2] = True
    assert not closing(edge)[:, 0].any()  # outside the mask is background: the edge column erodes, as in ndimage


def test_distances_are_exact_and_the_outside_is_not_background():
    for mask in _masks(40):
        if mask.all():
            continue
        expected = ndimage.distance_transform_edt(mask)
        assert np.abs(distance_to_background(mask) - expected).max() < 1e-4
        for radius in (1, 3, 7, 20):  # the comparisons label_masks makes
            assert np.array_equal(distance_to_background(mask) > radius, expected > radius)
    corner = np.ones((5, 5), bool)
    corner[4, 4] = False
    assert distance_to_background(corner)[0, 0] == pytest.approx(np.hypot(4, 4))
