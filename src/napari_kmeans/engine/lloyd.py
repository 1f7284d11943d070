"""Weighted Lloyd iterations from given starting centres, with exact pruning of the distances.

Each iteration moves every centre to the weighted mean of its rows and re-labels the rows.
With few centres (up to ``SCAN_UP_TO``) every row scans every centre and only the labels
are kept (4 bytes a row). With more, Hamerly's bounds (2010, "Making k-means even faster")
skip the rows that cannot have changed centre, and the rows that might have search only the
centres near their own (see ``kernels``): near convergence an iteration costs one pass over
the bounds (32 more bytes a row). The labels and centres are those of plain Lloyd; the
per-cluster sums are recomputed from every row in each pass, block by block, and added in
block order (deterministic whatever the threads). With bounds, on integer rows and weights
whose sums stay below 2**53 (colour histograms: ``distances.sums_exact``), every sum is
exact in any order, so each pass only moves the rows that changed cluster, and rows the
bounds settle are not read at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..progress import LLOYD, ProgressCallback, report
from .blocks import map_blocks
from .compiled import kernels
from .distances import (
    as_rows,
    exact_inertia,
    own_sqdist,
    rounding_slack,
    sums_exact,
    unlimited_geometry,
    weights_or_empty,
)
from .grid_rows import GridRows, kernel_rows, take

IterationCallback = Callable[[int, float], object]

# Up to this many centres Lloyd keeps no bounds: skipping a row's scan saves less than its
# bounds cost. Measured on 2 cores (segment, k-means++, bound-free vs bounds):
# 4 MP float32 RGB: k=4 0.30 vs 0.46 s, k=8 0.51 vs 0.70 s, k=12 1.5 vs 1.2 s,
# k=16 2.6 vs 1.6 s; 12 MP uint8 RGB (0.3 M distinct colours): k=8 0.30 vs 0.30 s,
# k=12 0.48 vs 0.43 s, k=24 0.78 vs 0.53 s.
SCAN_UP_TO = 8


@dataclass
class LloydResult:
    """Centres, labels, exact inertia and iterations of one Lloyd run.

    Attributes
    ----------
    centers : numpy.ndarray
        ``(k, d)`` float64 centres.
    labels : numpy.ndarray
        ``(n,)`` int32 nearest centre of each row.
    inertia : float
        Weighted sum of squared distances to the nearest centre, in float64.
    n_iter : int
        Centre updates made.
    sums : numpy.ndarray
        ``(k, d)`` weighted sum of the rows of each cluster (of the returned labels), in
        float64: each row added in row order within blocks of ``BLOCK_ROWS``, the blocks in
        order, as ``distances.label_sums`` adds them.
    weights : numpy.ndarray
        ``(k,)`` total weight of each cluster, added the same way.

    Examples
    --------
    >>> r = run_lloyd(np.array([[0.0, 2.0]]), None, np.array([[0.0]]), 10, 0.0)
    >>> r.centers.tolist(), r.labels.tolist(), r.inertia, r.n_iter
    ([[1.0]], [0, 0], 2.0, 1)
    >>> r.sums.tolist(), r.weights.tolist()
    ([[2.0]], [2.0])
    """

    centers: np.ndarray  # (k, d) float64
    labels: np.ndarray  # (n,) int32
    inertia: float
    n_iter: int
    sums: np.ndarray  # (k, d) float64
    weights: np.ndarray  # (k,) float64


class _Assignment:
    """Labels and per-cluster sums of the rows for the current centres (no bounds).

    Every assignment scans every centre for every row (few centres).
    """

    def __init__(self, rows, w, centers, check):
        self.rows, self.w, self.check = rows, w, check
        self.source = kernel_rows(rows)
        self.labels = np.full(rows.shape[0], -1, dtype=np.int32)
        self.update(centers, None)

    def exact_inertia(self, centers: np.ndarray) -> float:
        """Exact inertia of the labels about ``centers``, the centres of the last update."""
        return self._inertia

    def _collect(self, kernel, k: int, changes: bool = False) -> list:
        """Run ``kernel(start, stop, totals)`` on every block; return its results, in order.

        ``totals`` is the block's own ``kernels.ClusterSums``. The blocks' sums are added in
        block order (deterministic), to the last sums when they are ``changes`` only.
        """
        d = self.rows.shape[1]

        def block(part: slice):
            sums = kernels.ClusterSums(np.zeros((k, d)), np.zeros(k), np.zeros(k), np.zeros(k))
            return sums, kernel(part.start, part.stop, sums)

        parts = map_blocks(block, self.rows.shape[0], check=self.check)
        if not changes:
            self.sums, self.weight, self.sqnorm = np.zeros((k, d)), np.zeros(k), np.zeros(k)
        self.reach = np.zeros(k)  # largest upper bound of the rows of each cluster
        for (sums, weight, sqnorm, reach), _ in parts:
            self.sums += sums
            self.weight += weight
            self.sqnorm += sqnorm
            np.maximum(self.reach, reach, out=self.reach)
        return [result for _, result in parts]

    def inertia(self, centers: np.ndarray) -> float:
        """Inertia of the current labels about ``centers``, from the per-cluster sums.

        For progress reports: the expansion loses digits when the data sit far from 0.
        """
        per_cluster = (
            self.sqnorm
            - 2 * np.einsum("kd,kd->k", centers, self.sums)
            + self.weight * np.einsum("kd,kd->k", centers, centers)
        )
        return float(per_cluster.sum())

    def update(self, centers: np.ndarray, shift: np.ndarray | None) -> int:
        """Re-label the rows for ``centers`` (moved by ``shift``); return how many changed."""
        source, w, labels = self.source, self.w, self.labels
        parts = self._collect(
            lambda start, stop, totals: kernels.scan_block(
                source, start, stop, w, centers, labels, totals
            ),
            len(centers),
        )
        # added as distances.exact_inertia adds its blocks: the same float
        self._inertia = float(sum(inertia for _, inertia in parts))
        return sum(changed for changed, _ in parts)


class _BoundedAssignment(_Assignment):
    """Labels, Hamerly bounds and per-cluster sums of the rows for the current centres."""

    def __init__(self, rows, w, centers, slack, check):
        self.rows, self.w, self.slack, self.check = rows, w, slack, check
        self.source = source = kernel_rows(rows)
        n, k = rows.shape[0], len(centers)
        self.labels = np.empty(n, dtype=np.int32)
        self.upper = np.empty(n)  # distance to the own centre, at most
        self.second = np.empty(n, dtype=np.int32)  # second-nearest centre
        self.lower = np.empty(n)  # distance to the second-nearest centre, at least
        self.rest = np.empty(n)  # distance to any other centre, at least
        # Sums updated by the rows that changed cluster alone, where that is exact.
        self.changes_only = sums_exact(rows, w if len(w) else None)
        geometry = unlimited_geometry(centers, slack)
        self.ranking = geometry.order  # every other centre, nearest first: later sorts' start
        self.bounds = kernels.Bounds(self.labels, self.upper, self.second, self.lower, self.rest)
        self._collect(
            lambda start, stop, totals: kernels.assign_block(
                source, start, stop, w, centers, geometry, slack, self.bounds, totals
            ),
            k,
        )

    def update(self, centers: np.ndarray, shift: np.ndarray | None) -> int:
        """Re-label the rows after the centres moved by ``shift``; return how many changed."""
        source, w, slack, k = self.source, self.w, self.slack, len(centers)
        widened = shift * (1 + kernels.EPS) + slack
        # A row of cluster a is searched only from a, within twice its distance to a.
        limit = 2 * (self.reach + widened) * (1 + 2 * kernels.EPS) + 4 * slack
        order, low_gaps, count, half_gaps = kernels.centre_geometry_from(
            centers, slack, limit, self.ranking
        )
        geometry = kernels.Geometry(order, low_gaps, count, limit, half_gaps)
        changes_only = self.changes_only
        parts = self._collect(
            lambda start, stop, totals: kernels.update_block(
                source,
                start,
                stop,
                w,
                centers,
                geometry,
                widened,
                slack,
                self.bounds,
                totals,
                changes_only,
            ),
            k,
            changes_only,
        )
        return sum(parts)

    def exact_inertia(self, centers: np.ndarray) -> float:
        """Exact inertia of the labels about ``centers``, from every row's distance."""
        return exact_inertia(self.rows, self.labels, centers, self.w if len(self.w) else None)


def _relocate_empty(
    sums: np.ndarray,
    weight: np.ndarray,
    empty: np.ndarray,
    rows: np.ndarray | GridRows,
    w: np.ndarray,
    labels: np.ndarray,
    sqdist: np.ndarray,
    slack: float,
) -> None:
    """Give each empty cluster the row farthest from its centre, as scikit-learn does.

    The row's weight moves from its cluster's sums to the empty one's (labels follow at the
    next assignment).

    Only rows of positive weight farther than rounding (``slack``) from their centre, and
    from the rows already moved, qualify: a move then lowers the inertia by a real amount,
    so Lloyd cannot cycle. An empty cluster with no such row left keeps its centre (more
    clusters than distinct rows).
    """
    threshold = (2 * slack) ** 2
    qualified = sqdist > threshold
    if len(w):
        qualified &= w > 0
    candidates = np.flatnonzero(qualified)
    moved: list[np.ndarray] = []
    for row in candidates[np.argsort(-sqdist[candidates], kind="stable")]:
        if len(moved) == len(empty):
            break
        point = take(rows, [row])[0].astype(np.float64)
        if any(((point - other) ** 2).sum() <= threshold for other in moved):
            continue
        row_weight = w[row] if len(w) else 1.0
        sums[labels[row]] -= row_weight * point
        weight[labels[row]] -= row_weight
        sums[empty[len(moved)]] = row_weight * point
        weight[empty[len(moved)]] = row_weight
        moved.append(point)


def run_lloyd(
    columns: np.ndarray | GridRows,
    sample_weight: np.ndarray | None,
    centers: np.ndarray,
    max_iter: int,
    tol: float,
    callback: IterationCallback | None = None,
    progress: ProgressCallback | None = None,
) -> LloydResult:
    """Run Lloyd's algorithm on rows stored as ``(d, n)`` columns (or grid rows).

    It stops when the labels stop changing, the centres move less than ``tol`` (sum of
    squared shifts, absolute) or after ``max_iter`` centre updates.

    The returned labels are the nearest centre of every row for the returned centres (as
    ``distances.nearest`` computes it); the inertia is exact, in float64. ``callback(iteration,
    inertia)`` is called after every assignment, ``progress(LLOYD, iteration, max_iter)``
    after every iteration and between blocks of rows; an exception raised in either stops
    the run.

    Parameters
    ----------
    columns : numpy.ndarray or GridRows
        ``(d, n)`` feature columns (any layout), or grid rows.
    sample_weight : numpy.ndarray or None
        ``(n,)`` weight of each row; None: 1 each.
    centers : numpy.ndarray
        ``(k, d)`` starting centres (not modified).
    max_iter : int
        Maximum centre updates.
    tol : float
        Absolute tolerance on the sum of squared centre shifts.
    callback : callable, optional
        ``callback(iteration, inertia)`` after every assignment; raise in it to stop.
    progress : callable, optional
        ``progress(stage, done, total)``; raise in it to stop.

    Returns
    -------
    LloydResult
        Centres, labels, exact inertia and iterations.

    Examples
    --------
    >>> r = run_lloyd(np.array([[0.0, 1, 9, 11]]), None, np.array([[0.0], [1.0]]), 100, 0.0)
    >>> r.centers.ravel().tolist(), r.labels.tolist(), r.inertia
    ([0.5, 10.0], [0, 0, 1, 1], 2.5)
    """
    rows = as_rows(columns)
    w = weights_or_empty(sample_weight)
    centers = np.array(centers, dtype=np.float64, order="C")
    starting = centers
    done = 0

    @functools.cache
    def slack() -> float:  # a pass over the rows, made only when bounds or a move need it
        return rounding_slack(rows, starting)

    def check() -> None:
        report(progress, LLOYD, done, max_iter)

    checked = None if progress is None else check
    if len(centers) <= SCAN_UP_TO:
        state = _Assignment(rows, w, centers, checked)
    else:
        state = _BoundedAssignment(rows, w, centers, slack(), checked)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if callback is not None:
            callback(n_iter, state.inertia(centers))
        sums, weight = state.sums, state.weight
        empty = np.flatnonzero(weight <= 0)
        if len(empty):
            sums, weight = sums.copy(), weight.copy()  # the state's are the labels' sums
            sqdist = own_sqdist(columns, state.labels, centers)
            _relocate_empty(sums, weight, empty, rows, w, state.labels, sqdist, slack())
        new_centers = centers.copy()
        filled = weight > 0
        new_centers[filled] = sums[filled] / weight[filled, None]
        shift = np.sqrt(((new_centers - centers) ** 2).sum(axis=1))
        centers = new_centers
        changed = state.update(centers, shift)
        done = n_iter
        check()
        if changed == 0 or float((shift**2).sum()) <= tol:
            break
    report(progress, LLOYD, max_iter, max_iter)
    inertia = state.exact_inertia(centers)
    # the last update summed the rows about the returned labels (a move only precedes one)
    return LloydResult(centers, state.labels, inertia, n_iter, state.sums, state.weight)
