"""Where k-means starts: ``init`` becomes starting centres in one place (engine.init)."""

import importlib

import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans.engine import init as init_
from napari_kmeans.engine.lloyd import run_lloyd


def test_kmeans_lives_in_its_own_module_and_is_re_exported():
    assert nk.kmeans is importlib.import_module("napari_kmeans.engine.kmeans").kmeans
    assert nk.kmeans.__module__ == "napari_kmeans.engine.kmeans"


def test_explicit_init_runs_lloyd_from_exactly_that_start():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    start = X[:4].copy()
    res = nk.kmeans(X, 4, init=start, tol=0)
    ref = run_lloyd(np.ascontiguousarray(X.T), None, start, 300, 0.0)
    np.testing.assert_array_equal(res.labels, ref.labels)
    np.testing.assert_array_equal(res.centers, ref.centers)


def test_kmeans_plusplus_start_is_the_one_kmeans_uses():
    """Same generator state: kmeans' first run starts where init.start says."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 3))
    centers = init_.start(None, np.ascontiguousarray(X.T), None, 5, 1, 300, 0.0, make(7))
    res = nk.kmeans(X, 5, n_init=1, tol=0, seed=make(7))
    ref = run_lloyd(np.ascontiguousarray(X.T), None, centers, 300, 0.0)
    np.testing.assert_array_equal(res.labels, ref.labels)


def make(seed):
    return np.random.default_rng(seed)


def test_warm_start_on_a_sample_for_many_rows():
    n = init_.SAMPLE_ABOVE + 1
    assert init_.count_runs("auto", n, False) == (1, init_.AUTO_STARTS)
    assert init_.count_runs("auto", n - 1, False) == (init_.AUTO_STARTS, 1)
    assert init_.count_runs("auto", n, True) == (1, 1)


def test_indistinguishable_rows_do_not_claim_too_few_distinct_rows():
    # four distinct rows, but three sit so close to 0 next to 1.0 that their squared float64
    # distances underflow: the message must not say "more than the 4 distinct rows"
    X = np.array([[1.0], [0.0], [1e-170], [2e-170]])
    with pytest.raises(ValueError, match="4 distinct rows, but fewer than 4") as err:
        nk.kmeans(X, 4, seed=0)
    assert "use at most 4" not in str(err.value)
    # float32 rows are compared in float64: no float32 row is that close to another
    tiny = nk.kmeans(np.array([[1.0], [0.0], [1e-30], [2e-30]], np.float32), 4, seed=0)
    assert sorted(tiny.labels.tolist()) == [0, 1, 2, 3]


def test_a_seeding_of_minutes_is_refused_before_any_work():
    # k = 65,535 on the 65,536 values of a uint16 image: ~6e10 distance terms
    img = np.random.default_rng(0).permutation(np.arange(1 << 16)).astype(np.uint16)
    seen = []
    with pytest.raises(ValueError, match="n_clusters=65535 is too many for k-means"):
        nk.segment(img.reshape(256, 256), 65535, seed=0, progress=lambda *a: seen.append(a))
    assert seen == []  # no stage had started
    nk.kmeans(np.arange(4000.0)[:, None], 500, seed=0)  # large but reasonable: allowed


@pytest.mark.parametrize("weighted", [False, True])
def test_sample_starts_side_by_side_give_the_result_of_one_after_another(weighted):
    # without a callback the sample's starts (seeding from draws taken ahead, then Lloyd)
    # run side by side; with one they run in turn (callbacks in order): the same
    # seedings, runs and result either way
    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(c, 1.0, (50_000, 3)) for c in (0, 4, 9)])
    assert len(X) > init_.SAMPLE_ABOVE
    w = rng.integers(1, 4, len(X)).astype(float) if weighted else None
    iterations = []
    quiet = nk.kmeans(X, 6, sample_weight=w, seed=5)
    heard = nk.kmeans(X, 6, sample_weight=w, seed=5, callback=lambda i, e: iterations.append(i))
    np.testing.assert_array_equal(quiet.labels, heard.labels)
    np.testing.assert_array_equal(quiet.centers, heard.centers)
    assert quiet.inertia == heard.inertia and quiet.n_iter == heard.n_iter
    # three sample runs then the run on every row, each counting from 1, in turn
    assert [i for i in iterations if i == 1] == [1] * (init_.AUTO_STARTS + 1)
    assert all(b in (a + 1, 1) for a, b in zip(iterations, iterations[1:], strict=False))
