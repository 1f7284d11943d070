"""Histogram compression and the optimal 1-D solver against np.unique and brute force."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_kmeans import kmeans
from napari_kmeans.engine import histogram as histogram_module
from napari_kmeans.engine.histogram import histogram
from napari_kmeans.engine.optimal1d import optimal_kmeans_1d


@pytest.mark.parametrize(
    ("dtype", "channels"),
    [
        (np.uint8, 1),
        (np.uint8, 3),
        (np.uint8, 4),
        (np.uint16, 1),
        (np.uint16, 3),
        (np.int8, 3),
        (np.int16, 1),
        (np.uint32, 1),
        (np.int32, 2),
        (np.int64, 1),
    ],
)
def test_histogram_matches_numpy_unique(dtype, channels):
    rng = np.random.default_rng(channels)
    info = np.iinfo(dtype)
    pool = rng.integers(info.min, info.max, (50, channels), endpoint=True, dtype=dtype)
    rows = pool[rng.integers(0, 50, 3000)]
    h = histogram(rows)
    values, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(h.values, values)
    np.testing.assert_array_equal(h.counts, counts)
    assert h.values.dtype == rows.dtype
    np.testing.assert_array_equal(h.take(np.arange(len(values))), inverse.ravel())
    per_value = rng.random((len(values), 2))
    np.testing.assert_array_equal(h.take(per_value), per_value[inverse.ravel()])


def test_histogram_rejects_floats():
    with pytest.raises(TypeError):
        histogram(np.zeros((3, 1), np.float32))


def partitions(n, k):
    """Every split of n items into k non-empty groups, once each, as labels of the items
    (all k**n label strings would give each split k! times)."""
    if n == k:
        yield tuple(range(k))
    elif 0 < k < n:
        for rest in partitions(n - 1, k):  # the last item joins one of the k groups
            yield from (rest + (c,) for c in range(k))
        for rest in partitions(n - 1, k - 1):  # or is alone in the k-th group
            yield rest + (k - 1,)


def brute_force_1d(values, weights, k):
    """Lowest inertia over every partition of the values (contiguous or not) into k groups."""
    best = np.inf
    for labels in partitions(len(values), k):
        labels = np.array(labels)
        cost = 0.0
        for c in range(k):
            v, w = values[labels == c], weights[labels == c]
            cost += (w * (v - np.average(v, weights=w)) ** 2).sum()
        best = min(best, cost)
    return best


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=7, unique=True),
    st.data(),
)
def test_optimal_1d_equals_brute_force(values, data):
    values = np.sort(np.array(values, float))
    weights = np.array(
        data.draw(st.lists(st.integers(1, 5), min_size=len(values), max_size=len(values))), float
    )
    k = data.draw(st.integers(1, len(values)))
    centers, labels, inertia = optimal_kmeans_1d(values, weights, k)
    assert inertia == pytest.approx(brute_force_1d(values, weights, k), rel=1e-9, abs=1e-9)
    assert np.all(np.diff(centers) > 0)
    assert np.all(np.diff(labels) >= 0) and len(np.unique(labels)) == k
    for c in range(k):  # centres are the weighted means of their runs
        member = labels == c
        assert centers[c] == pytest.approx(np.average(values[member], weights=weights[member]))


def test_optimal_1d_is_never_worse_than_lloyd_and_is_a_fixed_point():
    rng = np.random.default_rng(0)
    values = np.unique(np.concatenate([rng.normal(m, 3, 400) for m in (10, 30, 35, 80, 90)]))
    weights = rng.integers(1, 50, len(values)).astype(float)
    centers, labels, inertia = optimal_kmeans_1d(values, weights, 5)
    for seed in range(5):
        lloyd = kmeans(values[:, None], 5, sample_weight=weights, seed=seed, tol=0)
        assert inertia <= lloyd.inertia * (1 + 1e-12)
    nearest = np.abs(values[:, None] - centers[None]).argmin(1)
    np.testing.assert_array_equal(nearest, labels)


def test_optimal_1d_with_as_many_clusters_as_values_has_zero_inertia():
    values = np.array([1.0, 2.0, 7.0])
    centers, labels, inertia = optimal_kmeans_1d(values, np.ones(3), 3)
    assert inertia == 0 and centers.tolist() == [1.0, 2.0, 7.0] and labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("dtype", "channels", "n"), [(np.uint8, 3, 1 << 22), (np.uint16, 1, 1 << 15)]
)
def test_histogram_direct_table_path_matches_numpy_unique(dtype, channels, n):
    # enough rows for the direct table (at least a quarter of the value space)
    rng = np.random.default_rng(7)
    pool = rng.integers(0, np.iinfo(dtype).max, (5000, channels), endpoint=True, dtype=dtype)
    rows = pool[rng.integers(0, len(pool), n)]
    h = histogram(rows)
    assert h._table_size == 1 << (8 * np.dtype(dtype).itemsize * channels)
    base = np.iinfo(dtype).max + 1
    weights = base ** np.arange(channels - 1, -1, -1)
    codes, inverse, counts = np.unique(
        rows.astype(np.int64) @ weights, return_inverse=True, return_counts=True
    )
    np.testing.assert_array_equal(h.values.astype(np.int64) @ weights, codes)
    np.testing.assert_array_equal(h.counts, counts)
    np.testing.assert_array_equal(h.take(np.arange(len(codes))), inverse.ravel())


def test_histogram_counts_beyond_one_counting_pass():
    # more rows than one float32 counting pass holds exactly: counts are summed over passes
    rows = np.tile(np.array([[3], [3], [250]], np.uint8), ((1 << 24) // 3 + 2, 1))
    h = histogram(rows)
    assert h.values.ravel().tolist() == [3, 250]
    assert h.counts.tolist() == [2 * len(rows) // 3, len(rows) // 3]
    assert h.counts.sum() == len(rows) > 1 << 24


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=64),
    st.sampled_from([np.float32, np.int64, np.uint32]),
)
def test_present_counts_are_numpy_flatnonzero(counts, dtype):
    # neighbouring counts share one 8-byte word in the float32 scan: every pattern of a
    # pair (both, first, second, none), odd lengths and 8-byte tables included
    table = np.array(counts, dtype=dtype)
    np.testing.assert_array_equal(histogram_module._present(table), np.flatnonzero(table))
