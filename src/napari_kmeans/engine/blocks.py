"""The engine's one thread pool and one block runner, and how many threads it may use.

Work is split into blocks of ``BLOCK_ROWS`` rows whatever the number of threads, and the
results are returned in block order, so every reduction over them adds the same numbers in
the same order: results never depend on the thread count. NumPy and the compiled kernels
release the GIL, so blocks keep every core busy while memory stays bounded by the block size.

The caller works on the blocks too, and a block runner started inside a block (the
k-means++ starts run their own passes) has idle pool threads help it: a pool thread never
waits for a task that has not started, so nesting cannot deadlock.

Threads: the CPUs this process may run on (``os.sched_getaffinity``: taskset, SLURM) and its
cgroup CPU quota (``/sys/fs/cgroup/cpu.max``, or cgroup v1's ``cpu.cfs_quota_us``), unless
capped by :func:`set_num_threads` or the first of the environment variables
``NAPARI_KMEANS_NUM_THREADS``, ``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS`` that is set.

The pool is made on first use and forgotten in a forked child (``os.register_at_fork``): a
child inherits the pool object but none of its threads.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")

__all__ = [
    "ASSIGN_ROWS",
    "BLOCK_ROWS",
    "CHECK_EVERY",
    "LABEL_BLOCK_ROWS",
    "SILHOUETTE_BLOCK",
    "THREAD_VARIABLES",
    "available_cpus",
    "get_num_threads",
    "map_blocks",
    "map_tasks",
    "set_num_threads",
    "take_blocks",
]

# Rows per block of every pass over rows (features, seeding, Lloyd, the cross-check).
BLOCK_ROWS = 1 << 16
# Blocks run between two calls of a caller's check (progress / cancel).
CHECK_EVERY = 8
# Pixels labelled per step by a model when every pixel is its own row (progress and memory).
LABEL_BLOCK_ROWS = 1 << 18
# Rows labelled by suggest_k between two looks at the progress callback.
ASSIGN_ROWS = 1 << 19
# Distances held at once by suggest_k's silhouette (32 MiB).
SILHOUETTE_BLOCK = 1 << 22
# Environment variables that cap the threads, the first one set wins.
THREAD_VARIABLES = ("NAPARI_KMEANS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")

_CGROUP = Path("/sys/fs/cgroup")
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_threads = 0
_chosen: int | None = None  # set_num_threads; None: the environment, else the CPUs
_cpus: int | None = None  # available_cpus(), read once per process (every pass asks)


def _forget_pool() -> None:
    global _pool, _pool_threads, _lock, _cpus
    _pool, _pool_threads, _lock, _cpus = None, 0, threading.Lock(), None


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_pool)


def _cgroup_quota(root: Path = _CGROUP) -> float | None:
    """CPUs allowed by the cgroup's quota (v2 ``cpu.max``, v1 ``cpu.cfs_*``); None: no limit."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        quota_us, period_us = float(quota), float(period)
    except ValueError:  # "max": no quota
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus() -> int:
    """Return how many CPUs this process may use: its affinity, within its cgroup quota.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> 1 <= available_cpus() <= (os.cpu_count() or 1)
    True
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(cpus, 1)


def _from_environment() -> int | None:
    for name in THREAD_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            try:
                threads = int(value)
            except ValueError:
                threads = 0
            if threads < 1:
                raise ValueError(
                    f"{name}={value!r} is not allowed: use a positive whole number of threads"
                )
            return threads
    return None


def get_num_threads() -> int:
    """Return the number of threads the engine uses.

    :func:`set_num_threads`, else the first of ``NAPARI_KMEANS_NUM_THREADS``,
    ``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS`` that is set, else :func:`available_cpus`.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        When the environment variable in use is not a positive whole number.

    Examples
    --------
    >>> import napari_kmeans as nk
    >>> previous = nk.set_num_threads(2)
    >>> nk.get_num_threads()
    2
    >>> _ = nk.set_num_threads(previous)
    """
    global _cpus
    if _chosen is not None:
        return _chosen
    from_environment = _from_environment()
    if from_environment:
        return from_environment
    if _cpus is None:
        _cpus = available_cpus()
    return _cpus


def set_num_threads(n: int | None) -> int | None:
    """Set how many threads the engine uses; results are the same for any number.

    Parameters
    ----------
    n : int or None
        Threads (at least 1); None: back to the environment variables or the CPUs this
        process may use.

    Returns
    -------
    int or None
        The previous setting (None: none), to restore it later.

    Raises
    ------
    ValueError
        When ``n`` is not a positive whole number or None.

    Examples
    --------
    >>> import napari_kmeans as nk
    >>> previous = nk.set_num_threads(1)
    >>> nk.get_num_threads()
    1
    >>> nk.set_num_threads(previous)
    1
    """
    global _chosen
    if n is not None and (isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1):
        raise ValueError(f"n={n!r} is not allowed: use a positive whole number of threads or None")
    previous, _chosen = _chosen, None if n is None else int(n)
    return previous


def _executor(threads: int) -> ThreadPoolExecutor:
    """Return the pool, with ``threads - 1`` workers (the caller is the last one)."""
    global _pool, _pool_threads
    with _lock:
        if _pool is None or _pool_threads != threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max(threads - 1, 1), thread_name_prefix="nk-block")
            _pool_threads = threads
        return _pool


class _Run:
    """One call of ``map_tasks``: tasks handed out in order to whichever thread asks."""

    def __init__(self, tasks: Sequence[Callable[[], T]]):
        self.tasks = tasks
        self.results: list = [None] * len(tasks)
        self.next = 0
        self.finished = 0
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()

    def work(self) -> None:
        """Run tasks until none is left to start (or one failed)."""
        while True:
            with self.lock:
                if self.next >= len(self.tasks) or self.error is not None:
                    return
                index = self.next
                self.next += 1
            try:
                self.results[index] = self.tasks[index]()
            except BaseException as err:  # handed to the caller, which raises it
                with self.lock:
                    self.error = self.error or err
            with self.lock:
                self.finished += 1
                started = min(self.next, len(self.tasks))
                if self.finished == started and (
                    self.error is not None or started == len(self.tasks)
                ):
                    self.done.set()


def map_tasks(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Return ``[task() for task in tasks]``, run side by side on the engine's threads.

    The caller runs tasks too; an exception in a task stops the others from starting and
    is raised here.

    Parameters
    ----------
    tasks : sequence of callable
        Functions without arguments.

    Returns
    -------
    list
        Their results, in order.

    Examples
    --------
    >>> map_tasks([lambda: 1, lambda: 2])
    [1, 2]
    """
    threads = min(get_num_threads(), len(tasks))
    if threads <= 1:
        return [task() for task in tasks]
    run = _Run(tasks)
    pool = _executor(get_num_threads())
    for _ in range(threads - 1):
        pool.submit(run.work)
    run.work()
    run.done.wait()
    if run.error is not None:
        raise run.error
    return run.results


def map_blocks(
    func: Callable[[slice], T],
    n_rows: int,
    block_rows: int | None = None,
    check: Callable[[], object] | None = None,
) -> list[T]:
    """Return ``[func(slice(start, stop)) for each block of rows]``, in block order.

    With ``check``, it is called before every ``CHECK_EVERY`` blocks, so an exception
    raised in it (cancel) stops the work within a few blocks.

    Parameters
    ----------
    func : callable
        ``func(rows)`` for a ``slice`` of rows.
    n_rows : int
        Number of rows.
    block_rows : int, optional
        Rows per block (default ``BLOCK_ROWS``).
    check : callable, optional
        Called without arguments between groups of blocks; raise in it to stop.

    Returns
    -------
    list
        The results of ``func``, one per block, in block order.

    Examples
    --------
    >>> map_blocks(lambda s: s.stop - s.start, 5, block_rows=2)
    [2, 2, 1]
    """
    step = block_rows or BLOCK_ROWS
    slices = [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]
    tasks = [lambda s=s: func(s) for s in slices]
    if check is None:
        return map_tasks(tasks)
    results: list[T] = []
    for first in range(0, len(tasks), CHECK_EVERY):
        check()
        results += map_tasks(tasks[first : first + CHECK_EVERY])
    return results


def take_blocks(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Return ``table[index]`` along the first axis, gathered block by block in parallel.

    Parameters
    ----------
    table : numpy.ndarray
        ``(m, ...)`` entries.
    index : numpy.ndarray
        ``(n,)`` integer positions in ``table``.

    Returns
    -------
    numpy.ndarray
        ``(n, ...)`` new array of ``table``'s dtype.

    Examples
    --------
    >>> take_blocks(np.array([10, 20, 30]), np.array([2, 0, 2])).tolist()
    [30, 10, 30]
    """
    out = np.empty((len(index), *table.shape[1:]), dtype=table.dtype)
    map_blocks(lambda s: np.take(table, index[s], axis=0, out=out[s]), len(index))
    return out
