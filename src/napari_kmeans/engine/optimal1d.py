"""Globally optimal weighted k-means in one dimension by dynamic programming.

In 1-D the clusters of an optimal solution are runs of consecutive sorted values, so the best
split of the first ``j + 1`` values into ``m`` runs follows from the best splits into
``m − 1`` (Bellman 1973; Wang & Song 2011, *Ckmeans.1d.dp*). The position where the last run
starts never decreases with ``j`` (the run cost is Monge), so each layer is filled by divide
and conquer with monotone split points: O(w log w) cost evaluations for a layer of ``w`` end
positions, each O(1) from prefix sums (Grønlund et al. 2017, *Fast exact k-means, k-medians
and Bregman divergence clustering in 1D*).

The layer kernel is compiled with numba: the divide and conquer runs on an explicit stack
that can stop after a budget of evaluations and resume, so progress is reported (and a
cancel honoured) every few milliseconds of work. Layer ``m`` only needs the end positions
that leave room for the ``k − m`` later runs, ``w = n − k + 1`` of them: the work is
O(k (n − k + 1) log n) and the memory for the split points k (n − k + 1) int32.
"""

from __future__ import annotations

import time

import numba
import numpy as np

from ..progress import OPTIMAL, ProgressCallback, report

__all__ = ["MAX_SPLIT_CELLS", "optimal_kmeans_1d"]

# Split points kept for the backtrack, (k - 1) × (n - k + 1) int32: 2**28 is 1 GiB.
MAX_SPLIT_CELLS = 1 << 28
_BUDGET = 1 << 21  # cost evaluations between two looks at the progress callback (~5 ms)
_REPORT_EVERY = 0.05  # seconds between two progress reports
_STACK = 128  # the divide and conquer is at most log2(n) + 1 < 64 intervals deep


@numba.njit(cache=True, nogil=True)
def _first_layer(W, S, Q, cost, width):  # pragma: no cover - compiled
    for j in range(width):
        w = W[j + 1]
        s = S[j + 1]
        c = Q[j + 1] - s * s / w
        cost[j] = c if c > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _layer(W, S, Q, prev, cur, split, m, stack, state, budget):  # pragma: no cover - compiled
    """Advance layer ``m`` by about ``budget`` evaluations; return True when it is complete.

    Layer arrays are offset: ``cur[t]`` is the best cost of the first ``m - 1 + t + 1``
    values in ``m`` runs (end position ``j = m - 1 + t``), ``prev[t]`` that of ``m - 1``
    runs ending at ``m - 2 + t``; ``split[t]`` is where the last run starts. ``stack`` holds
    intervals ``(t_lo, t_hi, i_lo, i_hi)`` of end offsets with their allowed starts,
    ``state[0]`` its height.
    """
    base = m - 1
    work = 0
    sp = state[0]
    while sp > 0 and work < budget:
        sp -= 1
        a = stack[sp, 0]
        b = stack[sp, 1]
        lo = stack[sp, 2]
        hi = stack[sp, 3]
        mid = (a + b) // 2
        j = base + mid
        top = min(j, hi)
        best = np.inf
        arg = lo
        w1 = W[j + 1]
        s1 = S[j + 1]
        q1 = Q[j + 1]
        for i in range(lo, top + 1):
            w = w1 - W[i]
            s = s1 - S[i]
            c = q1 - Q[i] - s * s / w
            if c < 0.0:
                c = 0.0
            v = prev[i - base] + c  # prev offset: end position i - 1 = (m - 2) + (i - base)
            if v < best:
                best = v
                arg = i
        work += top - lo + 1
        cur[mid] = best
        split[mid] = arg
        if mid + 1 <= b:
            stack[sp, 0] = mid + 1
            stack[sp, 1] = b
            stack[sp, 2] = arg
            stack[sp, 3] = hi
            sp += 1
        if mid - 1 >= a:
            stack[sp, 0] = a
            stack[sp, 1] = mid - 1
            stack[sp, 2] = lo
            stack[sp, 3] = arg
            sp += 1
    state[0] = sp
    return sp == 0


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


def _check_size(n: int, n_clusters: int) -> None:
    cells = (n_clusters - 1) * (n - n_clusters + 1)
    if cells > MAX_SPLIT_CELLS:
        raise ValueError(
            f"n_clusters={n_clusters} on {n} distinct values is too large for the exact 1-D "
            f"optimum: it needs {cells:,} split points (4 bytes each, at most "
            f"{MAX_SPLIT_CELLS:,}) and about {cells * max(1, n.bit_length()):,} cost "
            "evaluations; use fewer clusters, or method='kmeans++'"
        )


def optimal_kmeans_1d(
    values: np.ndarray,
    weights: np.ndarray,
    n_clusters: int,
    *,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Globally optimal weighted 1-D k-means.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n,)`` distinct real values, sorted ascending.
    weights : numpy.ndarray
        ``(n,)`` positive weights (e.g. pixel counts).
    n_clusters : int
        Number of clusters, ``1 <= n_clusters <= n``; ``(n_clusters - 1) × (n - n_clusters
        + 1)`` must not exceed ``MAX_SPLIT_CELLS`` (else ``ValueError``, before any work).
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
    _check_size(n, n_clusters)
    values = values.astype(np.float64, copy=False)
    w = weights.astype(np.float64, copy=False)
    W, S, Q = _prefix_sums(values, w)
    width = n - n_clusters + 1
    prev = np.empty(width)
    cur = np.empty(width)
    _first_layer(W, S, Q, prev, width)
    splits = np.empty((max(n_clusters - 1, 0), width), dtype=np.int32)
    stack = np.empty((_STACK, 4), dtype=np.int64)
    state = np.zeros(1, dtype=np.int64)
    total = n_clusters - 1
    report(progress, OPTIMAL, 0, total)
    last = time.perf_counter()
    for m in range(2, n_clusters + 1):
        first = width - 1 if m == n_clusters else 0  # the last layer ends at n - 1 only
        stack[0] = (first, width - 1, m - 1, n - n_clusters + m - 1)
        state[0] = 1
        while not _layer(W, S, Q, prev, cur, splits[m - 2], m, stack, state, _BUDGET):
            if progress is not None and time.perf_counter() - last >= _REPORT_EVERY:
                report(progress, OPTIMAL, m - 2, total)
                last = time.perf_counter()
        prev, cur = cur, prev
        if progress is not None and time.perf_counter() - last >= _REPORT_EVERY:
            report(progress, OPTIMAL, m - 1, total)
            last = time.perf_counter()
    report(progress, OPTIMAL, total, total)

    bounds = [n]
    for m in range(n_clusters, 1, -1):  # the last run of m runs ending at bounds[-1] - 1
        bounds.append(int(splits[m - 2][bounds[-1] - 1 - (m - 1)]))
    bounds.append(0)
    bounds = bounds[::-1]
    labels = np.repeat(np.arange(n_clusters, dtype=np.int32), np.diff(bounds))
    centers = np.bincount(labels, weights=w * values, minlength=n_clusters) / np.bincount(
        labels, weights=w, minlength=n_clusters
    )
    inertia = float(np.dot(w, (values - centers[labels]) ** 2))
    return centers, labels, inertia
