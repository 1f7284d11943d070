"""Starting centres of Lloyd's iterations: the one place that turns ``init`` into centres.

``init`` is either ``"k-means++"`` (greedy weighted k-means++, see ``seeding``) or an explicit
``(k, d)`` array of centres. On many rows, k-means++ starts are first converged on a sample
(a warm start), so that Lloyd on every row begins near a good optimum, where Hamerly's bounds
skip almost every row.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..progress import ProgressCallback
from .blocks import map_tasks
from .distances import as_rows
from .grid_rows import GridRows, materialise, take
from .lloyd import IterationCallback, run_lloyd
from .seeding import TooFewDistinctRows, greedy_kmeans_plusplus, seeding_draws

__all__ = [
    "AUTO_STARTS",
    "SAMPLE_ABOVE",
    "SAMPLE_SIZE",
    "check_init",
    "count_runs",
    "sample_size",
    "start",
]

# Above this many rows, k-means++ seeding and the first Lloyd iterations run on a sample of
# a sixteenth of the rows, at least SAMPLE_LEAST and at most SAMPLE_SIZE. Measured on a
# 512 x 512 photo (113 k distinct colours, k = 6): three whole runs 1.1 s, three starts on
# a sample then one run 0.53 s, inertia within 0.005 % (this machine under load).
SAMPLE_ABOVE = 1 << 15
SAMPLE_LEAST = 1 << 13
SAMPLE_SIZE = 1 << 16
AUTO_STARTS = 3  # k-means++ starts of n_init="auto"


def check_init(init, n_clusters: int, n_features: int, n_init) -> np.ndarray | None:
    """Validate ``init``: the explicit starting centres as float64, or None for k-means++.

    Parameters
    ----------
    init : str or array_like
        ``"k-means++"`` or an explicit ``(n_clusters, n_features)`` array of finite numbers.
    n_clusters, n_features : int
        The shape an explicit ``init`` must have.
    n_init : int or str
        The validated number of runs: an explicit ``init`` allows only 1 or ``"auto"``.

    Returns
    -------
    numpy.ndarray or None
        A float64 copy of the explicit centres, or None for k-means++.

    Examples
    --------
    >>> check_init("k-means++", 2, 1, "auto") is None
    True
    >>> check_init([[0], [1]], 2, 1, 1).tolist()
    [[0.0], [1.0]]
    """
    if isinstance(init, str):
        if init == "k-means++":
            return None
        raise ValueError(f"init={init!r} is not allowed: use 'k-means++' or a (k, d) array")
    centers = np.array(init, dtype=np.float64)
    if centers.shape != (n_clusters, n_features) or not np.isfinite(centers).all():
        raise ValueError(
            f"init has shape {centers.shape}: an explicit init must be a finite "
            f"(n_clusters, n_features) = ({n_clusters}, {n_features}) array"
        )
    if n_init not in ("auto", 1):
        raise ValueError(f"n_init={n_init} is not allowed with an explicit init: use 1")
    return centers


def count_runs(n_init, n_rows: int, explicit: bool) -> tuple[int, int]:
    """Count the whole Lloyd runs to make, and the k-means++ starts tried on a sample for each.

    ``n_init="auto"`` tries ``AUTO_STARTS`` starts: whole runs on up to ``SAMPLE_ABOVE``
    rows, starts on a sample (only the best continuing on every row) on more. An explicit
    ``init`` makes one run.

    Parameters
    ----------
    n_init : int or "auto"
        The checked ``n_init`` of :func:`napari_kmeans.kmeans`.
    n_rows : int
        Number of rows to cluster.
    explicit : bool
        Whether ``init`` gave the starting centres.

    Returns
    -------
    runs : int
        Whole Lloyd runs, the best kept.
    starts : int
        Starts converged on a sample before each run (1: none).

    Examples
    --------
    >>> count_runs("auto", 100, False), count_runs("auto", 10**6, False), count_runs(4, 10, False)
    ((3, 1), (1, 3), (4, 1))
    """
    if explicit:
        return 1, 1
    if isinstance(n_init, Integral):
        return int(n_init), 1
    return (1, AUTO_STARTS) if n_rows > SAMPLE_ABOVE else (AUTO_STARTS, 1)


def sample_size(n_rows: int) -> int:
    """Return how many rows k-means++ seeds on: all up to ``SAMPLE_ABOVE``, else a sample.

    Parameters
    ----------
    n_rows : int
        Rows to cluster.

    Returns
    -------
    int
        ``n_rows``, or a sixteenth of them within ``[SAMPLE_LEAST, SAMPLE_SIZE]``.

    Examples
    --------
    >>> sample_size(1000), sample_size(40_000), sample_size(12_000_000)
    (1000, 8192, 65536)
    """
    if n_rows <= SAMPLE_ABOVE:
        return n_rows
    return min(SAMPLE_SIZE, max(n_rows // 16, SAMPLE_LEAST))


def _distinguishable_failure(columns: np.ndarray, weights: np.ndarray | None, n_clusters: int):
    """Explain why k-means++ found fewer than ``n_clusters`` points apart from each other."""
    rows = columns.T if weights is None else columns.T[weights > 0]
    n_distinct = len(np.unique(rows, axis=0))
    if n_distinct < n_clusters:
        return TooFewDistinctRows(
            f"n_clusters={n_clusters} is more than the {n_distinct} distinct rows of X "
            f"(with positive weight): use at most {n_distinct} clusters",
            n_distinct,
        )
    return ValueError(
        f"n_clusters={n_clusters}: X has {n_distinct} distinct rows, but fewer than "
        f"{n_clusters} of them are apart by more than {columns.dtype} rounding of their squared "
        "distances (values spanning too many orders of magnitude): use fewer clusters or "
        "float64 rows"
    )


def _sample_starts(
    sample, sample_w, n_clusters, draws, max_iter, tol_abs, callback, progress
) -> list:
    """Seed k-means++ from each of ``draws`` and run Lloyd on the sample; return the runs.

    Each start has its draws already (``seeding_draws``) and Lloyd draws nothing, so the
    starts are independent: when no callback follows their iterations, they run side by
    side on the engine's threads, each exactly as alone.
    """

    def converge(uniforms: np.ndarray):
        centers = greedy_kmeans_plusplus(sample, n_clusters, sample_w, uniforms, progress=progress)
        return run_lloyd(sample, sample_w, centers, max_iter, tol_abs, callback, progress)

    if callback is not None or progress is not None:
        return [converge(uniforms) for uniforms in draws]
    return map_tasks([lambda uniforms=uniforms: converge(uniforms) for uniforms in draws])


def start(
    init: np.ndarray | None,
    columns: np.ndarray | GridRows,
    sample_weight: np.ndarray | None,
    n_clusters: int,
    n_starts: int,
    max_iter: int,
    tol_abs: float,
    rng: np.random.Generator,
    callback: IterationCallback | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Return the starting centres of one run: ``init``, or the best of ``n_starts`` k-means++.

    Parameters
    ----------
    init : numpy.ndarray or None
        Explicit centres (returned as they are) or None for k-means++.
    columns : numpy.ndarray or GridRows
        The rows as ``(d, n)`` columns (any layout), or grid rows: only the sample drawn is
        written out, or every row when seeding on every row.
    sample_weight : numpy.ndarray or None
        ``(n,)`` weights, None for all ones.
    n_clusters : int
        Number of centres.
    n_starts : int
        k-means++ seedings to converge on a sample and choose from; on at most
        ``SAMPLE_ABOVE`` rows (or a sample smaller than ``n_clusters`` or too uniform for
        it) one seeding on every row is returned instead.
    max_iter, tol_abs : int, float
        Lloyd's stopping rules on the sample (``tol_abs``: summed squared centre shift).
    rng : numpy.random.Generator
        The draws of the seedings and of the sample.
    callback : callable, optional
        ``callback(iteration, inertia)`` after each Lloyd assignment on the sample.
    progress : callable, optional
        ``progress(stage, done, total)``, passed to the seeding and to Lloyd on the sample.

    Returns
    -------
    numpy.ndarray
        ``(n_clusters, d)`` float64 starting centres.

    Examples
    --------
    >>> cols = np.array([[0.0, 0.1, 10.0]])
    >>> float(start(None, cols, None, 2, 1, 10, 0.0, np.random.default_rng(0)).max())
    10.0
    """
    if init is not None:
        return init
    rows = as_rows(columns)
    n = rows.shape[0]
    if n_clusters > n:
        raise ValueError(f"n_clusters={n_clusters} is more than the {n} rows of X")
    if n > SAMPLE_ABOVE and n_clusters <= sample_size(n):  # else: seeded on every row
        drawn = np.sort(rng.choice(n, sample_size(n), replace=False))
        sample = take(rows, drawn).T  # a row-major copy of the drawn rows
        sample_w = None if sample_weight is None else sample_weight[drawn]
        draws = [seeding_draws(rng, n_clusters) for _ in range(n_starts)]
        try:
            runs = _sample_starts(
                sample, sample_w, n_clusters, draws, max_iter, tol_abs, callback, progress
            )
        except TooFewDistinctRows:
            pass  # a sample too uniform for k clusters: seed on every row instead
        else:
            return min(runs, key=lambda run: run.inertia).centers
    if isinstance(columns, GridRows):
        columns = materialise(columns).T
    try:
        return greedy_kmeans_plusplus(columns, n_clusters, sample_weight, rng, progress=progress)
    except TooFewDistinctRows:
        raise _distinguishable_failure(columns, sample_weight, n_clusters) from None
