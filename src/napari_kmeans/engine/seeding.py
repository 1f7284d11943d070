"""Weighted greedy k-means++ seeding (Arthur & Vassilvitskii 2007; greedy as in scikit-learn)."""

from __future__ import annotations

import math

import numpy as np

from .blocks import map_blocks
from .distances import block_sqdist


class TooFewDistinctRows(ValueError):
    """Fewer distinct positive-weight rows than clusters; ``n_distinct`` says how many, if known."""

    def __init__(self, message: str, n_distinct: int | None = None):
        super().__init__(message)
        self.n_distinct = n_distinct


def _draw(cumulative: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw indices with probability proportional to the increments of ``cumulative``."""
    targets = rng.uniform(size=size) * cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, targets, side="right"), len(cumulative) - 1)


def _sqdist_all(columns: np.ndarray, point: np.ndarray) -> np.ndarray:
    parts = map_blocks(lambda s: block_sqdist(columns[:, s], point), columns.shape[1])
    return np.concatenate(parts).astype(np.float64, copy=False)


def greedy_kmeans_plusplus(
    columns: np.ndarray,
    n_clusters: int,
    weights: np.ndarray,
    rng: np.random.Generator,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Choose ``n_clusters`` starting centres among the rows (columns of ``columns``, ``(d, n)``).

    Each step draws ``2 + ⌊ln k⌋`` candidates with probability proportional to
    ``weight × D²`` (D: distance to the nearest centre chosen so far) and keeps the one that
    lowers the total weighted potential most. With integer weights this draws from the same
    distribution as plain k-means++ on the rows repeated ``weight`` times. Given ``start``
    (``(m, d)`` centres, m <= n_clusters), the seeding continues from those centres.

    Returns
    -------
    centers : (n_clusters, d) float64 array, copies of rows.

    Examples
    --------
    >>> cols = np.array([[0.0, 0.1, 10.0]])
    >>> c = greedy_kmeans_plusplus(cols, 2, np.ones(3), np.random.default_rng(0))
    >>> float(c.max())
    10.0
    """
    n_trials = 2 + int(math.log(n_clusters))
    if start is None:
        start = columns[:, _draw(np.cumsum(weights), rng, 1)].T
    centers = [c.astype(np.float64) for c in start]
    # distances in the rows' dtype, as for every centre drawn below
    closest = _sqdist_all(columns, start[0].astype(columns.dtype))
    for center in start[1:]:
        np.minimum(closest, _sqdist_all(columns, center.astype(columns.dtype)), out=closest)
    for _ in range(len(centers), n_clusters):
        cumulative = np.cumsum(weights * closest)
        if not cumulative[-1] > 0:
            raise TooFewDistinctRows(
                f"only {len(centers)} distinct points carry weight, fewer than n_clusters"
            )
        candidates = columns[:, _draw(cumulative, rng, n_trials)].T.copy()

        def potentials(s: slice, candidates=candidates, closest=closest) -> np.ndarray:
            cols = columns[:, s]
            return np.array(
                [
                    np.einsum("i,i->", weights[s], np.minimum(block_sqdist(cols, c), closest[s]))
                    for c in candidates
                ]
            )

        best = candidates[int(np.argmin(np.sum(map_blocks(potentials, len(closest)), axis=0)))]
        centers.append(best.astype(np.float64))
        np.minimum(closest, _sqdist_all(columns, best), out=closest)
    return np.stack(centers)
