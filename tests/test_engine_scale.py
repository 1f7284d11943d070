"""K-means does not depend on the data's unit: rows times a power of two partition the same."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_kmeans as nk
from napari_kmeans.engine.distances import summarise
from napari_kmeans.engine.kmeans import SAFE_EXPONENT

cases = st.tuples(
    st.integers(20, 300),  # rows
    st.integers(1, 3),  # features
    st.integers(1, 5),  # clusters
    st.integers(0, 2**31),  # seed
    st.sampled_from([np.float32, np.float64]),
    st.integers(-120, 120),  # exponent of the scale (×4 for float64)
)


@settings(max_examples=60, deadline=None)
@given(cases)
def test_rows_times_a_power_of_two_give_the_same_partition(case):
    n, d, k, seed, dtype, e = case
    X = (1 + np.random.default_rng(seed).random((n, d))).astype(dtype)  # X * 2**e is exact
    e = e if dtype == np.float32 else 4 * e
    a = nk.kmeans(X, k, seed=seed)
    b = nk.kmeans(X * dtype(2.0**e), k, seed=seed)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(np.ldexp(a.centers, e), b.centers)
    assert b.inertia == np.ldexp(a.inertia, 2 * e)


# Peaks just inside and just outside the range computed without scaling, and beyond
edges = [-SAFE_EXPONENT - 2, -SAFE_EXPONENT - 1, -SAFE_EXPONENT, -SAFE_EXPONENT + 1]
edges += [SAFE_EXPONENT - 1, SAFE_EXPONENT, SAFE_EXPONENT + 1, SAFE_EXPONENT + 2]
edge_cases = st.tuples(
    st.integers(20, 300),  # rows
    st.integers(1, 3),  # features
    st.integers(1, 5),  # clusters
    st.integers(0, 2**31),  # seed
    st.sampled_from([np.float32, np.float64]),
    st.sampled_from(edges),  # binary exponent of the first data's peak
    st.integers(-6, 6),  # a shift, crossing the edge or not
)


@settings(max_examples=60, deadline=None)
@given(edge_cases)
def test_the_same_partition_on_both_sides_of_the_unscaled_range(case):
    # X's peak lies in [2**(e-1), 2**e): rows near the edge of the range used unscaled,
    # and the same rows shifted across it, label, centre and sum exactly alike
    n, d, k, seed, dtype, e, shift = case
    X = np.ldexp(1 + np.random.default_rng(seed).random((n, d)), e - 1).astype(dtype)
    assert int(np.frexp(np.abs(X).max())[1]) == e
    a = nk.kmeans(X, k, seed=seed)
    b = nk.kmeans(X * dtype(2.0**shift), k, seed=seed)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(np.ldexp(a.centers, shift), b.centers)
    assert b.inertia == np.ldexp(a.inertia, 2 * shift)


def test_rows_in_the_unscaled_range_give_what_their_scaled_copy_gives():
    # the unscaled path (no copy) against an independent oracle: the same rows brought to a
    # peak in [0.5, 1) by hand, which always runs scaled by 1
    X = np.random.default_rng(6).random((500, 3)).astype(np.float32) * np.float32(300)
    res = nk.kmeans(X, 4, seed=1)
    ref = nk.kmeans(np.ldexp(X, -9), 4, seed=1)
    np.testing.assert_array_equal(res.labels, ref.labels)
    np.testing.assert_array_equal(res.centers, np.ldexp(ref.centers, 9))
    assert res.inertia == np.ldexp(ref.inertia, 18)


def test_the_callers_rows_are_not_modified():
    X = np.random.default_rng(7).random((400, 2)).astype(np.float32)
    before = X.copy()
    nk.kmeans(X, 3, seed=0)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(np.float32, 1e19), (np.float32, 1e20), (np.float32, 1e-20), (np.float32, 1e-25)],
)
def test_float_images_at_extreme_scales_segment_like_the_unscaled_image(dtype, scale):
    img = np.random.default_rng(3).random((40, 50, 3)).astype(dtype)
    base = nk.segment(img, n_clusters=3, seed=0)
    scaled = nk.segment(img * dtype(scale), n_clusters=3, seed=0)
    np.testing.assert_array_equal(scaled.labels, base.labels)
    assert scaled.inertia == pytest.approx(base.inertia * scale**2, rel=1e-4)


def test_float64_times_1e300_gives_the_right_partition_and_finite_centres():
    img = np.random.default_rng(4).random((40, 50, 3))
    base = nk.segment(img, n_clusters=3, seed=0, smooth=None)
    scaled = nk.segment(img * 1e300, n_clusters=3, seed=0, smooth=None)
    np.testing.assert_array_equal(scaled.labels, base.labels)
    np.testing.assert_allclose(scaled.centers, base.centers * 1e300, rtol=1e-12)
    np.testing.assert_allclose(scaled.palette, base.palette * 1e300, rtol=1e-12)


def test_large_values_whose_inertia_fits_float64_give_a_finite_inertia():
    # values near 1e150 (squared: 1e300): the inertia ~ n × 1e299 fits; no intermediate
    # square of a value overflows on the way
    img = np.random.default_rng(5).random((40, 50)) * 1e150
    res = nk.kmeans(img.reshape(-1, 1), 2, seed=0)
    ref = nk.kmeans(img.reshape(-1, 1) / 1e150, 2, seed=0)
    assert np.isfinite(res.inertia)
    assert res.inertia == pytest.approx(ref.inertia * 1e300, rel=1e-9)


def test_the_variances_of_the_tolerance_do_not_depend_on_the_rows_layout():
    # the rows are summed row by row, block by block, whatever their layout
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        X = (rng.random((100_003, 3)) * 255).astype(dtype)
        w = rng.random(len(X))
        for weights in (None, w):
            a = summarise(X, weights).variance
            b = summarise(np.asfortranarray(X), weights).variance
            np.testing.assert_array_equal(a, b)
            # and it is the variance (an independent two-pass computation)
            mean = np.average(X.astype(np.float64), axis=0, weights=weights)
            ref = np.average((X - mean) ** 2, axis=0, weights=weights)
            np.testing.assert_allclose(a, ref, rtol=1e-9)
