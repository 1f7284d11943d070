"""Grid rows (colour columns + coordinates computed where read) against written-out features."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_kmeans as nk
from napari_kmeans import features as ft
from napari_kmeans.engine.grid_rows import GridRows, materialise, take
from napari_kmeans.engine.lloyd import SCAN_UP_TO, run_lloyd

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def hand_coordinates(shape, spacing, weight, value_range, pixels, dtype):
    """Coordinates as the docs define them: dtype(index) * dtype(scale), scale per axis."""
    dtype = np.dtype(dtype)
    extent = max((n - 1) * s for n, s in zip(shape, spacing, strict=True)) or 1.0
    flat = np.arange(int(np.prod(shape))) if pixels is None else pixels
    index = np.unravel_index(flat, shape)
    return np.stack(
        [
            i.astype(dtype) * dtype.type(s * weight * value_range / extent)
            for i, s in zip(index, spacing, strict=True)
        ],
        axis=1,
    )


def make_case(seed, shape, n_channels, dtype, masked, weight):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if np.dtype(dtype).kind == "u":
        values = rng.integers(0, np.iinfo(dtype).max, (n, n_channels), endpoint=True)
        values = values.astype(dtype)
    else:
        values = (rng.standard_normal((n, n_channels)) * 50).astype(dtype)
    pixels = None
    if masked:
        pixels = np.flatnonzero(rng.random(n) < 0.7)
        values = values[pixels]
    spacing = tuple(float(s) for s in rng.uniform(0.5, 2.0, len(shape)))
    fdtype = ft.feature_dtype(dtype)
    value_range = float(rng.uniform(1, 300))
    grid = ft.spatial_rows(values, shape, spacing, weight, value_range, pixels, fdtype)
    written = np.concatenate(
        [
            values.astype(fdtype),
            hand_coordinates(shape, spacing, weight, value_range, pixels, fdtype),
        ],
        axis=1,
    )
    return grid, written


cases = st.tuples(
    st.integers(0, 2**31),  # seed
    st.sampled_from([(7, 9), (1, 40), (13, 1), (4, 5, 6), (3, 1, 17)]),  # grid shape
    st.integers(1, 3),  # channels
    st.sampled_from(DTYPES),
    st.booleans(),  # masked
    st.sampled_from([0.3, 1.0, 7.0]),  # spatial weight
)


@settings(max_examples=60, deadline=None)
@given(cases)
def test_grid_rows_hold_the_numbers_of_the_written_out_features(case):
    grid, written = make_case(*case)
    assert grid.shape == written.shape
    out = materialise(grid)
    assert out.dtype == written.dtype
    np.testing.assert_array_equal(out, written)
    picks = np.random.default_rng(case[0]).integers(0, len(written), 5)
    np.testing.assert_array_equal(take(grid, picks), written[picks])


@settings(max_examples=60, deadline=None)
@given(cases, st.integers(1, 12), st.booleans())
def test_kmeans_on_grid_rows_is_bit_identical_to_kmeans_on_written_out_features(
    case, n_clusters, weighted
):
    grid, written = make_case(*case)
    n_clusters = min(n_clusters, len(written))
    w = None
    if weighted:
        w = np.random.default_rng(case[0] + 1).integers(1, 4, len(written)).astype(float)
    a = nk.kmeans(grid, n_clusters, sample_weight=w, seed=case[0])
    b = nk.kmeans(written, n_clusters, sample_weight=w, seed=case[0])
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia
    assert a.n_iter == b.n_iter


@pytest.mark.parametrize("n_clusters", [8, 30])
def test_kmeans_on_many_grid_rows_samples_them_like_written_out_features(n_clusters):
    # more than SAMPLE_ABOVE rows: k-means++ runs on a drawn sample (taken from the grid)
    grid, written = make_case(3, (400, 500), 3, np.uint8, True, 0.5)
    assert len(written) > 1 << 17
    a = nk.kmeans(grid, n_clusters, seed=1)
    b = nk.kmeans(written, n_clusters, seed=1)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia


def test_grid_rows_far_from_one_are_scaled_like_written_out_features():
    grid, written = make_case(5, (20, 30), 2, np.float64, False, 1.0)
    huge = GridRows(
        grid.values * 2.0**100,
        None,
        grid.grid_shape,
        tuple(t * 2.0**100 for t in grid.axis_values),
        grid.dtype,
    )
    a = nk.kmeans(huge, 6, seed=0)
    b = nk.kmeans(written * 2.0**100, 6, seed=0)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia


def test_grid_rows_with_a_non_finite_value_are_refused():
    grid, _ = make_case(0, (4, 5), 1, np.float32, False, 1.0)
    values = grid.values.copy()
    values[7, 0] = np.nan
    bad = GridRows(values, None, grid.grid_shape, grid.axis_values, grid.dtype)
    with pytest.raises(ValueError, match="NaN or infinite"):
        nk.kmeans(bad, 2, seed=0)


def test_grid_rows_that_do_not_match_their_grid_are_refused():
    with pytest.raises(ValueError, match="do not match the grid"):
        GridRows(np.zeros((5, 1)), None, (2, 3), (np.zeros(2), np.zeros(3)), np.dtype("f8"))
    with pytest.raises(ValueError, match="axis_values"):
        GridRows(np.zeros((6, 1)), None, (2, 3), (np.zeros(2), np.zeros(2)), np.dtype("f8"))


@pytest.mark.parametrize("n_clusters", [5, SCAN_UP_TO, SCAN_UP_TO + 1, 40])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_with_and_without_bounds_ends_at_a_fixed_point_with_the_exact_inertia(
    n_clusters, weighted
):
    # up to SCAN_UP_TO centres every row scans every centre (labels only); above, bounds
    rng = np.random.default_rng(n_clusters)
    X = rng.random((3000, 3)) * 100
    w = rng.integers(1, 5, len(X)).astype(float) if weighted else None
    res = run_lloyd(np.ascontiguousarray(X.T), w, X[:n_clusters], 300, 0.0)
    sq = ((X[:, None, :] - res.centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(sq[np.arange(len(X)), res.labels], sq.min(axis=1))
    ww = np.ones(len(X)) if w is None else w
    for c in range(n_clusters):
        members = res.labels == c
        if members.any():
            np.testing.assert_allclose(
                res.centers[c], np.average(X[members], axis=0, weights=ww[members]), rtol=1e-9
            )
    brute = float((ww * sq[np.arange(len(X)), res.labels]).sum())
    assert res.inertia == pytest.approx(brute, rel=1e-12)
