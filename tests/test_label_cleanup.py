"""Label clean-up kernels against independent oracles: brute-force loops, scipy, hand-made grids."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_kmeans.outputs import cleanup
from napari_kmeans.outputs.cleanup import (
    Cleanup,
    PixelFeatures,
    check_min_size,
    check_regularize,
    clean_labels,
    regularize_labels,
    small_components,
)

ndimage = pytest.importorskip("scipy.ndimage")


def box(spacing, radius):
    """Offsets and weights written out again: finest spacing over physical length."""
    finest = min(spacing)
    reach = [max(1, math.floor(radius * finest / s + 0.5)) for s in spacing]
    offsets = [o for o in itertools.product(*(range(-r, r + 1) for r in reach)) if any(o)]
    weights = [
        finest / math.sqrt(sum((a * s) ** 2 for a, s in zip(o, spacing, strict=False)))
        for o in offsets
    ]
    return offsets, weights


def neighbours(grid, index, offsets, weights):
    for offset, weight in zip(offsets, weights, strict=False):
        q = tuple(i + o for i, o in zip(index, offset, strict=False))
        if all(0 <= c < n for c, n in zip(q, grid.shape, strict=False)):
            yield grid[q], weight


def brute_majority(grid, spacing, radius):
    offsets, weights = box(spacing, radius)
    out = grid.copy()
    for index in np.ndindex(grid.shape):
        current = int(grid[index])
        if current == 0:
            continue
        votes = {current: 1.0}
        for label, weight in neighbours(grid, index, offsets, weights):
            if label:
                votes[int(label)] = votes.get(int(label), 0.0) + weight
        most = max(votes.values())
        if votes[current] < most:
            out[index] = min(label for label, v in votes.items() if v == most)
    return out


def brute_potts(grid, feats, centers, beta, spacing, sweeps, origin=(0, 0, 0)):
    """ICM visiting the parity classes in order, each in C order, as documented."""
    offsets, weights = box(spacing, 1)
    labels = grid.copy()
    scale = 1.0
    k = len(centers)
    for _ in range(sweeps):
        changed = 0
        for parity in range(2**grid.ndim):
            for index in np.ndindex(grid.shape):
                colour = sum(((c + origin[axis]) % 2) << axis for axis, c in enumerate(index))
                current = int(labels[index])
                if current == 0 or colour != parity:
                    continue
                votes = [0.0] * (k + 1)
                total = 0.0
                for label, weight in neighbours(labels, index, offsets, weights):
                    if label:
                        votes[int(label)] += weight
                        total += weight
                x = feats[index]
                cost = [None] + [float(np.sum((x - c) ** 2)) for c in centers]

                def energy(label, cost=cost, votes=votes, total=total):
                    return cost[label] / scale + beta * (total - votes[label])

                lowest = min(energy(label) for label in range(1, k + 1))
                if energy(current) > lowest:
                    labels[index] = min(
                        label for label in range(1, k + 1) if energy(label) == lowest
                    )
                    changed += 1
        if not changed:
            break
    return labels


def potts_data(feats, centers):
    return PixelFeatures(
        feats.reshape(-1, feats.shape[-1]).astype(np.float64),
        np.arange(feats[..., 0].size),
        centers.astype(np.float64),
        np.arange(1, len(centers) + 1),
        1.0,
    )


@pytest.mark.parametrize(
    ("shape", "spacing", "radius"),
    [((7, 9), (1.0, 1.0), 1), ((7, 9), (1.0, 1.0), 2), ((4, 5, 6), (2.0, 1.0, 1.0), 1)],
)
def test_majority_equals_brute_force(shape, spacing, radius):
    rng = np.random.default_rng(1)
    for _ in range(5):
        grid = rng.integers(0, 4, shape).astype(np.uint8)
        got = regularize_labels(grid, ("majority", radius), spacing)
        np.testing.assert_array_equal(got, brute_majority(grid, spacing, radius))
        assert got.dtype == grid.dtype
        np.testing.assert_array_equal(got == 0, grid == 0)


@pytest.mark.parametrize(
    ("shape", "spacing", "beta"),
    [((6, 7), (1.0, 1.0), 0.7), ((6, 7), (1.0, 1.0), 3.0), ((3, 4, 5), (2.0, 1.0, 1.0), 1.5)],
)
@pytest.mark.parametrize("table", [True, False])
def test_potts_equals_brute_force_icm(shape, spacing, beta, table, monkeypatch):
    if not table:  # distances computed per visit, as for a float image of many pixels
        monkeypatch.setattr(cleanup, "COST_TABLE_ENTRIES", 0)
    rng = np.random.default_rng(2)
    centers = np.array([[0.0, 0.0], [1.0, 0.5], [2.0, 2.0]])
    for _ in range(3):
        feats = rng.normal(0, 0.8, (*shape, 2)) + centers[rng.integers(0, 3, shape)]
        distances = ((feats[..., None, :] - centers) ** 2).sum(-1)
        grid = (np.argmin(distances, axis=-1) + 1).astype(np.uint8)
        grid[rng.random(shape) < 0.1] = 0  # outside the mask
        got = regularize_labels(grid, ("potts", beta), spacing, potts_data(feats, centers))
        expected = brute_potts(grid, feats, centers, beta, spacing, sweeps=8)
        np.testing.assert_array_equal(got, expected)


def test_potts_keeps_nearest_labels_when_beta_is_tiny():
    rng = np.random.default_rng(3)
    centers = np.array([[0.0], [1.0]])
    feats = rng.normal(0.5, 1.0, (10, 10, 1))
    grid = (np.abs(feats[..., 0] - 1) < np.abs(feats[..., 0]) + 0).astype(np.uint8) + 1
    got = regularize_labels(grid, ("potts", 1e-12), (1.0, 1.0), potts_data(feats, centers))
    np.testing.assert_array_equal(got, grid)


def test_potts_parity_follows_the_origin():
    """A chunk starting at an odd index visits its pixels in the whole image's classes."""
    rng = np.random.default_rng(4)
    centers = np.array([[0.0], [1.0], [2.0]])
    feats = rng.normal(1.0, 0.9, (7, 8, 1))
    grid = (np.argmin(np.abs(feats - centers[:, 0]), axis=-1) + 1).astype(np.uint8)
    data = potts_data(feats, centers)
    got = regularize_labels(grid, ("potts", 2.0), (1.0, 1.0), data, origin=(3, 0))
    expected = brute_potts(grid, feats, centers, 2.0, (1.0, 1.0), sweeps=8, origin=(3, 0))
    np.testing.assert_array_equal(got, expected)


@given(
    st.lists(st.integers(0, 3), min_size=30, max_size=30),
    st.sampled_from([(5, 6), (2, 3, 5)]),
)
@settings(max_examples=60, deadline=None)
def test_components_match_scipy_label(values, shape):
    from napari_kmeans.outputs.label_kernels import components

    grid = np.array(values, np.uint8).reshape(shape)
    component, sizes = components(grid.reshape(-1), np.asarray(shape, np.int64))
    component = component.reshape(shape)
    total = 0
    for label in range(1, 4):
        theirs, n = ndimage.label(grid == label)
        total += n
        ours = component[grid == label]
        # the same partition: one of ours per one of theirs
        pairs = set(zip(ours.tolist(), theirs[grid == label].tolist(), strict=False))
        assert len(pairs) == n == len(set(ours.tolist()))
    assert len(sizes) == total
    assert sizes.sum() == np.count_nonzero(grid)
    assert (component[grid == 0] == -1).all()


def test_small_components_hand_made():
    grid = np.array(
        [
            [1, 1, 1, 1, 2, 2],
            [1, 3, 1, 1, 2, 2],
            [1, 1, 1, 2, 2, 3],
            [2, 1, 1, 2, 2, 2],
        ],
        np.uint8,
    )
    # the 3 at (1, 1) is surrounded by 1; the 3 at (2, 5) touches 2 on three faces; the 2 at
    # (3, 0) touches only 1 (two faces: up and right)
    expected = np.array(
        [
            [1, 1, 1, 1, 2, 2],
            [1, 1, 1, 1, 2, 2],
            [1, 1, 1, 2, 2, 2],
            [1, 1, 1, 2, 2, 2],
        ],
        np.uint8,
    )
    np.testing.assert_array_equal(small_components(grid, 2, (1.0, 1.0)), expected)
    # min_size 1 keeps everything
    np.testing.assert_array_equal(small_components(grid, 1, (1.0, 1.0)), grid)


def test_small_components_majority_of_boundary_pixels():
    # the pair of 3s has boundary pixels: four 1s and two 2s (each pixel counted once)
    grid = np.array(
        [
            [1, 1, 2, 2],
            [1, 3, 3, 2],
            [1, 1, 1, 2],
        ],
        np.uint8,
    )
    out = small_components(grid, 3, (1.0, 1.0))
    assert out[1, 1] == out[1, 2] == 1


def test_small_components_nested_and_masked():
    # a 1-pixel 3 inside a ring of 2s (8 pixels) inside 1s: at min_size 9 the ring joins the
    # 1s first, then the 3 does; a component with only masked neighbours is kept
    grid = np.ones((7, 7), np.uint8)
    grid[2:5, 2:5] = 2
    grid[3, 3] = 3
    out = small_components(grid, 9, (1.0, 1.0))
    assert (out == 1).all()
    lonely = np.array([[0, 0, 0], [0, 2, 0], [0, 0, 0]], np.uint8)
    np.testing.assert_array_equal(small_components(lonely, 5, (1.0, 1.0)), lonely)


def test_small_components_physical_volume():
    grid = np.ones((1, 10), np.uint8)
    grid[0, 4:6] = 2  # two pixels of 0.5 x 2 = 1.0 each: a volume of 2.0
    spacing = (0.5, 2.0)
    np.testing.assert_array_equal(small_components(grid, 2.0, spacing), grid)  # not smaller
    assert (small_components(grid, 2.5, spacing) == 1).all()
    assert (small_components(grid, 3, spacing) == 1).all()  # an int counts pixels


def test_small_components_3d_against_scipy():
    """Afterwards no small component (scipy's) touches a large one; none grew from nothing."""
    rng = np.random.default_rng(5)
    grid = rng.integers(1, 4, (6, 7, 8)).astype(np.uint8)
    grid[rng.random(grid.shape) < 0.6] = 1
    out = small_components(grid, 4, (1.0, 1.0, 1.0))
    assert set(np.unique(out)) <= set(np.unique(grid))
    size_of = np.zeros(grid.shape, np.int64)
    pieces = []
    for label in (1, 2, 3):
        theirs, n = ndimage.label(out == label)
        sizes = np.bincount(theirs.ravel(), minlength=n + 1)
        size_of[theirs > 0] = sizes[theirs[theirs > 0]]
        pieces += [theirs == i for i in range(1, n + 1)]
    before = sum(ndimage.label(grid == label)[1] for label in (1, 2, 3))
    assert len(pieces) < before
    for piece in pieces:
        if piece.sum() < 4:
            ring = ndimage.binary_dilation(piece) & ~piece
            assert (size_of[ring] < 4).all()


def test_clean_labels_order_and_identity():
    grid = np.array([[1, 1, 2, 1, 1]], np.uint8)
    assert clean_labels(grid, Cleanup(), (1.0, 1.0)) is grid
    both = clean_labels(grid, Cleanup(("majority", 1), 2), (1.0, 1.0))
    assert (both == 1).all()


@pytest.mark.parametrize(
    "value",
    [
        "median",
        ("potts",),
        ("potts", -1.0),
        ("potts", float("nan")),
        ("majority", 0),
        ("majority", 1.5),
        ("majority", True),
        3,
        ["x", 1],
    ],
)
def test_regularize_refused(value):
    with pytest.raises(ValueError, match="regularize="):
        check_regularize(value)


@pytest.mark.parametrize("value", [0, -2, 0.0, float("inf"), True, "10", [3]])
def test_min_size_refused(value):
    with pytest.raises(ValueError, match="min_size="):
        check_min_size(value)
