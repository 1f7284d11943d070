"""Nearest centres and distances to them, block by block over rows.

Features arrive as ``(d, n)`` columns (any layout; ``columns.T`` are the rows the compiled
kernels of ``kernels`` read). Distances are float64 whatever the features' dtype, and the
nearest centre is found by an exact pruned search (see ``kernels``), lowest index on ties:
the same arithmetic labels the rows in Lloyd's iterations and any later image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from . import kernels
from .blocks import BLOCK_ROWS, map_blocks

T = TypeVar("T")

# Blocks run between two calls of a caller's check (progress / cancel) in ``run_blocks``.
CHECK_EVERY = 8


def as_rows(columns: np.ndarray) -> np.ndarray:
    """``(n, d)`` float32/float64 rows of ``(d, n)`` columns, without a copy when possible."""
    rows = columns.T
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    if not (rows.flags.c_contiguous or rows.flags.f_contiguous):
        rows = np.ascontiguousarray(rows)
    return rows


def rounding_slack(rows: np.ndarray, centers: np.ndarray) -> float:
    """Absolute widening of distance bounds: far above float64 rounding at this magnitude.

    Examples
    --------
    >>> rounding_slack(np.array([[3.0], [-4.0]]), np.array([[1.0]]))
    4e-12
    """
    magnitude = max(float(np.abs(centers).max(initial=0.0)), 0.0)
    if rows.size:
        magnitude = max(magnitude, abs(float(rows.max())), abs(float(rows.min())))
    return 1e-12 * magnitude


def run_blocks(
    func: Callable[[int, int], T], n_rows: int, check: Callable[[], object] | None = None
) -> list[T]:
    """``[func(start, stop) for each block of rows]`` in block order, on the block threads.

    With ``check``, it is called before every ``CHECK_EVERY`` blocks, so an exception raised
    in it (cancel) stops the work within a few blocks.

    Examples
    --------
    >>> run_blocks(lambda start, stop: stop - start, 5)
    [5]
    """
    step = n_rows if check is None else CHECK_EVERY * BLOCK_ROWS
    results = []
    for first in range(0, n_rows, max(step, 1)):
        if check is not None:
            check()
        size = min(step, n_rows - first)
        results += map_blocks(
            lambda s, first=first: func(first + s.start, first + s.stop), size, BLOCK_ROWS
        )
    return results


def nearest_with_sqdist(
    rows: np.ndarray, centers: np.ndarray, check: Callable[[], object] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (int32, lowest index on ties) of every row and the squared distance."""
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    slack = rounding_slack(rows, centers)
    unlimited = np.full(len(centers), np.inf)
    order, low_gaps, count, _ = kernels.centre_geometry(centers, slack, unlimited)
    n = rows.shape[0]
    labels = np.empty(n, dtype=np.int32)
    best_sq = np.empty(n)
    run_blocks(
        lambda start, stop: kernels.nearest_block(
            rows, start, stop, centers, order, low_gaps, count, unlimited, slack, labels, best_sq
        ),
        n,
        check,
    )
    return labels, best_sq


def nearest(columns: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Nearest centre of every row of ``(d, n)`` columns (lowest index on ties).

    Examples
    --------
    >>> nearest(np.array([[0.0, 9.0, 5.0]]), np.array([[1.0], [10.0], [0.0]])).tolist()
    [2, 1, 0]
    """
    return nearest_with_sqdist(as_rows(columns), centers)[0]


def own_sqdist(columns: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """float64 squared distance of every row to its own centre ``centers[labels]``.

    Examples
    --------
    >>> own_sqdist(np.array([[0.0, 3.0]]), np.array([0, 0]), np.array([[1.0]])).tolist()
    [1.0, 4.0]
    """
    rows = as_rows(columns)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    out = np.empty(rows.shape[0])
    run_blocks(
        lambda start, stop: kernels.own_sqdist_block(rows, start, stop, labels, centers, out),
        rows.shape[0],
    )
    return out


def weights_or_empty(sample_weight: np.ndarray | None) -> np.ndarray:
    """float64 weights, or an empty array standing for "every weight is 1" in the kernels."""
    if sample_weight is None:
        return np.empty(0)
    return np.ascontiguousarray(sample_weight, dtype=np.float64)


def exact_inertia(
    columns: np.ndarray, labels: np.ndarray, centers: np.ndarray, sample_weight: np.ndarray | None
) -> float:
    """Weighted sum of squared distances to the assigned centres, computed in float64.

    Examples
    --------
    >>> exact_inertia(np.array([[0.0, 2.0]]), np.array([0, 0]), np.array([[1.0]]), None)
    2.0
    """
    rows = as_rows(columns)
    w = weights_or_empty(sample_weight)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    parts = run_blocks(
        lambda start, stop: kernels.inertia_block(rows, start, stop, w, labels, centers),
        rows.shape[0],
    )
    return float(sum(parts))
