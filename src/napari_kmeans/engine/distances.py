"""Nearest centres and distances to them, block by block over rows.

Features arrive as ``(d, n)`` columns (any layout; ``columns.T`` are the rows the compiled
kernels of ``kernels`` read) or as :class:`~.grid_rows.GridRows`, which stand for their rows.
Distances are float64 whatever the features' dtype, and the nearest centre is found by an
exact pruned search (see ``kernels``), lowest index on ties: the same arithmetic labels the
rows in Lloyd's iterations and any later image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..progress import ProgressCallback
from .blocks import map_blocks
from .compiled import kernels, prepare
from .grid_rows import GridRows, kernel_rows, take


def as_rows(columns: np.ndarray | GridRows) -> np.ndarray | GridRows:
    """Return ``(n, d)`` float32/float64 rows of ``(d, n)`` columns, copied only if needed.

    Parameters
    ----------
    columns : numpy.ndarray or GridRows
        ``(d, n)`` feature columns (any layout), or grid rows (returned as they are).

    Returns
    -------
    numpy.ndarray or GridRows
        ``(n, d)`` rows, C- or F-contiguous; other dtypes become float64.

    Examples
    --------
    >>> rows = as_rows(np.array([[1, 2, 3]], np.uint8))
    >>> rows.shape, rows.dtype
    ((3, 1), dtype('float64'))
    """
    if isinstance(columns, GridRows):
        return columns
    rows = columns.T
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    if not (rows.flags.c_contiguous or rows.flags.f_contiguous):
        rows = np.ascontiguousarray(rows)
    return rows


@dataclass(frozen=True)
class RowSummary:
    """What one pass over the rows tells: finite extremes and weighted moments per feature.

    Attributes
    ----------
    low, high : numpy.ndarray
        ``(d,)`` float64 finite minimum and maximum of each feature (inf, -inf: none).
    non_finite : int
        NaN and infinite values met.
    total_weight : float
        Sum of the weights.
    variance : numpy.ndarray
        ``(d,)`` weighted variance of each feature (moments about the first row, float64).

    Examples
    --------
    >>> s = summarise(np.array([[1.0, -2.0], [3.0, np.nan]]), None)
    >>> s.low.tolist(), s.high.tolist(), s.non_finite
    ([1.0, -2.0], [3.0, -2.0], 1)
    >>> summarise(np.array([[0.0], [4.0]]), np.array([3.0, 1.0])).variance.tolist()
    [3.0]
    """

    low: np.ndarray
    high: np.ndarray
    non_finite: int
    total_weight: float
    variance: np.ndarray


def summarise(rows: np.ndarray | GridRows, sample_weight: np.ndarray | None) -> RowSummary:
    """Return the :class:`RowSummary` of the rows, from one pass block by block.

    Blocks are added in block order: the summary does not depend on the number of threads
    or on the rows' memory layout.

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` feature rows (:func:`as_rows`; any real dtype).
    sample_weight : numpy.ndarray or None
        ``(n,)`` weight of each row; None: 1 each.

    Returns
    -------
    RowSummary
        Extremes, non-finite count, total weight and variances.
    """
    if isinstance(rows, GridRows) and rows.values_summary is not None and sample_weight is None:
        # every feature is summed on its own: the stored columns' part is already known
        no_values = rows.values[:, :0]
        grid = GridRows(no_values, rows.pixels, rows.grid_shape, rows.axis_values, rows.dtype)
        return _joined(rows.values_summary, summarise(grid, None))
    source, w = kernel_rows(rows), weights_or_empty(sample_weight)
    n, d = rows.shape
    shift = take(rows, [0])[0].astype(np.float64) if n else np.zeros(d)
    shift[~np.isfinite(shift)] = 0.0

    def block(part: slice):
        low, high = np.full(d, np.inf), np.full(d, -np.inf)
        sums, squares = np.zeros(d), np.zeros(d)
        non_finite = kernels.summary_block(
            source, part.start, part.stop, w, shift, low, high, sums, squares
        )
        return low, high, sums, squares, non_finite

    low, high = np.full(d, np.inf), np.full(d, -np.inf)
    sums, squares = np.zeros(d), np.zeros(d)
    non_finite = 0
    for part in map_blocks(block, n):
        np.minimum(low, part[0], out=low)
        np.maximum(high, part[1], out=high)
        sums += part[2]
        squares += part[3]
        non_finite += part[4]
    total = float(w.sum()) if len(w) else float(n)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # extreme data: rescaled
        variance = np.maximum((squares - sums * sums / total) / total, 0.0)
    return RowSummary(low, high, int(non_finite), total, variance)


def _joined(first: RowSummary, then: RowSummary) -> RowSummary:
    """Return the summary of rows made of ``first``'s features, then ``then``'s."""
    return RowSummary(
        np.concatenate([first.low, then.low]),
        np.concatenate([first.high, then.high]),
        first.non_finite + then.non_finite,
        first.total_weight,
        np.concatenate([first.variance, then.variance]),
    )


def rounding_slack(rows: np.ndarray | GridRows, centers: np.ndarray) -> float:
    """Return the absolute widening of distance bounds: far above float64 rounding here.

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` feature rows.
    centers : numpy.ndarray
        ``(k, d)`` centres.

    Returns
    -------
    float
        ``1e-12`` times the largest magnitude of a row or centre coordinate.

    Examples
    --------
    >>> rounding_slack(np.array([[3.0], [-4.0]]), np.array([[1.0]]))
    4e-12
    """
    magnitude = max(float(np.abs(centers).max(initial=0.0)), 0.0)
    if rows.shape[0] and rows.shape[1]:
        summary = summarise(rows, None)
        magnitude = max(magnitude, abs(float(summary.high.max())), abs(float(summary.low.min())))
    return 1e-12 * magnitude


def nearest_with_sqdist(
    rows: np.ndarray,
    centers: np.ndarray,
    check: Callable[[], object] | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the nearest centre (lowest index on ties) of every row and the squared distance.

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` float32 or float64 rows (:func:`as_rows`).
    centers : numpy.ndarray
        ``(k, d)`` centres.
    check : callable, optional
        Called without arguments between groups of blocks; raise in it to stop.
    progress : callable, optional
        ``progress(stage, done, total)``, told while the kernels get ready (first use).

    Returns
    -------
    labels : numpy.ndarray
        ``(n,)`` int32 index of the nearest centre.
    sqdist : numpy.ndarray
        ``(n,)`` float64 squared distance to it.

    Examples
    --------
    >>> labels, sqdist = nearest_with_sqdist(np.array([[0.0], [9.0]]), np.array([[1.0], [10.0]]))
    >>> labels.tolist(), sqdist.tolist()
    ([0, 1], [1.0, 1.0])
    """
    prepare(progress, "nearest", rows)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    slack = rounding_slack(rows, centers)
    geometry = unlimited_geometry(centers, slack)
    n = rows.shape[0]
    labels = np.empty(n, dtype=np.int32)
    best_sq = np.empty(n)
    source = kernel_rows(rows)
    map_blocks(
        lambda part: kernels.nearest_block(
            source, part.start, part.stop, centers, geometry, slack, labels, best_sq
        ),
        n,
        check=check,
    )
    return labels, best_sq


def unlimited_geometry(centers: np.ndarray, slack: float):
    """Return the kernels' ``Geometry`` of ``centers`` listing every other centre.

    Parameters
    ----------
    centers : numpy.ndarray
        ``(k, d)`` float64 centres.
    slack : float
        Absolute rounding margin (:func:`rounding_slack`).

    Returns
    -------
    kernels.Geometry
        Neighbour lists, nearest first, with every limit inf.

    Examples
    --------
    >>> geometry = unlimited_geometry(np.array([[0.0], [3.0], [1.0]]), 0.0)
    >>> geometry.order[:, :2].tolist(), geometry.n_listed.tolist()
    ([[2, 1], [2, 0], [0, 1]], [2, 2, 2])
    """
    unlimited = np.full(len(centers), np.inf)
    order, low_gaps, count, half_gaps = kernels.centre_geometry(centers, slack, unlimited)
    return kernels.Geometry(order, low_gaps, count, unlimited, half_gaps)


def nearest(columns: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Return the nearest centre of every row of ``(d, n)`` columns (lowest index on ties).

    Parameters
    ----------
    columns : numpy.ndarray
        ``(d, n)`` feature columns (any layout).
    centers : numpy.ndarray
        ``(k, d)`` centres.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int32 index of each row's nearest centre.

    Examples
    --------
    >>> nearest(np.array([[0.0, 9.0, 5.0]]), np.array([[1.0], [10.0], [0.0]])).tolist()
    [2, 1, 0]
    """
    return nearest_with_sqdist(as_rows(columns), centers)[0]


def own_sqdist(
    columns: np.ndarray | GridRows, labels: np.ndarray, centers: np.ndarray
) -> np.ndarray:
    """Return the float64 squared distance of every row to its own centre ``centers[labels]``.

    Parameters
    ----------
    columns : numpy.ndarray or GridRows
        ``(d, n)`` feature columns (any layout), or grid rows.
    labels : numpy.ndarray
        ``(n,)`` index of each row's centre.
    centers : numpy.ndarray
        ``(k, d)`` centres.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 squared distances.

    Examples
    --------
    >>> own_sqdist(np.array([[0.0, 3.0]]), np.array([0, 0]), np.array([[1.0]])).tolist()
    [1.0, 4.0]
    """
    rows = as_rows(columns)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    out = np.empty(rows.shape[0])
    source = kernel_rows(rows)
    map_blocks(
        lambda part: kernels.own_sqdist_block(source, part.start, part.stop, labels, centers, out),
        rows.shape[0],
    )
    return out


def weights_or_empty(sample_weight: np.ndarray | None) -> np.ndarray:
    """Return float64 weights, or an empty array standing for "every weight is 1".

    Parameters
    ----------
    sample_weight : numpy.ndarray or None
        ``(n,)`` weight of each row, or None.

    Returns
    -------
    numpy.ndarray
        Contiguous float64 weights; empty for None (what the kernels read as all 1).

    Examples
    --------
    >>> weights_or_empty(None).size, weights_or_empty(np.array([2, 3])).tolist()
    (0, [2.0, 3.0])
    """
    if sample_weight is None:
        return np.empty(0)
    return np.ascontiguousarray(sample_weight, dtype=np.float64)


def exact_inertia(
    rows: np.ndarray | GridRows,
    labels: np.ndarray,
    centers: np.ndarray,
    sample_weight: np.ndarray | None,
) -> float:
    """Return the weighted sum of squared distances to the assigned centres, in float64.

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` feature rows (:func:`as_rows`).
    labels : numpy.ndarray
        ``(n,)`` index of each row's centre.
    centers : numpy.ndarray
        ``(k, d)`` centres.
    sample_weight : numpy.ndarray or None
        ``(n,)`` weight of each row; None: 1 each.

    Returns
    -------
    float
        The inertia.

    Examples
    --------
    >>> exact_inertia(np.array([[0.0], [2.0]]), np.array([0, 0]), np.array([[1.0]]), None)
    2.0
    """
    w = weights_or_empty(sample_weight)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    source = kernel_rows(rows)
    parts = map_blocks(
        lambda part: kernels.inertia_block(source, part.start, part.stop, w, labels, centers),
        rows.shape[0],
    )
    return float(sum(parts))


def label_sums(
    rows: np.ndarray | GridRows, labels: np.ndarray, sample_weight: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return each cluster's weighted sum of rows and its total weight, in float64.

    Block by block, with no copy of the rows or index-sized temporary beyond one block
    (NumPy's ``bincount`` makes one of the labels as int64).

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` rows of any real dtype and layout (read as float64, never copied).
    labels : numpy.ndarray
        ``(n,)`` cluster of each row, in ``0..k-1``.
    sample_weight : numpy.ndarray or None
        ``(n,)`` weight of each row; None: 1 each.
    k : int
        Number of clusters.

    Returns
    -------
    sums : numpy.ndarray
        ``(k, d)`` weighted sums of the rows.
    weights : numpy.ndarray
        ``(k,)`` total weight (rows when unweighted) of each cluster.

    Examples
    --------
    >>> rows = np.array([[2], [4], [6]], np.uint8)
    >>> sums, weights = label_sums(rows, np.array([0, 1, 1]), None, 2)
    >>> sums.tolist(), weights.tolist()
    ([[2.0], [10.0]], [1.0, 2.0])
    """
    w = weights_or_empty(sample_weight)
    d = rows.shape[1]
    plain = None if isinstance(rows, GridRows) else rows
    source = kernel_rows(rows) if plain is None else None
    if plain is None:
        labels = np.ascontiguousarray(labels, dtype=np.intp)

    def block(part: slice) -> tuple[np.ndarray, np.ndarray]:
        sums, weights = np.zeros((k, d)), np.zeros(k)
        if plain is None:
            kernels.label_sums_block(source, part.start, part.stop, w, labels, sums, weights)
        else:  # one compiled variant for every dtype: the block as float64 (same numbers)
            values = np.ascontiguousarray(plain[part], dtype=np.float64)
            kernels.label_sums_block(
                kernel_rows(values),
                0,
                len(values),
                w[part] if len(w) else w,
                np.ascontiguousarray(labels[part], dtype=np.intp),
                sums,
                weights,
            )
        return sums, weights

    sums, weights = np.zeros((k, d)), np.zeros(k)
    for block_sums, block_weights in map_blocks(block, rows.shape[0]):
        sums += block_sums
        weights += block_weights
    return sums, weights


# float64 holds every integer below this exactly.
EXACT_INTEGERS_BELOW = 2.0**53


def sums_exact(rows: np.ndarray | GridRows, sample_weight: np.ndarray | None) -> bool:
    """Whether float64 adds any per-cluster sums of these rows exactly, in any order.

    True when every feature and weight is an integer and the largest sum a cluster can
    reach, of its weights, weighted rows or weighted squared norms, is below 2**53: every
    partial sum is then an integer that float64 holds exactly, so adding, subtracting and
    regrouping the terms give the same numbers (Lloyd then updates its sums with only the
    rows that changed cluster).

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` rows of any real dtype and layout.
    sample_weight : numpy.ndarray or None
        ``(n,)`` weight of each row; None: 1 each.

    Returns
    -------
    bool
        True when the sums are exact.

    Examples
    --------
    >>> sums_exact(np.array([[255, 0], [3, 7]], np.uint8), np.array([2.0, 5.0]))
    True
    >>> sums_exact(np.array([[0.5]]), None), sums_exact(np.array([[2.0**30]]), None)
    (False, False)
    """
    source = kernel_rows(rows)
    w = weights_or_empty(sample_weight)
    parts = map_blocks(
        lambda part: kernels.integers_block(source, part.start, part.stop, w), rows.shape[0]
    )
    if not all(integral for integral, _, _ in parts):
        return False
    total = sum(total for _, _, total in parts)
    if total >= EXACT_INTEGERS_BELOW:  # a float64 sum of integers reaches 2**53 when theirs does
        return False
    total, peak = int(total), int(max(peak for _, peak, _ in parts))  # now exact
    return max(total, total * peak, total * rows.shape[1] * peak * peak) < EXACT_INTEGERS_BELOW
