"""The engine's threads: how many (affinity, quota, settings), one pool, nesting, errors."""

import os
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_kmeans as nk
from napari_kmeans.engine import blocks


@pytest.fixture(autouse=True)
def _restore_setting():
    previous = blocks.set_num_threads(None)
    yield
    blocks.set_num_threads(previous)


def test_affinity_caps_the_threads(monkeypatch):
    for name in blocks.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(blocks.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(blocks, "_cgroup_quota", lambda: None)
    monkeypatch.setattr(blocks, "_cpus", None)  # read again
    assert blocks.available_cpus() == 1
    assert nk.get_num_threads() == 1


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000", 0.5)],
)
def test_cgroup_v2_quota(tmp_path, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert blocks._cgroup_quota(tmp_path) == expected


def test_cgroup_v1_quota_and_none(tmp_path):
    assert blocks._cgroup_quota(tmp_path) is None  # neither file
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert blocks._cgroup_quota(tmp_path) == 3.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert blocks._cgroup_quota(tmp_path) is None


def test_quota_rounds_up_and_caps_the_affinity(monkeypatch):
    monkeypatch.setattr(blocks.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(blocks, "_cgroup_quota", lambda: 3.5)
    assert blocks.available_cpus() == 4
    monkeypatch.setattr(blocks, "_cgroup_quota", lambda: 0.2)
    assert blocks.available_cpus() == 1


def test_environment_variables_in_order(monkeypatch):
    for name in blocks.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert nk.get_num_threads() == 3
    monkeypatch.setenv("NUMBA_NUM_THREADS", "5")
    assert nk.get_num_threads() == 5
    monkeypatch.setenv("NAPARI_KMEANS_NUM_THREADS", "2")
    assert nk.get_num_threads() == 2
    nk.set_num_threads(7)  # the function wins over the environment
    assert nk.get_num_threads() == 7
    nk.set_num_threads(None)
    assert nk.get_num_threads() == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_environment_variable_is_named(monkeypatch, value):
    monkeypatch.setenv("NAPARI_KMEANS_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"NAPARI_KMEANS_NUM_THREADS='{value}'"):
        nk.get_num_threads()


@pytest.mark.parametrize("value", [0, -2, 1.5, "2", True])
def test_bad_setting_is_refused(value):
    with pytest.raises(ValueError, match="n="):
        nk.set_num_threads(value)


def test_set_num_threads_returns_the_previous_setting():
    assert nk.set_num_threads(2) is None
    assert nk.set_num_threads(np.int64(3)) == 2
    assert nk.get_num_threads() == 3


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_nested_runs_finish_in_order(threads):
    nk.set_num_threads(threads)
    used = set()

    def inner(part):
        used.add(threading.get_ident())
        return part.stop - part.start

    def outer(index):
        return index, blocks.map_blocks(inner, 10, block_rows=3)

    results = blocks.map_tasks([lambda i=i: outer(i) for i in range(5)])
    assert results == [(i, [3, 3, 3, 1]) for i in range(5)]
    assert len(used) <= threads


def test_an_error_in_a_block_propagates_and_the_pool_still_works():
    nk.set_num_threads(2)

    def block(part):
        if part.start == 6:
            raise ZeroDivisionError("block 6")
        return part.start

    with pytest.raises(ZeroDivisionError, match="block 6"):
        blocks.map_blocks(block, 30, block_rows=3)
    assert blocks.map_blocks(lambda part: part.start, 9, block_rows=3) == [0, 3, 6]


def test_check_stops_between_groups_of_blocks():
    nk.set_num_threads(2)
    seen = []

    def check():
        if len(seen) >= blocks.CHECK_EVERY:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        blocks.map_blocks(seen.append, 100, block_rows=1, check=check)
    assert len(seen) == blocks.CHECK_EVERY


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 3000),
    k=st.integers(1, 12),
    integers=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_kmeans_is_the_same_on_1_2_3_threads(n, k, integers, seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 6, (n, 3)).astype(np.float64) if integers else rng.normal(size=(n, 3))
    k = min(k, len(np.unique(X, axis=0)))
    results = []
    for threads in (1, 2, 3):
        nk.set_num_threads(threads)
        # tiny blocks: many blocks even on small inputs
        previous, blocks.BLOCK_ROWS = blocks.BLOCK_ROWS, 97
        try:
            results.append(nk.kmeans(X, k, seed=seed, n_init=2))
        finally:
            blocks.BLOCK_ROWS = previous
    for other in results[1:]:
        np.testing.assert_array_equal(results[0].labels, other.labels)
        np.testing.assert_array_equal(results[0].centers, other.centers)
        assert results[0].inertia == other.inertia


def test_pool_is_sized_by_the_setting():
    nk.set_num_threads(3)
    blocks.map_blocks(lambda part: None, 10, block_rows=1)
    assert blocks._pool_threads == 3
    nk.set_num_threads(1)
    names = []
    blocks.map_blocks(lambda part: names.append(threading.current_thread().name), 4, block_rows=1)
    assert set(names) == {threading.current_thread().name}  # one thread: the caller's


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_the_default_follows_the_affinity_of_this_process(monkeypatch):
    for name in blocks.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert nk.get_num_threads() <= len(os.sched_getaffinity(0))
