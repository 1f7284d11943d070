"""The k-means engine against independent oracles: brute force, scikit-learn's Lloyd from the
same start, repeated rows for weights, and the k-means fixed-point conditions."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from napari_kmeans import kmeans


def brute_force_optimum(X, k, w=None):
    """Lowest inertia over every labeling of the rows into k non-empty clusters."""
    w = np.ones(len(X)) if w is None else w
    best = np.inf
    for labels in itertools.product(range(k), repeat=len(X)):
        labels = np.array(labels)
        if len(set(labels.tolist())) < k:
            continue
        cost = 0.0
        for c in range(k):
            rows, wc = X[labels == c], w[labels == c]
            centre = (wc[:, None] * rows).sum(0) / wc.sum()
            cost += (wc * ((rows - centre) ** 2).sum(1)).sum()
        best = min(best, cost)
    return best


def assert_fixed_point(X, w, result):
    """Every label is a nearest centre and every centre the weighted mean of its members."""
    X = X.astype(np.float64)
    w = np.ones(len(X)) if w is None else w
    d = ((X[:, None, :] - result.centers[None]) ** 2).sum(-1)
    own = d[np.arange(len(X)), result.labels]
    np.testing.assert_allclose(own, d.min(1), rtol=1e-9, atol=1e-9)
    for c in range(len(result.centers)):
        members = result.labels == c
        assert members.any(), f"cluster {c} is empty"
        mean = (w[members, None] * X[members]).sum(0) / w[members].sum()
        np.testing.assert_allclose(result.centers[c], mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(result.inertia, (w * own).sum(), rtol=1e-9, atol=1e-9)


def blobs(rng, n_per, centres, spread):
    X = np.concatenate([c + rng.normal(0, spread, (n_per, len(c))) for c in centres])
    truth = np.repeat(np.arange(len(centres)), n_per)
    return X, truth


@pytest.mark.parametrize("seed", range(6))
def test_tiny_inputs_reach_the_brute_force_optimum_with_restarts(seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 20, (7, 2)).astype(float)
    k = 2 + seed % 2
    res = kmeans(X, k, n_init=10, tol=0, seed=seed)
    assert res.inertia == pytest.approx(brute_force_optimum(X, k), rel=1e-9, abs=1e-9)
    assert_fixed_point(X, None, res)


@pytest.mark.parametrize("seed", range(3))
def test_every_run_is_at_or_above_the_optimum_and_a_fixed_point(seed):
    rng = np.random.default_rng(100 + seed)
    X = rng.normal(size=(8, 2))
    w = rng.integers(1, 4, 8).astype(float)
    res = kmeans(X, 3, sample_weight=w, tol=0, seed=seed)
    assert res.inertia >= brute_force_optimum(X, 3, w) - 1e-9
    assert_fixed_point(X, w, res)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_start_gives_scikit_learn_lloyd_result(dtype):
    rng = np.random.default_rng(1)
    X, _ = blobs(rng, 300, [(0, 0, 0), (4, 4, 0), (0, 4, 4), (3, 0, 3)], 1.5)
    X = X.astype(dtype)
    w = rng.integers(1, 5, len(X)).astype(float)
    init = X[[0, 1, 2, 3]].astype(np.float64)  # deliberately poor: all from the first blob
    ours = kmeans(X, 4, sample_weight=w, init=init, tol=0, max_iter=500)
    ref = KMeans(4, init=init, n_init=1, tol=0, max_iter=500, algorithm="lloyd").fit(
        X.astype(np.float64), sample_weight=w
    )
    np.testing.assert_array_equal(ours.labels, ref.labels_)
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-5)


def test_weights_act_as_repeated_rows():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    w = rng.integers(1, 6, 60)
    init = X[:5]
    weighted = kmeans(X, 5, sample_weight=w, init=init, tol=0)
    repeated = kmeans(np.repeat(X, w, axis=0), 5, init=init, tol=0)
    np.testing.assert_allclose(weighted.centers, repeated.centers, rtol=1e-10)
    np.testing.assert_array_equal(np.repeat(weighted.labels, w), repeated.labels)
    assert weighted.inertia == pytest.approx(repeated.inertia, rel=1e-10)
    assert weighted.n_iter == repeated.n_iter


def test_compressed_rows_run_the_same_iterations_as_every_row():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 6, (5000, 3)).astype(float)  # few distinct values, many repeats
    distinct, inverse, counts = np.unique(pixels, axis=0, return_inverse=True, return_counts=True)
    init = distinct[[0, 50, 100, 150, 200]]
    seen_full, seen_compressed = [], []
    full = kmeans(pixels, 5, init=init, tol=0, callback=lambda i, e: seen_full.append(e))
    compressed = kmeans(
        distinct,
        5,
        sample_weight=counts,
        init=init,
        tol=0,
        callback=lambda i, e: seen_compressed.append(e),
    )
    np.testing.assert_allclose(seen_compressed, seen_full, rtol=1e-12)
    np.testing.assert_allclose(compressed.centers, full.centers, rtol=1e-12)
    np.testing.assert_array_equal(compressed.labels[inverse.ravel()], full.labels)


def test_inertia_never_increases_across_iterations():
    rng = np.random.default_rng(4)
    X, _ = blobs(rng, 500, rng.normal(0, 3, (6, 2)), 1.0)
    history = []
    kmeans(X, 6, tol=0, seed=0, n_init=1, callback=lambda i, e: history.append((i, e)))
    iterations, inertias = zip(*history, strict=True)
    assert list(iterations) == list(range(1, len(history) + 1))
    assert len(history) > 2
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(inertias))


def test_recovers_well_separated_blobs():
    rng = np.random.default_rng(5)
    X, truth = blobs(rng, 400, [(0, 0), (20, 0), (0, 20), (20, 20), (10, 10)], 1.0)
    res = kmeans(X, 5, seed=0)
    # a perfect recovery maps each true blob to exactly one cluster
    pairs = set(zip(truth.tolist(), res.labels.tolist(), strict=True))
    assert len(pairs) == 5


def test_same_seed_same_result_and_generator_accepted():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2000, 3)).astype(np.float32)
    a = kmeans(X, 7, seed=42, n_init=3)
    b = kmeans(X, 7, seed=42, n_init=3)
    c = kmeans(X, 7, seed=np.random.default_rng(42), n_init=3)
    for other in (b, c):
        np.testing.assert_array_equal(a.labels, other.labels)
        np.testing.assert_array_equal(a.centers, other.centers)


def test_restarts_keep_the_lowest_inertia():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 2))
    best = kmeans(X, 9, seed=0, n_init=6)
    shared = np.random.default_rng(0)  # restarts draw from one stream, one run after another
    runs = [kmeans(X, 9, seed=shared, n_init=1).inertia for _ in range(6)]
    assert best.inertia == pytest.approx(min(runs), rel=1e-12)
    assert max(runs) > min(runs)  # the restarts really differ
    # "auto" on this few rows is three whole runs from the same stream
    auto = kmeans(X, 9, seed=0)
    assert auto.inertia == pytest.approx(min(runs[:3]), rel=1e-12)


def test_empty_cluster_is_reseeded_not_nan():
    X = np.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5], [9, 0], [9.2, 0]])
    init = np.array([[0.0, 0], [5, 5], [100.0, 100.0]])  # the third centre attracts nothing
    res = kmeans(X, 3, init=init, tol=0)
    assert np.isfinite(res.centers).all()
    assert sorted(np.bincount(res.labels, minlength=3).tolist()) == [2, 2, 2]
    assert_fixed_point(X, None, res)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_clusters": 0}, "n_clusters=0"),
        ({"n_clusters": 2.5}, "n_clusters=2.5"),
        ({"n_clusters": 4}, "3 distinct rows"),
        ({"max_iter": 0}, "max_iter=0"),
        ({"tol": -1.0}, "tol=-1.0"),
        ({"n_init": 0}, "n_init=0"),
        ({"init": "random"}, "init='random'"),
        ({"init": np.zeros((3, 5))}, "init has shape (3, 5)"),
        ({"init": np.zeros((2, 2)), "n_init": 3}, "n_init=3"),
        ({"sample_weight": [1, 1]}, "sample_weight has shape (2,)"),
        ({"sample_weight": [1, -1, 1, 1, 1, 1]}, "sample_weight"),
        ({"seed": -3}, "seed=-3"),
        ({"seed": "abc"}, "seed='abc'"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    X = np.array([[0.0, 0], [0, 0], [1, 1], [1, 1], [2, 2], [2, 2]])
    args = {"n_clusters": 2, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kmeans(X, **args)


@pytest.mark.parametrize(
    "X", [np.array([[np.nan, 1.0], [0, 0]]), np.array([[np.inf, 1.0], [0, 0]]), np.zeros((0, 2))]
)
def test_bad_rows_are_rejected(X):
    with pytest.raises(ValueError, match="X"):
        kmeans(X, 1)


def test_input_is_not_modified():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(500, 3)).astype(np.float32)
    w = rng.random(500)
    X0, w0 = X.copy(), w.copy()
    kmeans(X, 4, sample_weight=w, seed=0)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(w, w0)


rows = st.integers(8, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.lists(st.integers(0, 9), min_size=2, max_size=2), min_size=n, max_size=n),
        st.lists(st.integers(1, 4), min_size=n, max_size=n),
        st.integers(1, 4),
        st.integers(0, 2**31),
    )
)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_property_fixed_point_and_weights(case):
    X, w, k, seed = case
    X, w = np.array(X, float), np.array(w, float)
    n_distinct = len(np.unique(X, axis=0))
    if k > n_distinct:
        with pytest.raises(ValueError, match=f"{n_distinct} distinct rows"):
            kmeans(X, k, sample_weight=w, seed=seed)
        return
    res = kmeans(X, k, sample_weight=w, tol=0, seed=seed, max_iter=1000)
    assert_fixed_point(X, w, res)
    repeated = kmeans(np.repeat(X, w.astype(int), axis=0), k, init=res.centers, tol=0)
    np.testing.assert_allclose(repeated.centers, res.centers, rtol=1e-9, atol=1e-9)
    assert repeated.inertia == pytest.approx(res.inertia, rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(rows)
def test_property_inertia_monotone_and_seed_reproducible(case):
    X, w, k, seed = case
    X, w = np.array(X, float), np.array(w, float)
    if k > len(np.unique(X, axis=0)):
        return
    history = []
    a = kmeans(
        X, k, sample_weight=w, tol=0, seed=seed, n_init=1, callback=lambda i, e: history.append(e)
    )
    assert all(b <= a_ * (1 + 1e-12) + 1e-12 for a_, b in itertools.pairwise(history))
    b = kmeans(X, k, sample_weight=w, tol=0, seed=seed, n_init=1)
    np.testing.assert_array_equal(a.labels, b.labels)
