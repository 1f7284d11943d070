"""Globally optimal weighted k-means in one dimension by dynamic programming.

In 1-D the clusters of an optimal solution are runs of consecutive sorted values, so the best
split of the first ``j + 1`` values into ``m`` runs follows from the best splits into
``m − 1`` (Bellman 1973; Wang & Song 2011, *Ckmeans.1d.dp*). The position where the last run
starts never decreases with ``j`` (the run cost is Monge), so each layer is filled by divide
and conquer with monotone split points: O(w log w) cost evaluations for a layer of ``w`` end
positions, each O(1) from prefix sums (Grønlund et al. 2017, *Fast exact k-means, k-medians
and Bregman divergence clustering in 1D*). Layer ``m`` of ``k`` only needs the end positions
that leave room for the ``k − m`` later runs: ``w = n − k + 1``.

Memory stays O(n) for any k. When the split points of every layer fit in ``8 n`` int32 they
are kept and the runs are read back from them. Otherwise each end position carries, layer
after layer, where its best path crossed the middle layer (Hirschberg 1975): the last layer
then names the boundary between the first ``k // 2`` runs and the others, and the two
halves are solved the same way, for about twice the work.

The layer kernel is compiled with numba: the divide and conquer runs on an explicit stack
that can stop after a budget of evaluations and resume, so progress is reported (and a
cancel honoured) every few milliseconds of work.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from ..progress import OPTIMAL, ProgressCallback, report
from .compiled import kernels_1d, prepare

__all__ = ["MAX_EVALUATIONS", "MIN_SPLITS", "SPLITS_PER_VALUE", "optimal_kmeans_1d"]

# Split points kept for reading the runs back: up to 8 int32 per value (or 2**20).
SPLITS_PER_VALUE = 8
MIN_SPLITS = 1 << 20
# Most cost evaluations one call may take (a few minutes here); larger calls are refused.
MAX_EVALUATIONS = 1 << 34
_BUDGET = 1 << 21  # cost evaluations between two looks at the progress callback (~5 ms)
_REPORT_EVERY = 0.05  # seconds between two progress reports
_STACK = 128  # the divide and conquer is at most log2(n) + 1 < 64 intervals deep


def _prefix_sums(values: np.ndarray, weights: np.ndarray):
    """Prefix sums of weight, weight × value and weight × value² (length n + 1).

    Values are centred first, which keeps the sums small so their differences stay accurate,
    and scaled by a power of two (exact) so that no square overflows or underflows.
    """
    v = values - np.einsum("i,i->", values, weights) / weights.sum()
    peak = max(float(v.max()), -float(v.min()))
    exponent = int(np.frexp(peak)[1]) if peak > 0 else 0
    v = np.ldexp(v, -exponent)
    W = np.zeros(len(v) + 1)
    S = np.zeros(len(v) + 1)
    Q = np.zeros(len(v) + 1)
    np.cumsum(weights, out=W[1:])
    wv = weights * v
    np.cumsum(wv, out=S[1:])
    wv *= v
    np.cumsum(wv, out=Q[1:])
    return W, S, Q


@functools.cache
def _layers_in_all(k: int) -> int:
    """Layers computed for k runs when every part is split in halves (the progress total)."""
    return 0 if k == 1 else k - 1 + _layers_in_all(k // 2) + _layers_in_all(k - k // 2)


def _keeps(k: int, width: int, n: int) -> bool:
    """Whether the split points of ``k`` layers of ``width`` end positions are kept."""
    return (k - 1) * width <= SPLITS_PER_VALUE * n + MIN_SPLITS


class _Solver:
    """The dynamic programme over prefix sums, with buffers sized for the whole range."""

    def __init__(self, values, weights, progress):
        self.n = len(values)
        self.W, self.S, self.Q = _prefix_sums(values, weights)
        self.buffers = [np.empty(self.n) for _ in range(2)]
        self.cross = [np.empty(0, dtype=np.int64) for _ in range(2)]  # grown when halving
        self.stack = np.empty((_STACK, 4), dtype=np.int64)
        self.state = np.zeros(1, dtype=np.int64)
        self.progress, self.done, self.total = progress, 0, 0
        self.last = time.perf_counter()

    def _tick(self, layers: int = 0) -> None:
        self.done += layers
        if self.progress is not None and time.perf_counter() - self.last >= _REPORT_EVERY:
            report(self.progress, OPTIMAL, self.done, self.total)
            self.last = time.perf_counter()

    def solve(self, a: int, b: int, k: int, bounds: list[int]) -> None:
        """Append to ``bounds`` the starts of runs 2..k of the best split of ``a..b-1``."""
        if k == 1:
            return
        width = b - a - k + 1
        keep = _keeps(k, width, self.n)
        splits = np.empty((k - 1, width) if keep else (k - 1, 0), dtype=np.int32)
        half = k // 2
        prev, cur = (buffer[:width] for buffer in self.buffers)
        if not keep and len(self.cross[0]) < self.n:
            self.cross = [np.empty(self.n, dtype=np.int64) for _ in range(2)]
        prev_cross, cur_cross = (cross[:width] for cross in self.cross)
        kernels_1d.first_layer(self.W, self.S, self.Q, a, prev, width)
        for m in range(2, k + 1):
            base = a + m - 1
            first = width - 1 if m == k else 0  # the last layer ends at b - 1 only
            self.stack[0] = (first, width - 1, base, base + width - 1)
            self.state[0] = 1
            cross = (
                kernels_1d.NO_CROSS
                if keep or m <= half
                else kernels_1d.CROSS_HERE
                if m == half + 1
                else kernels_1d.CROSS_CARRIED
            )
            while not kernels_1d.layer(
                self.W,
                self.S,
                self.Q,
                prev,
                cur,
                prev_cross,
                cur_cross,
                splits[m - 2],
                base,
                cross,
                self.stack,
                self.state,
                _BUDGET,
            ):
                self._tick()
            prev, cur = cur, prev
            prev_cross, cur_cross = cur_cross, prev_cross
            self._tick(1)
        if keep:
            if (a, b) != (0, self.n):  # part of a halved problem: credit the unneeded layers
                self.done += _layers_in_all(k) - (k - 1)
            ends = [b]
            for m in range(k, 1, -1):  # the last of m runs ends at ends[-1] - 1
                ends.append(int(splits[m - 2][ends[-1] - 1 - (a + m - 1)]))
            bounds.extend(reversed(ends[1:]))
            return
        middle = int(prev_cross[width - 1])
        self.solve(a, middle, half, bounds)
        bounds.append(middle)
        self.solve(middle, b, k - half, bounds)


def optimal_kmeans_1d(
    values: np.ndarray,
    weights: np.ndarray,
    n_clusters: int,
    *,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Globally optimal weighted 1-D k-means.

    Work: about ``(n_clusters - 1) × (n - n_clusters + 1) × log2 n`` cost evaluations
    (twice that when the split points do not fit in ``8 n`` int32), refused with a
    ``ValueError`` before any work above ``MAX_EVALUATIONS``; memory O(n).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n,)`` distinct real values, sorted ascending.
    weights : numpy.ndarray
        ``(n,)`` positive weights (e.g. pixel counts).
    n_clusters : int
        Number of clusters, ``1 <= n_clusters <= n``.
    progress : callable, optional
        ``progress("optimal 1-D", done, total)`` every ~0.05 s of work, in layers; an
        exception raised in it stops the work and propagates.

    Returns
    -------
    centers : numpy.ndarray
        ``(k,)`` ascending weighted means of the runs.
    labels : numpy.ndarray
        ``(n,)`` int32 run index of every value.
    inertia : float
        The minimal weighted sum of squared deviations.

    Examples
    --------
    >>> c, lab, inertia = optimal_kmeans_1d(np.array([0.0, 1, 10, 12]), np.ones(4), 2)
    >>> c.tolist(), lab.tolist(), inertia
    ([0.5, 11.0], [0, 0, 1, 1], 2.5)
    """
    n = len(values)
    values = values.astype(np.float64, copy=False)
    w = weights.astype(np.float64, copy=False)
    width = n - n_clusters + 1
    kept = _keeps(n_clusters, width, n)
    evaluations = (n_clusters - 1) * width * width.bit_length() * (1 if kept else 2)
    if evaluations > MAX_EVALUATIONS:
        raise ValueError(
            f"n_clusters={n_clusters} on {n:,} distinct values: the exact 1-D optimum would "
            f"take about {evaluations:.1e} cost evaluations (at most {MAX_EVALUATIONS:.1e}, "
            "minutes of work); use fewer clusters"
        )
    prepare(progress, "optimal", values)
    solver = _Solver(values, w, progress)
    solver.total = n_clusters - 1 if kept else _layers_in_all(n_clusters)
    report(progress, OPTIMAL, 0, solver.total)
    bounds = [0]
    solver.solve(0, n, n_clusters, bounds)
    bounds.append(n)
    report(progress, OPTIMAL, solver.total, solver.total)
    labels = np.repeat(np.arange(n_clusters, dtype=np.int32), np.diff(bounds))
    centers = np.bincount(labels, weights=w * values, minlength=n_clusters) / np.bincount(
        labels, weights=w, minlength=n_clusters
    )
    inertia = float(np.dot(w, (values - centers[labels]) ** 2))
    return centers, labels, inertia
