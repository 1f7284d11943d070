"""The exact 1-D optimum against brute force and kmeans1d; progress, cancel and size limits."""

import itertools
import time
import tracemalloc

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


def test_progress_raising_stops_the_work_within_a_fraction_of_a_second(monkeypatch):
    # Counted in work, not seconds: with every look reported, the callback is looked at
    # again after a budget of cost evaluations (~5 ms), long before the first of the three
    # layers of 1.5 M values is done, and its exception ends the work there.
    monkeypatch.setattr(optimal1d, "_REPORT_EVERY", 0.0)
    values = np.sort(np.random.default_rng(4).random(1_500_000))
    calls = []

    def cancel_at_the_third_look(stage, done, total):
        calls.append((stage, done, total))
        if len(calls) == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        optimal_kmeans_1d(values, np.ones(len(values)), 4, progress=cancel_at_the_third_look)
    assert calls == [(OPTIMAL, 0, 3)] * 3


@pytest.fixture
def halving(monkeypatch):
    """Keep no split points: every solution is found by halving at the middle layer."""
    monkeypatch.setattr(optimal1d, "SPLITS_PER_VALUE", 0)
    monkeypatch.setattr(optimal1d, "MIN_SPLITS", 0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=11, unique=True),
    st.data(),
)
def test_halving_at_the_middle_layer_equals_brute_force(values, data):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(optimal1d, "SPLITS_PER_VALUE", 0)
        patch.setattr(optimal1d, "MIN_SPLITS", 0)
        values = np.sort(np.array(values))
        n = len(values)
        weights = np.array(data.draw(st.lists(st.integers(1, 9), min_size=n, max_size=n)), float)
        k = data.draw(st.integers(1, n))
        _, labels, inertia = optimal_kmeans_1d(values, weights, k)
    expected = brute_force(values, weights, k)
    assert inertia == pytest.approx(expected, rel=1e-9, abs=1e-9 * (1 + np.abs(values).max()))
    assert np.all(np.diff(labels) >= 0) and len(np.unique(labels)) == k


@pytest.mark.parametrize(("n", "k"), [(3000, 7), (2000, 64), (700, 350)])
def test_halving_equals_kept_split_points_and_kmeans1d(n, k, halving):
    x = np.random.default_rng(k).gamma(2.0, 10.0, n)
    values = np.unique(x)
    _, _, inertia = optimal_kmeans_1d(values, np.ones(len(values)), k)
    labels, centers = kmeans1d.cluster(values, k)
    reference = float(((values - np.asarray(centers)[np.asarray(labels)]) ** 2).sum())
    assert inertia == pytest.approx(reference, rel=1e-9)


def test_progress_of_the_halving_path_reaches_its_total(halving):
    seen = []
    optimal_kmeans_1d(np.arange(500.0), np.ones(500), 9, progress=lambda *a: seen.append(a))
    total = seen[0][2]
    assert total == 8 + (3 + 1 + 1) + (4 + 1 + (2 + 1))  # 9 runs, halves of 4 and 5 runs...
    assert seen[-1] == (OPTIMAL, total, total)


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


def test_minutes_of_work_are_refused_before_any_work():
    values = np.arange(65536.0)
    seen = []
    with pytest.raises(ValueError, match="n_clusters=30000 on 65,536 distinct values"):
        optimal_kmeans_1d(values, np.ones(len(values)), 30000, progress=lambda *a: seen.append(a))
    assert seen == []  # not even the first report of the work's start


@pytest.mark.slow
def test_memory_stays_linear_in_n_for_many_clusters():
    values = np.sort(np.random.default_rng(8).random(20000))
    tracemalloc.start()
    try:
        optimal_kmeans_1d(values, np.ones(len(values)), 2000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * len(values)  # split points of every layer would be 4 * 2000 * 18,001
