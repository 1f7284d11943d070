"""Weighted Lloyd iterations from given starting centres."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .distances import assign, exact_inertia

IterationCallback = Callable[[int, float], object]


@dataclass
class LloydResult:
    centers: np.ndarray  # (k, d) float64
    labels: np.ndarray  # (n,) int32
    inertia: float
    n_iter: int


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


def lloyd(
    columns: np.ndarray,
    sample_weight: np.ndarray | None,
    centers: np.ndarray,
    max_iter: int,
    tol: float,
    callback: IterationCallback | None = None,
) -> LloydResult:
    """Run Lloyd's algorithm on rows stored as ``(d, n)`` columns until the labels stop
    changing, the centres move less than ``tol`` (sum of squared shifts, absolute) or
    ``max_iter`` assignments have been made.

    The returned labels are the nearest centre of every row for the returned centres; the
    inertia is recomputed in float64 (float32 rows only decide the assignment).

    Examples
    --------
    >>> r = lloyd(np.array([[0.0, 1, 9, 11]]), None, np.array([[0.0], [1.0]]), 100, 0.0)
    >>> r.centers.ravel().tolist(), r.labels.tolist(), r.inertia
    ([0.5, 10.0], [0, 0, 1, 1], 2.5)
    """
    centers = centers.astype(np.float64, copy=True)
    previous = labels = None
    for n_iter in range(1, max_iter + 1):
        a = assign(columns, centers, sample_weight)
        if callback is not None:
            callback(n_iter, a.inertia)
        if previous is not None and np.array_equal(previous, a.labels):
            labels = a.labels  # stable: the centres are already the means of these labels
            break
        previous = a.labels
        new_centers = centers.copy()
        filled = a.weights > 0
        new_centers[filled] = a.sums[filled] / a.weights[filled, None]
        empty = np.flatnonzero(~filled)
        if len(empty):
            _relocate_empty(new_centers, empty, columns, a.sqdist)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if len(empty) == 0 and shift <= tol:
            break
    if labels is None:
        labels = assign(columns, centers, sample_weight).labels
    inertia = exact_inertia(columns, labels, centers, sample_weight)
    return LloydResult(centers, labels, inertia, n_iter)
