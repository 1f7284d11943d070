"""Globally optimal weighted k-means in one dimension by dynamic programming.

In 1-D the clusters of an optimal solution are runs of consecutive sorted values, so the best
split of the first ``j + 1`` values into ``m`` runs follows from the best splits into
``m − 1`` (Bellman 1973; Wang & Song 2011, *Ckmeans.1d.dp*). The position where the last run
starts never decreases with ``j``, which lets each of the ``k`` layers be filled by divide and
conquer in O(n log n). Here the divide and conquer runs breadth-first: every recursion level
is a handful of vectorised NumPy operations over all its intervals at once.
"""

from __future__ import annotations

import numpy as np


class _RunCosts:
    """Weighted sum of squared deviations of any run ``values[i..j]`` in O(1)."""

    def __init__(self, values: np.ndarray, weights: np.ndarray):
        # Centring first keeps the prefix sums small, so their differences stay accurate.
        v = values - np.einsum("i,i->", values, weights) / weights.sum()
        zero = np.zeros(1)
        self.w = np.concatenate([zero, np.cumsum(weights)])
        self.s = np.concatenate([zero, np.cumsum(weights * v)])
        self.q = np.concatenate([zero, np.cumsum(weights * v * v)])

    def __call__(self, i: np.ndarray, j: np.ndarray, repeats: np.ndarray | None = None):
        """Costs of the runs ``i..j``; with ``repeats``, ``j[r]`` stands for ``repeats[r]``
        consecutive entries of ``i`` (one end shared by many starts)."""

        def at_end(prefix: np.ndarray) -> np.ndarray:
            end = np.take(prefix, j + 1)
            return end if repeats is None else np.repeat(end, repeats)

        w = at_end(self.w) - np.take(self.w, i)
        s = at_end(self.s) - np.take(self.s, i)
        cost = at_end(self.q) - np.take(self.q, i)
        s *= s
        s /= w
        cost -= s
        return np.maximum(cost, 0.0, out=cost)


def _next_layer(prev: np.ndarray, cost: _RunCosts, m: int, n: int):
    """Best cost of splitting each prefix into ``m`` runs, and where the last run starts.

    ``prev[i]`` is the best cost of splitting ``values[:i + 1]`` into ``m − 1`` runs.
    """
    best = np.full(n, np.inf)
    start = np.zeros(n, dtype=np.int64)
    # intervals of end positions j, each with the range of allowed start positions i
    j_lo = np.array([m - 1])
    j_hi = np.array([n - 1])
    i_lo = np.array([m - 1])
    i_hi = np.array([n - 1])
    while len(j_lo):
        mid = (j_lo + j_hi) // 2
        top = np.minimum(mid, i_hi)
        sizes = top - i_lo + 1
        first = np.cumsum(sizes) - sizes
        owner = np.repeat(np.arange(len(mid)), sizes)
        i = np.arange(sizes.sum()) + np.repeat(i_lo - first, sizes)
        value = np.take(prev, i - 1) + cost(i, mid, sizes)
        lowest = np.minimum.reduceat(value, first)
        hits = np.flatnonzero(value == np.repeat(lowest, sizes))
        first_hit = hits[np.flatnonzero(np.diff(owner[hits], prepend=-1))]  # owner is sorted
        arg = i[first_hit]
        best[mid] = lowest
        start[mid] = arg
        left = mid - 1 >= j_lo
        right = mid + 1 <= j_hi
        j_lo, j_hi, i_lo, i_hi = (
            np.concatenate([j_lo[left], mid[right] + 1]),
            np.concatenate([mid[left] - 1, j_hi[right]]),
            np.concatenate([i_lo[left], arg[right]]),
            np.concatenate([arg[left], i_hi[right]]),
        )
    return best, start


def optimal_kmeans_1d(
    values: np.ndarray, weights: np.ndarray, n_clusters: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Globally optimal weighted 1-D k-means.

    Parameters
    ----------
    values : (n,) float array of distinct values, sorted ascending.
    weights : (n,) positive weights (e.g. pixel counts).
    n_clusters : 1 <= n_clusters <= n.

    Returns
    -------
    centers : (k,) ascending weighted means of the runs.
    labels : (n,) int32 run index of every value.
    inertia : the minimal weighted sum of squared deviations.

    Examples
    --------
    >>> c, lab, inertia = optimal_kmeans_1d(np.array([0.0, 1, 10, 12]), np.ones(4), 2)
    >>> c.tolist(), lab.tolist(), inertia
    ([0.5, 11.0], [0, 0, 1, 1], 2.5)
    """
    n = len(values)
    cost = _RunCosts(values.astype(np.float64), weights.astype(np.float64))
    layer = cost(np.zeros(n, dtype=np.int64), np.arange(n))
    starts = []
    for m in range(2, n_clusters + 1):
        padded = np.concatenate([layer, [np.inf]])  # prev[-1] for i = 0 is never allowed
        layer, start = _next_layer(padded, cost, m, n)
        starts.append(start)
    bounds = [n]
    for start in reversed(starts):
        bounds.append(int(start[bounds[-1] - 1]))
    bounds.append(0)
    bounds = bounds[::-1]
    labels = np.repeat(np.arange(n_clusters, dtype=np.int32), np.diff(bounds))
    w = weights.astype(np.float64)
    centers = np.bincount(labels, weights=w * values, minlength=n_clusters) / np.bincount(
        labels, weights=w, minlength=n_clusters
    )
    inertia = float(np.dot(w, (values - centers[labels]) ** 2))
    return centers, labels, inertia
