"""Run a function over row blocks of a large array on a small thread pool.

NumPy releases the GIL inside its kernels, so blocks of a few tens of thousands of rows keep
every core busy while memory stays bounded by the block size, not by the image.

The pool is made on first use and forgotten in a forked child (``os.register_at_fork``): a
child inherits the pool object but none of its threads, so submitting to it would wait
forever. The child makes its own pool when it first needs one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")

BLOCK_ROWS = 1 << 16
_pool: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="nk-block")
    return _pool


def map_blocks(func: Callable[[slice], T], n_rows: int, block_rows: int = BLOCK_ROWS) -> list[T]:
    """Return ``[func(slice(start, stop)) for each block]`` in block order.

    Blocks run in parallel when there is more than one; results keep their order, so any
    reduction over them is deterministic.

    Parameters
    ----------
    func : callable
        ``func(rows)`` for a ``slice`` of rows.
    n_rows : int
        Number of rows.
    block_rows : int
        Rows per block.

    Returns
    -------
    list
        The results of ``func``, one per block, in block order.

    Examples
    --------
    >>> map_blocks(lambda s: s.stop - s.start, 5, block_rows=2)
    [2, 2, 1]
    """
    slices = [slice(i, min(i + block_rows, n_rows)) for i in range(0, n_rows, block_rows)]
    if len(slices) <= 1:
        return [func(s) for s in slices]
    return list(_executor().map(func, slices))


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
