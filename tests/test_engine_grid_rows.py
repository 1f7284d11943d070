"""Grid rows (colour columns + coordinates computed where read) against written-out features."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_kmeans as nk
from napari_kmeans.engine import kernels
from napari_kmeans.engine.distances import label_sums, summarise
from napari_kmeans.engine.grid_rows import GridRows, kernel_rows, materialise, take
from napari_kmeans.engine.lloyd import SCAN_UP_TO, run_lloyd
from napari_kmeans.features import pixels as ft

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


def in_order_sum(values):
    """Sum in the order given, one addition at a time (cumsum is sequential)."""
    return float(np.cumsum(values)[-1]) if len(values) else 0.0


@settings(max_examples=60, deadline=None)
@given(cases, st.integers(1, SCAN_UP_TO), st.booleans(), st.data())
def test_batched_scan_is_the_brute_force_nearest_with_sums_in_row_order(
    case, n_clusters, weighted, data
):
    # scan_block loads rows by batches (runs along the grid's last axis, or unravelled
    # pixels) and scans every centre across the batch: labels must be the brute-force
    # nearest centre (lowest index on ties), sums those of adding the rows one by one
    grid, written = make_case(*case)
    rng = np.random.default_rng(case[0])
    X = written.astype(np.float64)
    X[: len(X) // 3, : grid.values.shape[1]] = X[
        len(X) // 3 : 2 * (len(X) // 3), : grid.values.shape[1]
    ]
    n, d = X.shape
    values = grid.values.copy()
    values[: n // 3] = values[n // 3 : 2 * (n // 3)]
    grid = GridRows(values, grid.pixels, grid.grid_shape, grid.axis_values, grid.dtype)
    centres = X[rng.integers(0, n, n_clusters)]  # duplicates possible: exact ties
    if n_clusters > 2:
        centres[2] = centres[1]
    w = rng.integers(0, 4, n).astype(float) if weighted else np.empty(0)
    start = data.draw(st.integers(0, n - 1))
    stop = data.draw(st.integers(start + 1, n))
    for rows in (grid, np.ascontiguousarray(X)):
        labels = np.full(n, -1, dtype=np.int32)
        sums, weight, sqnorm = np.zeros((n_clusters, d)), np.zeros(n_clusters), np.zeros(n_clusters)
        totals = kernels.ClusterSums(sums, weight, sqnorm, np.zeros(n_clusters))
        source = kernel_rows(rows)
        changed, total = kernels.scan_block(source, start, stop, w, centres, labels, totals)
        part = X[start:stop]
        sq = np.zeros((len(part), n_clusters))
        for j in range(d):  # each term added in feature order, as the contract says
            sq += (part[:, j, None] - centres[None, :, j]) ** 2
        nearest = sq.argmin(axis=1)  # first index on ties
        np.testing.assert_array_equal(labels[start:stop], nearest)
        assert (labels[:start] == -1).all() and (labels[stop:] == -1).all()
        assert changed == stop - start
        ww = np.ones(n)[start:stop] if len(w) == 0 else w[start:stop]
        best = sq[np.arange(len(part)), nearest]
        assert total == in_order_sum(best if len(w) == 0 else ww * best)
        q = np.zeros(len(part))
        for j in range(d):
            q += part[:, j] ** 2
        for c in range(n_clusters):
            members = nearest == c
            for j in range(d):
                assert sums[c, j] == in_order_sum(ww[members] * part[members, j])
            assert weight[c] == in_order_sum(ww[members])
            assert sqnorm[c] == in_order_sum(ww[members] * q[members])


@settings(max_examples=40, deadline=None)
@given(cases, st.integers(1, 14), st.booleans())
def test_kmeans_sums_are_the_label_sums_of_its_labels(case, n_clusters, weighted):
    # fit_rows takes the palette's value sums from k-means when the features begin with
    # the values: they must be label_sums' numbers bit for bit, with or without bounds
    grid, written = make_case(*case)
    n_clusters = min(n_clusters, len(written))
    w = None
    if weighted:
        w = np.random.default_rng(case[0] + 1).integers(1, 4, len(written)).astype(float)
    for rows in (grid, written):
        res = nk.kmeans(rows, n_clusters, sample_weight=w, seed=case[0])
        sums, weights = label_sums(rows, res.labels, w, n_clusters)
        np.testing.assert_array_equal(res.sums, sums)
        np.testing.assert_array_equal(res.weights, weights)
        ww = np.ones(len(written)) if w is None else w
        for c in range(n_clusters):  # and a plain oracle: sums of the member rows
            members = res.labels == c
            np.testing.assert_allclose(
                res.sums[c], (ww[members, None] * written[members]).sum(0), rtol=1e-12
            )


@settings(max_examples=40, deadline=None)
@given(cases, st.booleans())
def test_summary_with_the_colour_summary_kept_is_that_of_the_written_out_rows(case, weighted):
    # pixel_rows keeps its colour summary with the rows; kmeans' summary then reads only
    # the coordinates: every field must be the one of one pass over the written-out rows
    grid, written = make_case(*case)
    kept = GridRows(
        grid.values,
        grid.pixels,
        grid.grid_shape,
        grid.axis_values,
        grid.dtype,
        summarise(grid.values, None),
    )
    w = None
    if weighted:  # a weighted summary cannot use the unweighted colour part
        w = np.random.default_rng(case[0]).integers(1, 4, len(written)).astype(float)
    b = summarise(written, w)
    for a in (summarise(kept, w), summarise(grid, w)):
        np.testing.assert_array_equal(a.low, b.low)
        np.testing.assert_array_equal(a.high, b.high)
        np.testing.assert_array_equal(a.variance, b.variance)
        assert a.non_finite == b.non_finite and a.total_weight == b.total_weight


@settings(max_examples=60, deadline=None)
@given(cases, st.booleans(), st.booleans())
def test_summary_is_one_pass_in_row_order(case, weighted, spoiled):
    # summary_block sums each feature over the rows in order (one block here): extremes
    # of the finite values, non-finite count, and the variances from the in-order sums
    grid, written = make_case(*case)
    rng = np.random.default_rng(case[0])
    X = written.astype(np.float64)
    if spoiled and grid.values.dtype.kind == "f":
        values = grid.values.copy()
        values[rng.integers(0, len(values), 3), 0] = [np.nan, np.inf, -np.inf]
        grid = GridRows(values, grid.pixels, grid.grid_shape, grid.axis_values, grid.dtype)
        X[:, : values.shape[1]] = values
    w = rng.integers(0, 4, len(X)).astype(float) if weighted else None
    ww = np.ones(len(X)) if w is None else w
    shift = np.where(np.isfinite(X[0]), X[0], 0.0)
    total = float(ww.sum())
    for rows in (grid, written if not spoiled else X):
        s = summarise(rows, w)
        finite = np.isfinite(X)
        assert s.non_finite == int((~finite).sum())
        for j in range(X.shape[1]):
            col = X[finite[:, j], j]
            assert s.low[j] == (col.min() if len(col) else np.inf)
            assert s.high[j] == (col.max() if len(col) else -np.inf)
            t = X[:, j] - shift[j]
            with np.errstate(invalid="ignore"):
                sums = in_order_sum(ww * t)
                squares = in_order_sum(ww * t * t)
                expected = max((squares - sums * sums / total) / total, 0.0)
            np.testing.assert_array_equal(s.variance[j], expected)
