"""Weighted Lloyd iterations from given starting centres, accelerated with Hamerly's bounds.

Hamerly (2010, "Making k-means even faster") keeps for every row an upper bound on the
distance to its own centre and a lower bound on the distance to any other. When the centres
move, the bounds move by at most the centres' shifts, and a row whose upper bound stays below
both its lower bound and half the distance from its centre to the nearest other centre cannot
change cluster: it is skipped. Near convergence almost every row is skipped, so an iteration
costs a few passes over the bounds instead of k distance computations per row. The labels
and centres are those of plain Lloyd: the bounds only decide which rows to recompute. Centre
sums are updated from the rows that changed cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .blocks import map_blocks
from .distances import block_nearest, cluster_sums, exact_inertia, own_sqdist

IterationCallback = Callable[[int, float], object]

# Distances of float32 rows carry ~1e-7 relative rounding; bounds are widened by more than
# that, so no row is skipped whose nearest centre a direct computation could see differently.
_MARGIN = 1e-6


@dataclass
class LloydResult:
    centers: np.ndarray  # (k, d) float64
    labels: np.ndarray  # (n,) int32
    inertia: float
    n_iter: int


class _Bounds:
    """Labels, Hamerly bounds and per-cluster sums of a set of rows."""

    def __init__(self, columns: np.ndarray, weights: np.ndarray | None, centers: np.ndarray):
        self.columns, self.weights, self.k = columns, weights, len(centers)
        n = columns.shape[1]
        self.labels = np.empty(n, dtype=np.int32)
        self.upper = np.empty(n)
        self.lower = np.empty(n)

        def block(s: slice):
            labels, best, second = block_nearest(columns[:, s], centers)
            self.labels[s] = labels
            self.upper[s] = np.sqrt(best) * (1 + _MARGIN)
            self.lower[s] = np.sqrt(second) * (1 - _MARGIN)
            return cluster_sums(columns[:, s], labels, self._w(s), self.k)

        self.sums, self.total, self.sqnorm = _add(map_blocks(block, n))

    def _w(self, s: slice) -> np.ndarray | None:
        return None if self.weights is None else self.weights[s]

    def inertia(self, centers: np.ndarray) -> float:
        """Inertia of the current labels about ``centers``, from the per-cluster sums (for
        progress reports: the expansion loses digits when the data sit far from 0)."""
        per_cluster = (
            self.sqnorm
            - 2 * np.einsum("kd,kd->k", centers, self.sums)
            + self.total * np.einsum("kd,kd->k", centers, centers)
        )
        return float(per_cluster.sum())

    def update(self, centers: np.ndarray, shift: np.ndarray) -> int:
        """Re-label the rows after the centres moved by ``shift``; return how many changed."""
        gaps = np.sqrt(((centers[:, None, :] - centers[None]) ** 2).sum(-1))
        np.fill_diagonal(gaps, np.inf)
        half_gap = gaps.min(axis=1) / 2
        max_shift = shift.max()

        def block(s: slice):
            labels, upper, lower = self.labels[s], self.upper[s], self.lower[s]
            upper += shift[labels]
            lower -= max_shift
            bound = np.maximum(half_gap[labels], lower)
            rows = np.flatnonzero(upper > bound)
            if len(rows) == 0:
                return None
            cols = self.columns[:, s][:, rows]
            own = centers[labels[rows]]
            tight = np.sqrt(sum((cols[j] - own[:, j]) ** 2 for j in range(len(cols))))
            upper[rows] = tight * (1 + _MARGIN)
            recheck = upper[rows] > bound[rows]
            rows, cols = rows[recheck], cols[:, recheck]
            new, best, second = block_nearest(cols, centers)
            upper[rows] = np.sqrt(best) * (1 + _MARGIN)
            lower[rows] = np.sqrt(second) * (1 - _MARGIN)
            old = labels[rows]
            moved = np.flatnonzero(new != old)
            if len(moved) == 0:
                return None
            labels[rows[moved]] = new[moved]
            w = self._w(s)
            w = None if w is None else w[rows[moved]]
            gained = cluster_sums(cols[:, moved], new[moved], w, self.k)
            lost = cluster_sums(cols[:, moved], old[moved], w, self.k)
            return tuple(g - lo for g, lo in zip(gained, lost, strict=True)), len(moved)

        changes = [c for c in map_blocks(block, len(self.labels)) if c is not None]
        if not changes:
            return 0
        delta = _add([c[0] for c in changes])
        self.sums, self.total, self.sqnorm = (
            a + b for a, b in zip((self.sums, self.total, self.sqnorm), delta, strict=True)
        )
        return sum(c[1] for c in changes)


def _add(parts):
    """Element-wise sum of tuples of arrays, in order (deterministic)."""
    return tuple(np.sum([p[i] for p in parts], axis=0) for i in range(len(parts[0])))


def _relocate_empty(
    centers: np.ndarray, empty: np.ndarray, columns: np.ndarray, sqdist: np.ndarray
) -> None:
    """Move each empty cluster onto one of the rows farthest from their centres.

    Rows equal to a centre already placed are skipped, so two empty clusters never land on
    the same point and none comes back empty from the next assignment.
    """
    placed = 0
    for row in np.argsort(sqdist, kind="stable")[::-1]:
        if placed == len(empty):
            break
        point = columns[:, row].astype(np.float64)
        if np.any(np.all(centers == point, axis=1)):
            continue
        centers[empty[placed]] = point
        placed += 1


def run_lloyd(
    columns: np.ndarray,
    sample_weight: np.ndarray | None,
    centers: np.ndarray,
    max_iter: int,
    tol: float,
    callback: IterationCallback | None = None,
) -> LloydResult:
    """Run Lloyd's algorithm on rows stored as ``(d, n)`` columns until the labels stop
    changing, the centres move less than ``tol`` (sum of squared shifts, absolute) or
    ``max_iter`` centre updates.

    The returned labels are the nearest centre of every row for the returned centres; the
    inertia is recomputed in float64 (float32 rows only decide the assignment).

    Examples
    --------
    >>> r = run_lloyd(np.array([[0.0, 1, 9, 11]]), None, np.array([[0.0], [1.0]]), 100, 0.0)
    >>> r.centers.ravel().tolist(), r.labels.tolist(), r.inertia
    ([0.5, 10.0], [0, 0, 1, 1], 2.5)
    """
    centers = centers.astype(np.float64, copy=True)
    state = _Bounds(columns, sample_weight, centers)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if callback is not None:
            callback(n_iter, state.inertia(centers))
        new_centers = centers.copy()
        filled = state.total > 0
        new_centers[filled] = state.sums[filled] / state.total[filled, None]
        empty = np.flatnonzero(~filled)
        if len(empty):
            _relocate_empty(new_centers, empty, columns, own_sqdist(columns, state.labels, centers))
            previous = state.labels
            state = _Bounds(columns, sample_weight, new_centers)
            centers = new_centers
            if np.array_equal(previous, state.labels):
                break
            continue
        shift = np.sqrt(((new_centers - centers) ** 2).sum(axis=1))
        centers = new_centers
        changed = state.update(centers, shift)
        if changed == 0 or float((shift**2).sum()) <= tol:
            break
    inertia = exact_inertia(columns, state.labels, centers, sample_weight)
    return LloydResult(centers, state.labels, inertia, n_iter)
