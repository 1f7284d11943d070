"""Our k-means: weighted greedy k-means++ seeding and Lloyd iterations on feature rows.

``kmeans`` is the generic entry point on ``(n, d)`` rows; ``segment`` feeds it the distinct
pixel values of an image with their counts as weights (see ``histogram``), or every pixel
when values cannot repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ..progress import ProgressCallback
from .lloyd import IterationCallback, run_lloyd
from .seeding import TooFewDistinctRows, greedy_kmeans_plusplus

__all__ = [
    "AUTO_STARTS",
    "KMeansResult",
    "TooFewDistinctRows",
    "check_iteration_options",
    "kmeans",
    "make_rng",
]


@dataclass(frozen=True)
class KMeansResult:
    """Outcome of :func:`kmeans`: ``centers (k, d)``, ``labels (n,)`` in ``0..k-1``,
    ``inertia`` (weighted sum of squared distances, float64) and ``n_iter`` of the best run."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def make_rng(seed) -> np.random.Generator:
    """A Generator from ``None``, an int or a Generator (used as is).

    Examples
    --------
    >>> bool(make_rng(0).integers(10) == make_rng(0).integers(10))
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(
        f"seed={seed!r} is not allowed: use None, a non-negative int or a numpy.random.Generator"
    )


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {low}")
    return int(value)


def check_iteration_options(n_init, max_iter, tol) -> tuple[int | str, int, float]:
    """Validated ``n_init`` ("auto" or int >= 1), ``max_iter`` (int >= 1), ``tol`` (>= 0).

    Examples
    --------
    >>> check_iteration_options("auto", 300, 1e-4)
    ('auto', 300, 0.0001)
    """
    if not (isinstance(n_init, str) and n_init == "auto"):
        n_init = _check_int("n_init", n_init, 1)
    max_iter = _check_int("max_iter", max_iter, 1)
    if isinstance(tol, bool) or not isinstance(tol, Real) or not tol >= 0 or not np.isfinite(tol):
        raise ValueError(f"tol={tol!r} is not allowed: it must be a finite number >= 0")
    return n_init, max_iter, float(tol)


def _check_rows(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X has shape {X.shape}: it must be a non-empty 2-D (n_samples, n_features) array"
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {X.dtype}: it must hold real numbers")
    if X.dtype != np.float32:
        X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values: every feature must be finite")
    return X


def _check_weights(sample_weight, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight has shape {w.shape}: it must have shape ({n},), one per row"
        )
    if not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise ValueError("sample_weight must be finite and >= 0 with a positive total")
    return w


def _distinct_count(X: np.ndarray, w: np.ndarray | None) -> int:
    rows = X if w is None else X[w > 0]
    return len(np.unique(rows, axis=0))


# Above this many rows, k-means++ seeding and the first Lloyd iterations run on a sample of
# a sixteenth of the rows, at most SAMPLE_SIZE.
SAMPLE_ABOVE = 1 << 17
SAMPLE_SIZE = 1 << 16
AUTO_STARTS = 3  # k-means++ starts of n_init="auto"


def _plusplus_start(
    columns, w, n_clusters, max_iter, tol_abs, rng, n_starts: int, callback, progress
) -> np.ndarray:
    """Starting centres from greedy k-means++.

    On more than ``SAMPLE_ABOVE`` rows, ``n_starts`` seedings each run Lloyd to convergence
    on a uniform sample (a sixteenth of the rows, at most ``SAMPLE_SIZE``; weights kept: an
    unbiased estimate of the objective) and the best is returned, so the full data starts
    near a good optimum, where Hamerly's bounds skip almost every row.
    """
    n = columns.shape[1]
    if n > SAMPLE_ABOVE:
        rows = np.sort(rng.choice(n, min(SAMPLE_SIZE, n // 16), replace=False))
        sample = np.ascontiguousarray(columns[:, rows])
        sample_w = None if w is None else w[rows]
        try:
            runs = [
                run_lloyd(
                    sample,
                    sample_w,
                    greedy_kmeans_plusplus(sample, n_clusters, sample_w, rng, progress),
                    max_iter,
                    tol_abs,
                    callback,
                    progress,
                )
                for _ in range(n_starts)
            ]
        except TooFewDistinctRows:
            pass  # a sample too uniform for k clusters: seed on every row instead
        else:
            return min(runs, key=lambda run: run.inertia).centers
    return greedy_kmeans_plusplus(columns, n_clusters, w, rng, progress)


def kmeans(
    X,
    n_clusters: int,
    sample_weight=None,
    init="k-means++",
    n_init="auto",
    max_iter: int = 300,
    tol: float = 1e-5,
    seed=None,
    callback: IterationCallback | None = None,
    progress: ProgressCallback | None = None,
) -> KMeansResult:
    """Weighted k-means on feature rows: greedy k-means++ seeding, then Lloyd.

    Parameters
    ----------
    X : (n, d) array of real numbers. float32 rows are processed in float32, anything else in
        float64; centre sums and the inertia are always float64.
    n_clusters : number of clusters, 1 <= n_clusters <= number of distinct rows.
    sample_weight : (n,) non-negative weights; ``w`` acts exactly as repeating a row ``w`` times.
    init : ``"k-means++"`` or an explicit ``(n_clusters, d)`` array of starting centres
        (Lloyd from a given start is deterministic).
    n_init : number of runs, the lowest inertia is kept; it must be 1 (or "auto") with an
        explicit ``init``. ``"auto"`` (default) tries three k-means++ starts: three whole runs
        on up to 131,072 rows; on more, three starts converged on a sample, of which only the
        best continues on every row (scikit-learn's ``"auto"`` makes one run).
    max_iter : Lloyd iterations per restart, >= 1.
    tol : stop when the summed squared centre shift is <= ``tol`` × the mean variance of the
        features, as scikit-learn's ``tol``; 0 runs until the labels stop changing. The
        default is ten times stricter than scikit-learn's 1e-4, which can stop a few per cent
        above the converged inertia on large photos; late iterations cost little here.
        On more than 131,072 rows, k-means++ and the first iterations run on a sample of a
        sixteenth of the rows (at most 65,536) before Lloyd continues on every row (the
        result is still a Lloyd iteration on all rows).
    seed : None, int or ``numpy.random.Generator``; the same seed gives the same result.
    callback : ``callback(iteration, inertia)`` after every Lloyd assignment, counting from 1
        in each run (a sample's warm-start runs included); an exception raised in it stops
        the run and propagates (progress bars, cancel buttons).
    progress : ``progress(stage, done, total)`` (see ``napari_kmeans.progress``): stage
        SEEDING per chosen centre, LLOYD per iteration (total ``max_iter``), and between
        blocks of rows; an exception raised in it stops the work and propagates.

    Returns
    -------
    KMeansResult

    Examples
    --------
    >>> X = np.array([[0.0, 0], [0, 1], [10, 10], [10, 11]])
    >>> res = kmeans(X, 2, seed=0)
    >>> sorted(res.centers.tolist())
    [[0.0, 0.5], [10.0, 10.5]]
    >>> res.inertia
    1.0
    """
    X = _check_rows(X)
    n, d = X.shape
    n_clusters = _check_int("n_clusters", n_clusters, 1)
    w = _check_weights(sample_weight, n)
    n_init, max_iter, tol = check_iteration_options(n_init, max_iter, tol)
    explicit = not (isinstance(init, str) and init == "k-means++")
    if isinstance(init, str) and explicit:
        raise ValueError(f"init={init!r} is not allowed: use 'k-means++' or a (k, d) array")
    if explicit:
        start = np.asarray(init, dtype=np.float64)
        if start.shape != (n_clusters, d) or not np.isfinite(start).all():
            raise ValueError(
                f"init has shape {start.shape}: an explicit init must be a finite "
                f"(n_clusters, n_features) = ({n_clusters}, {d}) array"
            )
        if n_init not in ("auto", 1):
            raise ValueError(f"n_init={n_init} is not allowed with an explicit init: use 1")
    rng = make_rng(seed)

    # Rows are not centred: labels must come out of exactly the arithmetic that labels any
    # later image with these centres (KMeansModel.predict). The kernels read the rows as
    # they are: columns are a view.
    columns = X.T
    if w is None:
        variance = sum(float(np.var(column, dtype=np.float64)) for column in columns) / d
    else:
        total = w.sum()
        variance = 0.0
        for column in columns:
            centred = column - column.dtype.type(np.einsum("i,i->", w, column) / total)
            variance += np.einsum("i,i,i->", w, centred, centred) / total / d
    tol_abs = tol * float(variance)

    if n_init == "auto":  # three starts: on a sample when there is one, else whole runs
        runs, sample_starts = (1, AUTO_STARTS) if n > SAMPLE_ABOVE else (AUTO_STARTS, 1)
        runs = 1 if explicit else runs
    else:
        runs, sample_starts = n_init, 1
    best = None
    for _ in range(runs):
        if explicit:
            centers = start
        else:
            if n_clusters > n:
                raise ValueError(f"n_clusters={n_clusters} is more than the {n} rows of X")
            try:
                centers = _plusplus_start(
                    columns,
                    w,
                    n_clusters,
                    max_iter,
                    tol_abs,
                    rng,
                    sample_starts,
                    callback,
                    progress,
                )
            except TooFewDistinctRows:
                n_distinct = _distinct_count(X, w)
                raise TooFewDistinctRows(
                    f"n_clusters={n_clusters} is more than the {n_distinct} distinct rows of X "
                    f"(with positive weight): use at most {n_distinct} clusters",
                    n_distinct,
                ) from None
        run = run_lloyd(columns, w, centers, max_iter, tol_abs, callback, progress)
        if best is None or run.inertia < best.inertia:
            best = run
    return KMeansResult(
        centers=best.centers,
        labels=best.labels,
        inertia=best.inertia,
        n_iter=best.n_iter,
    )
