"""The exact 1-D optimum against brute force and kmeans1d; progress, cancel and size limits."""

import itertools
import time

import kmeans1d
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_kmeans as nk
from napari_kmeans.engine import optimal1d
from napari_kmeans.engine.optimal1d import optimal_kmeans_1d
from napari_kmeans.progress import OPTIMAL


def brute_force(values, weights, k):
    """Lowest inertia over every split of the sorted values into k runs (all partitions of
    n values would also do, but runs are enough in 1-D and let n reach 12)."""
    n, best = len(values), np.inf
    for cuts in itertools.combinations(range(1, n), k - 1):
        bounds = (0, *cuts, n)
        cost = 0.0
        for a, b in itertools.pairwise(bounds):
            v, w = values[a:b], weights[a:b]
            cost += (w * (v - np.average(v, weights=w)) ** 2).sum()
        best = min(best, cost)
    return best


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=12, unique=True),
    st.data(),
)
def test_equals_brute_force_over_all_splits(values, data):
    values = np.sort(np.array(values))
    n = len(values)
    weights = np.array(data.draw(st.lists(st.integers(1, 9), min_size=n, max_size=n)), float)
    k = data.draw(st.integers(1, n))
    centers, labels, inertia = optimal_kmeans_1d(values, weights, k)
    expected = brute_force(values, weights, k)
    assert inertia == pytest.approx(expected, rel=1e-9, abs=1e-9 * (1 + np.abs(values).max()))
    assert np.all(np.diff(labels) >= 0) and len(np.unique(labels)) == k


@pytest.mark.parametrize(("n", "k", "seed"), [(5000, 6, 0), (3000, 17, 1), (800, 150, 2)])
def test_equals_kmeans1d(n, k, seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(m, 1 + m / 10, n // 5) for m in (0, 5, 9, 30, 31)])
    counts = rng.integers(1, 4, len(x))
    values, inverse = np.unique(x, return_inverse=True)
    weights = np.bincount(inverse.ravel(), counts).astype(float)
    _, _, inertia = optimal_kmeans_1d(values, weights, k)
    labels, centers = kmeans1d.cluster(np.repeat(x, counts), k)  # unweighted: repeat rows
    c = np.asarray(centers)
    reference = float(((np.repeat(x, counts) - c[np.asarray(labels)]) ** 2).sum())
    assert inertia == pytest.approx(reference, rel=1e-9)


def test_float_grey_segment_equals_kmeans1d_and_is_a_fixed_point():
    img = np.random.default_rng(3).gamma(2.0, 30.0, (120, 150)).astype(np.float32)
    seg = nk.segment(img, n_clusters=5, method="optimal", seed=0)
    labels, centers = kmeans1d.cluster(img.ravel(), 5)
    x = img.ravel().astype(np.float64)
    reference = float(((x - np.asarray(centers)[np.asarray(labels)]) ** 2).sum())
    assert seg.inertia == pytest.approx(reference, rel=1e-9)


def test_progress_reaches_the_end_in_order():
    seen = []
    values = np.arange(2000.0)
    optimal_kmeans_1d(values, np.ones(2000), 5, progress=lambda *a: seen.append(a))
    assert seen[0] == (OPTIMAL, 0, 4) and seen[-1] == (OPTIMAL, 4, 4)
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(seen))


class Cancelled(Exception):
    pass


def test_progress_raising_stops_the_work_within_a_fraction_of_a_second():
    values = np.sort(np.random.default_rng(4).random(1_500_000))
    weights = np.ones(len(values))
    optimal_kmeans_1d(values[:100], weights[:100], 3)  # compiled (or loaded) before timing
    started = time.perf_counter()
    optimal_kmeans_1d(values, weights, 4)
    whole = time.perf_counter() - started
    calls = []

    def cancel_after_first(stage, done, total):
        calls.append(time.perf_counter())
        if len(calls) == 2:
            raise Cancelled

    started = time.perf_counter()
    with pytest.raises(Cancelled):
        optimal_kmeans_1d(values, weights, 4, progress=cancel_after_first)
    assert time.perf_counter() - started < whole
    assert calls[1] - calls[0] < 0.5  # looked at again after a fraction of a second


def test_too_many_split_points_is_refused_before_any_work(monkeypatch):
    monkeypatch.setattr(optimal1d, "MAX_SPLIT_CELLS", 1000)
    with pytest.raises(ValueError, match="n_clusters=50 on 100 distinct values"):
        optimal_kmeans_1d(np.arange(100.0), np.ones(100), 50)
    optimal_kmeans_1d(np.arange(100.0), np.ones(100), 99)  # 98 × 2 split points: fine


def test_as_many_clusters_as_uint16_values_is_fast():
    img = np.random.default_rng(0).permutation(np.arange(1 << 16)).astype(np.uint16)
    values, counts = np.unique(img, return_counts=True)
    started = time.perf_counter()
    centers, labels, inertia = optimal_kmeans_1d(values, counts.astype(float), 65535)
    assert time.perf_counter() - started < 10
    assert inertia == 0.5 and len(centers) == 65535


def test_segment_reports_the_optimal_stage_and_stops_when_progress_raises():
    img = np.random.default_rng(7).random((300, 400)).astype(np.float32)
    seen = []
    nk.segment(img, n_clusters=4, method="optimal", progress=lambda *a: seen.append(a))
    assert (OPTIMAL, 3, 3) in seen

    def cancel(stage, done, total):
        if stage == OPTIMAL:
            raise Cancelled

    with pytest.raises(Cancelled):
        nk.segment(img, n_clusters=4, method="optimal", progress=cancel)
