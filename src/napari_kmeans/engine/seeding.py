"""Weighted greedy k-means++ seeding (Arthur & Vassilvitskii 2007; greedy as in scikit-learn)."""

from __future__ import annotations

import math

import numpy as np

from ..progress import SEEDING, ProgressCallback, report
from .blocks import map_blocks
from .compiled import kernels
from .distances import as_rows, rounding_slack, weights_or_empty


class TooFewDistinctRows(ValueError):
    """Fewer distinct positive-weight rows than clusters; ``n_distinct`` says how many, if known.

    Parameters
    ----------
    message : str
        The error message.
    n_distinct : int, optional
        Number of distinct rows, when counted.

    Examples
    --------
    >>> same = np.array([[1.0, 1.0]])
    >>> greedy_kmeans_plusplus(same, 2, None, np.random.default_rng(0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_kmeans.engine.seeding.TooFewDistinctRows: ...
    """

    def __init__(self, message: str, n_distinct: int | None = None):
        super().__init__(message)
        self.n_distinct = n_distinct


def _draw(cumulative: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Draw indices with probability proportional to the increments of ``cumulative``."""
    targets = uniforms * cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, targets, side="right"), len(cumulative) - 1)


def _n_trials(n_clusters: int) -> int:
    return 2 + int(math.log(n_clusters))


def seeding_draws(rng: np.random.Generator, n_clusters: int, n_start: int = 0) -> np.ndarray:
    """Return the uniform numbers one seeding takes from ``rng``, drawn ahead.

    A seeding always takes the same count (one for the first centre unless ``n_start``
    centres are given, then ``2 + ⌊ln k⌋`` per centre): several seedings drawn ahead in
    turn, then run side by side, choose what they would choose one after the other.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator to draw from.
    n_clusters : int
        Number of centres the seeding chooses.
    n_start : int
        Centres given to start from (0: the first is drawn).

    Returns
    -------
    numpy.ndarray
        The float64 uniform numbers in ``[0, 1)``, in the order the seeding uses them.

    Examples
    --------
    >>> len(seeding_draws(np.random.default_rng(0), 8))  # 1 + 7 centres x (2 + 2) candidates
    29
    """
    steps = max(n_clusters - max(n_start, 1), 0)
    return rng.uniform(size=int(n_start == 0) + steps * _n_trials(n_clusters))


def greedy_kmeans_plusplus(
    columns: np.ndarray,
    n_clusters: int,
    weights: np.ndarray | None,
    rng: np.random.Generator | np.ndarray,
    start: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Choose ``n_clusters`` starting centres among the rows (columns of ``columns``, ``(d, n)``).

    Each step draws ``2 + ⌊ln k⌋`` candidates with probability proportional to
    ``weight × D²`` (D: float64 distance to the nearest centre chosen so far) and keeps the
    one that lowers the total weighted potential most. With integer weights this draws from
    the same distribution as plain k-means++ on the rows repeated ``weight`` times. A row
    within half the gap from its closest centre to every candidate is nearer no candidate
    (triangle inequality, Raff 2021), so its distances to them are not computed; the
    potentials are the same float64 sums, term for term and in row order. Given
    ``start`` (``(m, d)`` centres, m <= n_clusters), the seeding continues from those centres.
    ``progress(SEEDING, chosen, n_clusters)`` is called after each centre and between blocks
    of rows; an exception raised in it stops the seeding.

    Parameters
    ----------
    columns : numpy.ndarray
        ``(d, n)`` feature columns (any layout).
    n_clusters : int
        Number of centres to choose.
    weights : numpy.ndarray or None
        ``(n,)`` non-negative weight of each row; None: 1 each.
    rng : numpy.random.Generator or numpy.ndarray
        Draws the candidates, or the numbers :func:`seeding_draws` drew from it ahead.
    start : numpy.ndarray, optional
        ``(m, d)`` centres already chosen, m <= ``n_clusters``.
    progress : callable, optional
        ``progress(stage, done, total)``; raise in it to stop.

    Returns
    -------
    numpy.ndarray
        ``(n_clusters, d)`` float64 centres, copies of rows (``start`` first).

    Raises
    ------
    TooFewDistinctRows
        When fewer than ``n_clusters`` distinct rows carry weight.

    Examples
    --------
    >>> cols = np.array([[0.0, 0.1, 10.0]])
    >>> c = greedy_kmeans_plusplus(cols, 2, np.ones(3), np.random.default_rng(0))
    >>> float(c.max())
    10.0
    """
    rows = as_rows(columns)
    n, d = rows.shape
    w = weights_or_empty(weights)
    draw_weights = np.ones(n) if weights is None else w
    n_trials = _n_trials(n_clusters)
    draws = rng
    if isinstance(rng, np.random.Generator):
        draws = seeding_draws(rng, n_clusters, 0 if start is None else len(start))
    if start is None:
        start, draws = rows[_draw(np.cumsum(draw_weights), draws[:1])], draws[1:]
    centers = np.empty((max(n_clusters, len(start)), d))
    chosen = 0
    slack = rounding_slack(rows, np.asarray(start, dtype=np.float64))

    def check() -> None:
        report(progress, SEEDING, chosen, n_clusters)

    checked = None if progress is None else check
    closest = np.full(n, np.inf)  # squared distance to the closest centre chosen so far
    owner = np.zeros(n, dtype=np.int32)  # which centre that is
    mass = np.full(n, np.inf)  # weight × closest: each row's term of the potential

    def add(point: np.ndarray) -> None:
        nonlocal chosen
        map_blocks(
            lambda part: kernels.shrink_block(
                rows, part.start, part.stop, w, point, chosen, closest, owner, mass
            ),
            n,
            check=checked,
        )
        centers[chosen] = point
        chosen += 1

    for center in start:
        add(np.array(center, dtype=np.float64))
    while chosen < n_clusters:
        check()
        cumulative = np.cumsum(mass)
        if not cumulative[-1] > 0:
            raise TooFewDistinctRows(
                f"only {chosen} distinct points carry weight, fewer than n_clusters"
            )
        picked, draws = _draw(cumulative, draws[:n_trials]), draws[n_trials:]
        candidates = rows[picked].astype(np.float64)
        reach = kernels.candidates_reach(candidates, centers[:chosen], slack)
        parts = map_blocks(
            lambda part, candidates=candidates, reach=reach: kernels.potentials_block(
                rows, part.start, part.stop, w, closest, owner, mass, candidates, reach
            ),
            n,
            check=checked,
        )
        add(candidates[int(np.argmin(np.sum(parts, axis=0)))])
    check()
    return centers[:chosen].copy()
