"""Weighted Lloyd iterations from given starting centres, with exact pruning of the distances.

Each iteration moves every centre to the weighted mean of its rows and re-labels the rows.
Hamerly's bounds (2010, "Making k-means even faster") skip the rows that cannot have changed
centre, and the rows that might have search only the centres near their own (see
``kernels``): near convergence an iteration costs one pass over the bounds. The labels and
centres are those of plain Lloyd; the per-cluster sums are recomputed from every row in each
pass, block by block, and added in block order (deterministic whatever the threads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..progress import LLOYD, ProgressCallback, report
from . import kernels
from .distances import (
    as_rows,
    exact_inertia,
    own_sqdist,
    rounding_slack,
    run_blocks,
    weights_or_empty,
)

IterationCallback = Callable[[int, float], object]


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

    Examples
    --------
    >>> r = run_lloyd(np.array([[0.0, 2.0]]), None, np.array([[0.0]]), 10, 0.0)
    >>> r.centers.tolist(), r.labels.tolist(), r.inertia, r.n_iter
    ([[1.0]], [0, 0], 2.0, 1)
    """

    centers: np.ndarray  # (k, d) float64
    labels: np.ndarray  # (n,) int32
    inertia: float
    n_iter: int


class _Assignment:
    """Labels, bounds and per-cluster sums of the rows for the current centres."""

    def __init__(self, rows, w, centers, slack, check):
        self.rows, self.w, self.slack, self.check = rows, w, slack, check
        n, k = rows.shape[0], len(centers)
        self.labels = np.empty(n, dtype=np.int32)
        self.upper = np.empty(n)  # distance to the own centre, at most
        self.second = np.empty(n, dtype=np.int32)  # second-nearest centre
        self.lower = np.empty(n)  # distance to the second-nearest centre, at least
        self.rest = np.empty(n)  # distance to any other centre, at least
        unlimited = np.full(k, np.inf)
        order, low_gaps, count, _ = kernels.centre_geometry(centers, slack, unlimited)
        self.ranking = order  # every other centre, nearest first: where later sorts start
        self._collect(
            lambda start, stop, sums: kernels.assign_block(
                rows, start, stop, w, centers, order, low_gaps, count, unlimited, slack,
                *self._bounds(), *sums,
            ),
            k,
        )  # fmt: skip

    def _bounds(self):
        return self.labels, self.upper, self.second, self.lower, self.rest

    def _collect(self, kernel, k: int) -> int:
        """Run ``kernel(start, stop, sums)`` on every block; return the sum of its results.

        The blocks' sums are added in block order (deterministic).
        """
        d = self.rows.shape[1]

        def block(start: int, stop: int):
            sums = np.zeros((k, d)), np.zeros(k), np.zeros(k), np.zeros(k)
            return sums, kernel(start, stop, sums)

        parts = run_blocks(block, self.rows.shape[0], self.check)
        self.sums, self.weight, self.sqnorm = np.zeros((k, d)), np.zeros(k), np.zeros(k)
        self.reach = np.zeros(k)  # largest upper bound of the rows of each cluster
        for (sums, weight, sqnorm, reach), _ in parts:
            self.sums += sums
            self.weight += weight
            self.sqnorm += sqnorm
            np.maximum(self.reach, reach, out=self.reach)
        return sum(result or 0 for _, result in parts)

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

    def update(self, centers: np.ndarray, shift: np.ndarray) -> int:
        """Re-label the rows after the centres moved by ``shift``; return how many changed."""
        rows, w, slack, k = self.rows, self.w, self.slack, len(centers)
        widened = shift * (1 + kernels.EPS) + slack
        # A row of cluster a is searched only from a, within twice its distance to a.
        limit = 2 * (self.reach + widened) * (1 + 2 * kernels.EPS) + 4 * slack
        order, low_gaps, count, half_gaps = kernels.centre_geometry_from(
            centers, slack, limit, self.ranking
        )
        return self._collect(
            lambda start, stop, sums: kernels.update_block(
                rows, start, stop, w, centers, order, low_gaps, count, limit, half_gaps,
                widened, slack, *self._bounds(), *sums,
            ),
            k,
        )  # fmt: skip


def _relocate_empty(
    sums: np.ndarray,
    weight: np.ndarray,
    empty: np.ndarray,
    rows: np.ndarray,
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
        point = rows[row].astype(np.float64)
        if any(((point - other) ** 2).sum() <= threshold for other in moved):
            continue
        row_weight = w[row] if len(w) else 1.0
        sums[labels[row]] -= row_weight * point
        weight[labels[row]] -= row_weight
        sums[empty[len(moved)]] = row_weight * point
        weight[empty[len(moved)]] = row_weight
        moved.append(point)


def run_lloyd(
    columns: np.ndarray,
    sample_weight: np.ndarray | None,
    centers: np.ndarray,
    max_iter: int,
    tol: float,
    callback: IterationCallback | None = None,
    progress: ProgressCallback | None = None,
) -> LloydResult:
    """Run Lloyd's algorithm on rows stored as ``(d, n)`` columns.

    It stops when the labels stop changing, the centres move less than ``tol`` (sum of
    squared shifts, absolute) or after ``max_iter`` centre updates.

    The returned labels are the nearest centre of every row for the returned centres (as
    ``distances.nearest`` computes it); the inertia is exact, in float64. ``callback(iteration,
    inertia)`` is called after every assignment, ``progress(LLOYD, iteration, max_iter)``
    after every iteration and between blocks of rows; an exception raised in either stops
    the run.

    Parameters
    ----------
    columns : numpy.ndarray
        ``(d, n)`` feature columns (any layout).
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
    slack = rounding_slack(rows, centers)
    done = 0

    def check() -> None:
        report(progress, LLOYD, done, max_iter)

    checked = None if progress is None else check
    state = _Assignment(rows, w, centers, slack, checked)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if callback is not None:
            callback(n_iter, state.inertia(centers))
        sums, weight = state.sums, state.weight
        empty = np.flatnonzero(weight <= 0)
        if len(empty):
            sqdist = own_sqdist(columns, state.labels, centers)
            _relocate_empty(sums, weight, empty, rows, w, state.labels, sqdist, slack)
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
    inertia = exact_inertia(columns, state.labels, centers, sample_weight)
    return LloydResult(centers, state.labels, inertia, n_iter)
