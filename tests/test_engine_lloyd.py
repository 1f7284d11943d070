"""Lloyd's iterations and the nearest-centre kernels against independent oracles: float64
brute force, scikit-learn's Lloyd from the same start, and the k-means fixed point; plus
earlier defects (explicit init with more clusters than distinct rows, float32 labels
that were not the nearest centre), progress/cancel, and results independent of threads."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from napari_kmeans import kmeans
from napari_kmeans.engine import blocks, kernels, lloyd
from napari_kmeans.engine.distances import nearest, sums_exact
from napari_kmeans.engine.grid_rows import GridRows
from napari_kmeans.progress import LLOYD, SEEDING


def brute_sqdist(X, centers):
    """(n, k) float64 squared distances by plain broadcasting."""
    return ((X.astype(np.float64)[:, None, :] - centers[None]) ** 2).sum(-1)


def assert_nearest_and_means(X, w, res):
    """Every label is a nearest centre (float64 brute force, within ties) and equals the
    engine's own ``nearest()``; every non-empty cluster's centre is the weighted mean."""
    d = brute_sqdist(X, res.centers)
    own = d[np.arange(len(X)), res.labels]
    tie = 1e-12 * (1 + np.abs(X.astype(np.float64)).max()) ** 2
    assert (own <= d.min(1) + tie).all()
    np.testing.assert_array_equal(res.labels, nearest(np.ascontiguousarray(X.T), res.centers))
    w = np.ones(len(X)) if w is None else w
    for c in np.unique(res.labels):
        members = res.labels == c
        mean = (w[members, None] * X[members].astype(np.float64)).sum(0) / w[members].sum()
        np.testing.assert_allclose(res.centers[c], mean, rtol=1e-9, atol=1e-9)


def test_explicit_init_with_more_clusters_than_distinct_rows_converges():
    # once, the empty cluster was moved onto a row already holding a centre (a mean off
    # by one ulp), labels rotated every iteration and n_iter reached max_iter.
    X = np.array([[0.1, 0.7]] * 3 + [[0.3, 0.9]] * 7)
    init = np.array([[0.1, 0.7], [0.3, 0.9], [0.2, 0.8]])
    ref = KMeans(3, init=init, n_init=1).fit(X)
    results = [kmeans(X, 3, init=init, max_iter=m) for m in (10, 11, 12, 300)]
    for res in results:
        assert res.n_iter <= ref.n_iter_
        np.testing.assert_array_equal(res.labels, results[0].labels)
        assert res.inertia == pytest.approx(ref.inertia_, abs=1e-20)
        assert_nearest_and_means(X, None, res)
    assert sorted(np.bincount(results[0].labels, minlength=3).tolist()) == [0, 3, 7]


def test_empty_cluster_takes_the_farthest_row_as_scikit_learn():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(8, 1, (50, 2))])
    init = np.array([[0.0, 0.0], [8.0, 8.0], [100.0, -100.0]])  # the third attracts nothing
    ours = kmeans(X, 3, init=init, tol=0, max_iter=300)
    ref = KMeans(3, init=init, n_init=1, tol=0, max_iter=300, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(ours.labels, ref.labels_)
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, rtol=1e-9, atol=1e-9)


def test_float32_rows_far_from_zero_get_their_nearest_centre():
    # once, skipping was decided with float64 centres and assignment with float32 ones,
    # so some returned labels were not the nearest centre by the engine's own nearest().
    for seed in range(30):
        rng = np.random.default_rng(seed)
        X = (1e5 + rng.normal(0, 1, (400, 3))).astype(np.float32)
        res = kmeans(X, 5, seed=seed)
        assert_nearest_and_means(X, None, res)


rows_f32 = st.tuples(
    st.integers(0, 2**31),  # data seed
    st.integers(20, 300),  # rows
    st.integers(1, 5),  # features
    st.integers(1, 12),  # clusters
    st.sampled_from([0.0, 1e3, 1e5, -1e6]),  # offset
    st.booleans(),  # weighted
)


@settings(max_examples=60, deadline=None)
@given(rows_f32)
def test_property_float32_labels_are_nearest_and_centres_are_means(case):
    seed, n, d, k, offset, weighted = case
    rng = np.random.default_rng(seed)
    X = (offset + rng.normal(0, 1, (n, d)) * rng.uniform(0.01, 10)).astype(np.float32)
    X[: n // 4] = X[n // 4 : 2 * (n // 4)]  # exact duplicates: ties between rows
    w = rng.integers(1, 5, n).astype(float) if weighted else None
    k = min(k, len(np.unique(X, axis=0)))
    res = kmeans(X, k, sample_weight=w, seed=seed, tol=0)
    assert_nearest_and_means(X, w, res)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**31),
    st.integers(200, 3000),
    st.integers(1, 4),
    st.integers(kernels.SCAN_ALL_UP_TO + 1, 80),
    st.sampled_from([np.float32, np.float64]),
)
def test_property_many_centres_pruned_search_and_bounds(seed, n, d, k, dtype):
    # more centres than are scanned whole: the ordered search and the bounds decide
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 12, (n, d)).astype(dtype)  # a lattice: many exact ties
    X[: n // 3] += rng.normal(0, 0.3, (n // 3, d)).astype(dtype)
    w = rng.integers(1, 4, n).astype(float)
    k = min(k, len(np.unique(X, axis=0)))
    res = kmeans(X, k, sample_weight=w, seed=seed, tol=0, n_init=1)
    assert_nearest_and_means(X, w, res)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(30, 400), st.integers(1, 4), st.integers(2, 9))
def test_property_same_start_gives_scikit_learn_lloyd(seed, n, d, k):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d))
    w = rng.uniform(0.5, 3, n)
    init = X[rng.choice(n, k, replace=False)]
    ours = kmeans(X, k, sample_weight=w, init=init, tol=0, max_iter=300)
    ref = KMeans(k, init=init, n_init=1, tol=0, max_iter=300, algorithm="lloyd").fit(
        X, sample_weight=w
    )
    np.testing.assert_array_equal(ours.labels, ref.labels_)
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, rtol=1e-8, atol=1e-8)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-8)
    assert_nearest_and_means(X, w, ours)


def test_large_k_pruned_search_equals_brute_force():
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (20000, 3)).astype(np.uint8).astype(np.float32)
    res = kmeans(X, 200, seed=0, n_init=1)
    assert_nearest_and_means(X, None, res)
    centres = rng.uniform(0, 255, (300, 3))
    np.testing.assert_array_equal(
        nearest(np.ascontiguousarray(X.T), centres), brute_sqdist(X, centres).argmin(1)
    )


def test_more_centres_than_kept_in_neighbour_lists():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 2))
    centres = rng.normal(size=(kernels.LISTED_UP_TO + 100, 2))
    np.testing.assert_array_equal(
        nearest(np.ascontiguousarray(X.T), centres), brute_sqdist(X, centres).argmin(1)
    )
    res = kmeans(X, kernels.LISTED_UP_TO + 10, seed=0, n_init=1)
    assert_nearest_and_means(X, None, res)


@pytest.mark.slow
@pytest.mark.parametrize("n_clusters", [6, 12])
def test_results_do_not_depend_on_the_number_of_threads(n_clusters):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300_000, 3)).astype(np.float32)
    w = rng.integers(1, 4, len(X)).astype(float)
    results = []
    previous = blocks.set_num_threads(1)
    try:
        for threads in (1, 2, 3):
            blocks.set_num_threads(threads)
            results.append(kmeans(X, n_clusters, sample_weight=w, seed=1))
    finally:
        blocks.set_num_threads(previous)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0].labels, other.labels)
        np.testing.assert_array_equal(results[0].centers, other.centers)
        assert results[0].inertia == other.inertia


def exact_integer_sums(X, w, labels, k):
    """Per-cluster sums of integer rows and weights in Python integers (no rounding)."""
    sums = [[0] * X.shape[1] for _ in range(k)]
    weights = [0] * k
    for row, weight, label in zip(X.tolist(), w.tolist(), labels.tolist(), strict=True):
        weights[label] += int(weight)
        for j, x in enumerate(row):
            sums[label][j] += int(weight) * int(x)
    return np.array(sums, dtype=float), np.array(weights, dtype=float)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31),
    st.integers(100, 2000),
    st.integers(1, 4),
    st.integers(lloyd.SCAN_UP_TO + 1, 60),
    st.sampled_from([np.uint8, np.int16, np.float32, np.float64]),
)
def test_property_integer_rows_sums_from_changes_alone_are_exact(seed, n, d, k, dtype):
    # integer rows and weights: Lloyd updates its sums with the rows that changed cluster
    # alone; the result must be the full recomputation's, bit for bit, and the sums the
    # exact integer sums of the labels
    rng = np.random.default_rng(seed)
    low = 0 if dtype == np.uint8 else -200
    X = rng.integers(low, 200, (n, d)).astype(dtype)
    w = rng.integers(0, 50, n).astype(float)
    w[0] = 1.0
    k = min(k, len(np.unique(X[w > 0], axis=0)))
    assert sums_exact(X, w)
    init = X[rng.choice(n, k, replace=False)].astype(float)
    init[: k // 4] += 1000.0  # far centres: emptied clusters take the farthest rows
    res = lloyd.run_lloyd(X.T, w, init, 300, 0.0)
    sums, weights = exact_integer_sums(X, w, res.labels, k)
    np.testing.assert_array_equal(res.sums, sums)
    np.testing.assert_array_equal(res.weights, weights)
    assert_nearest_and_means(X, w, res)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lloyd, "sums_exact", lambda rows, w: False)
        full = lloyd.run_lloyd(X.T, w, init, 300, 0.0)
    np.testing.assert_array_equal(res.labels, full.labels)
    np.testing.assert_array_equal(res.centers, full.centers)
    assert (res.inertia, res.n_iter) == (full.inertia, full.n_iter)


def exact_sums_oracle(rows, w):
    """Whether every value is an integer and every possible sum stays below 2**53."""
    values = [float(x) for x in np.asarray(rows, dtype=np.float64).ravel()]
    weights = [1.0] * len(rows) if w is None else [float(x) for x in w]
    if not all(math.isfinite(x) and x == int(x) for x in values + weights):
        return False
    total = sum(int(x) for x in weights)
    peak = max(abs(int(x)) for x in values)
    return max(total, total * peak, total * rows.shape[1] * peak**2) < 2**53


integer_like = st.sampled_from(
    [0.0, 1.0, -3.0, 255.0, 2.0**20, 2.0**25, 2.0**26 + 1, 0.5, -1e-9, np.nan, np.inf]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(integer_like, min_size=2, max_size=2), min_size=1, max_size=6),
    st.one_of(st.none(), st.lists(st.sampled_from([0.0, 1.0, 7.0, 2.0**40, 0.25]), max_size=6)),
)
def test_property_sums_exact_is_integers_below_two_to_the_53(values, weights):
    rows = np.array(values)
    w = None if weights is None else np.resize(np.array(weights + [1.0]), len(rows))
    assert sums_exact(rows, w) == exact_sums_oracle(rows, w)


def test_sums_exact_reads_grid_coordinates():
    values = np.zeros((6, 1), np.uint8)
    f32 = np.dtype(np.float32)
    integral = GridRows(values, None, (2, 3), (np.array([0.0, 1.0]), np.array([0, 2.0, 4])), f32)
    halves = GridRows(values, None, (2, 3), (np.array([0.0, 0.5]), np.array([0, 2.0, 4])), f32)
    assert sums_exact(integral, None)
    assert not sums_exact(halves, None)


class Cancelled(Exception):
    pass


def test_progress_reports_stages_and_cancel_stops_between_blocks():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(600_000, 3))
    seen = []
    kmeans(X[:5000], 4, seed=0, progress=lambda *a: seen.append(a))
    stages = {s for s, _, _ in seen}
    assert stages == {SEEDING, LLOYD}
    assert all(0 <= done <= total for _, done, total in seen)
    assert (SEEDING, 4, 4) in seen and (LLOYD, 300, 300) == seen[-1]

    calls = []

    def cancel_during_first_assignment(stage, done, total):
        calls.append((stage, done))
        if len(calls) == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        kmeans(X, 8, init=X[:8], progress=cancel_during_first_assignment)
    assert calls == [(LLOYD, 0), (LLOYD, 0)]  # between blocks of the first assignment
