"""``kmeans``: weighted k-means on feature rows, and the checks of its options.

The entry validates everything once, turns ``init`` into starting centres (``init``), and
runs Lloyd's iterations (``lloyd``) from each start, keeping the run of lowest inertia.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ..progress import ProgressCallback
from .compiled import prepare
from .distances import RowSummary, as_rows, summarise
from .grid_rows import GridRows, materialise
from .init import check_init, count_runs, sample_size, start
from .lloyd import IterationCallback, run_lloyd

__all__ = ["SEEDING_BUDGET", "KMeansResult", "check_iteration_options", "kmeans", "make_rng"]

# Most squared-distance terms (rows × features × centre candidates) one k-means++ seeding
# may take: minutes of work here (k=65,535 on 65,536 rows takes ~6e10), refused up front.
SEEDING_BUDGET = 1 << 35


@dataclass(frozen=True)
class KMeansResult:
    """Outcome of :func:`kmeans`.

    Attributes
    ----------
    centers : numpy.ndarray
        ``(k, d)`` float64 cluster centres.
    labels : numpy.ndarray
        ``(n,)`` int32 cluster of every row, in ``0..k-1``.
    inertia : float
        Weighted sum of squared distances of the rows to their centres (float64), computed
        on rows scaled by a power of two and scaled back: it is inf only when the true value
        exceeds the float64 range (features beyond about 1e150).
    n_iter : int
        Lloyd iterations of the best run.
    sums : numpy.ndarray or None
        ``(k, d)`` weighted sum of the feature rows of each cluster, float64, added as
        ``distances.label_sums`` adds them (bit for bit); None when the rows were scaled
        (far from 1, see ``SAFE_EXPONENT``).
    weights : numpy.ndarray
        ``(k,)`` total weight of each cluster (rows when unweighted).

    Examples
    --------
    >>> res = kmeans(np.array([[0.0], [1.0], [10.0]]), 2, seed=0)
    >>> res.centers.ravel().tolist(), res.labels.tolist(), res.inertia, res.n_iter
    ([0.5, 10.0], [0, 0, 1], 0.5, 1)
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int
    sums: np.ndarray | None
    weights: np.ndarray


def make_rng(seed) -> np.random.Generator:
    """Return a Generator made from ``None``, an int or a Generator (used as is).

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        None: fresh entropy; a non-negative int: a reproducible stream.

    Returns
    -------
    numpy.random.Generator
        ``seed`` itself when it is a Generator.

    Raises
    ------
    ValueError
        For anything else (a negative int, a bool, a float, ...).

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
    """Validate ``n_init`` ("auto" or int >= 1), ``max_iter`` (int >= 1) and ``tol`` (>= 0).

    Parameters
    ----------
    n_init : int or "auto"
        Runs from different seedings.
    max_iter : int
        Maximum Lloyd iterations per run.
    tol : float
        Tolerance on the centres' movement, finite.

    Returns
    -------
    n_init : int or "auto"
        As given (an int as a Python int).
    max_iter : int
        As given.
    tol : float
        As a float.

    Raises
    ------
    ValueError
        Naming the first argument that is not allowed.

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


def _check_rows(X) -> np.ndarray | GridRows:
    """Return the rows: float32/float64 arrays, or grid rows as they are."""
    if isinstance(X, GridRows):
        return X
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X has shape {X.shape}: it must be a non-empty 2-D (n_samples, n_features) array"
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {X.dtype}: it must hold real numbers")
    if X.dtype != np.float32:
        X = X.astype(np.float64)
    return X


def _peak(summary: RowSummary) -> float:
    """Largest magnitude of the rows; ValueError if any feature is not finite."""
    if summary.non_finite:
        raise ValueError("X contains NaN or infinite values: every feature must be finite")
    return max(float(np.abs(summary.low).max()), float(np.abs(summary.high).max()))


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


# Rows whose largest magnitude (with ``init``'s) lies in ``[2**-SAFE_EXPONENT, 2**SAFE_EXPONENT)``
# are used in their own unit, without a scaled copy. Scaling by a power of two only shifts
# exponents, so it changes the arithmetic only where a value would overflow or leave the
# normal range; at most 2**64 from 1 neither happens for any real data:
# - overflow: every float64 intermediate (squared distances, per-cluster sums of squared
#   norms, potentials, inertia) is at most W × d × (2 × peak)**2 for total weight W and d
#   features, below 2**1024 for W × d up to 2**890; float32 features below 2**64 (their
#   differences, in the tolerance) are far from float32's 2**128;
# - underflow: a float64 square of a feature difference goes subnormal below 2**-1022,
#   2**-894 below the lowest peak squared (a difference 2**-447 × the peak, far finer than
#   float64's 2**-53 resolution); a float32 difference goes subnormal below 2**-126,
#   2**-62 × the lowest peak, far finer than float32's 2**-24.
# Farther out, rows are scaled to a peak in [0.5, 1) (see _binary_exponent).
SAFE_EXPONENT = 64


def _binary_exponent(peak: float, init: np.ndarray | None) -> int:
    """Return ``e``: divide the rows by ``2**e`` to bring them into a range safe to compute in.

    ``e`` is 0 when the largest magnitude ``peak`` of the rows and of ``init`` lies within
    ``SAFE_EXPONENT`` binary orders of 1 (or is 0); otherwise that magnitude lies in
    ``[2**(e-1), 2**e)``.
    Dividing by ``2**e`` is exact (only the exponents change), so rows scaled this way give
    bit for bit the same arithmetic as unscaled rows whatever the data's unit: no squared
    distance overflows (1e19 in float32, 1e300 in float64) or underflows (1e-25) because of
    the scale alone.
    """
    if init is not None:
        peak = max(peak, float(np.abs(init).max()))
    exponent = int(np.frexp(peak)[1])
    return 0 if peak == 0 or -SAFE_EXPONENT < exponent <= SAFE_EXPONENT else exponent


def _check_seeding_work(n: int, d: int, n_clusters: int) -> None:
    """Refuse, before any work, a k-means++ seeding larger than ``SEEDING_BUDGET``."""
    rows = sample_size(n) if n_clusters <= sample_size(n) else n  # see init.start
    work = rows * d * n_clusters * (2 + int(math.log(n_clusters)))
    if work > SEEDING_BUDGET:
        raise ValueError(
            f"n_clusters={n_clusters} is too many for k-means++ on {n:,} rows: seeding alone "
            f"would take about {work:.1e} squared-distance terms (at most {SEEDING_BUDGET:.1e}, "
            "minutes of work): use fewer clusters, an explicit init, or for one feature "
            "method='optimal'"
        )


def _tolerance(summary: RowSummary, tol: float) -> float:
    """``tol`` × the mean weighted variance of the features (scikit-learn's rule)."""
    return tol * float(summary.variance.mean())


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
    X : array_like or GridRows
        ``(n, d)`` real numbers. float32 rows are stored in float32, anything else in
        float64; every distance, centre sum and the inertia is computed in float64. Grid
        rows (stored columns and pixel coordinates, see ``grid_rows``) give the same
        result as their materialised rows, without writing them out.
    n_clusters : int
        Number of clusters, 1 <= n_clusters <= number of distinct rows.
    sample_weight : array_like, optional
        ``(n,)`` non-negative weights; ``w`` acts exactly as repeating a row ``w`` times.
    init : str or array_like
        ``"k-means++"`` or an explicit ``(n_clusters, d)`` array of starting centres
        (Lloyd from a given start is deterministic).
    n_init : int or "auto"
        Number of runs, the lowest inertia is kept; it must be 1 (or "auto") with an
        explicit ``init``. ``"auto"`` (default) tries three k-means++ starts: three whole runs
        on up to 32,768 rows; on more, three starts converged on a sample, of which only the
        best continues on every row (scikit-learn's ``"auto"`` makes one run).
    max_iter : int
        Lloyd iterations per restart, >= 1.
    tol : float
        Stop when the summed squared centre shift is <= ``tol`` × the mean variance of the
        features, as scikit-learn's ``tol``; 0 runs until the labels stop changing. The
        default is ten times stricter than scikit-learn's 1e-4, which can stop a few per cent
        above the converged inertia on large photos; late iterations cost little here.
    seed : None, int or numpy.random.Generator
        The same seed gives the same result.
    callback : callable, optional
        ``callback(iteration, inertia)`` after every Lloyd assignment, counting from 1
        in each run (a sample's warm-start runs included); an exception raised in it stops
        the run and propagates.
    progress : callable, optional
        ``progress(stage, done, total)`` (see ``napari_kmeans.progress``): stage "seeding"
        after each chosen centre (total ``n_clusters``), "lloyd" after every iteration
        (total ``max_iter``), both also between blocks of rows. An exception raised in it
        stops the work within a few blocks and propagates (cancel buttons).

    Returns
    -------
    KMeansResult
        Centres, labels, inertia and iterations of the best run.

    Raises
    ------
    ValueError
        Naming the argument, when an argument is not allowed, when ``n_clusters`` exceeds
        the distinct rows (:class:`TooFewDistinctRows`), or when a k-means++ seeding would
        exceed ``SEEDING_BUDGET`` squared-distance terms (refused before any work).

    Notes
    -----
    On more than 32,768 rows, k-means++ and the first iterations run on a sample of a
    sixteenth of the rows (at least 8,192, at most 65,536) before Lloyd continues on every
    row (the result is still a Lloyd iteration on all rows).

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
    summary = summarise(X, w)  # one pass: finite values, magnitude and variances
    peak = _peak(summary)
    n_init, max_iter, tol = check_iteration_options(n_init, max_iter, tol)
    explicit = check_init(init, n_clusters, d, n_init)
    if explicit is None:
        _check_seeding_work(n, d, n_clusters)
    rng = make_rng(seed)

    # Rows far from 1 are scaled by a power of two, so the partition does not depend on the
    # data's unit, but not centred: labels come out of the arithmetic that labels any later image
    # with these centres (KMeansModel.predict), only with every exponent shifted.
    exponent = _binary_exponent(peak, explicit)
    # The kernels read row-major rows: the caller's own when they are (a view, never
    # written to; grid rows as they are), otherwise a row-major copy, scaled if needed.
    if exponent == 0:
        columns = X if isinstance(X, GridRows) else np.ascontiguousarray(X).T
    else:
        X = materialise(X)  # data this extreme are rare: written out, then scaled
        scaled = np.empty((n, d), X.dtype)
        columns = np.ldexp(X, -exponent, out=scaled).T
        summary = summarise(as_rows(columns), w)  # variances in the scaled unit
    if explicit is not None:
        explicit = np.ldexp(explicit, -exponent)
    prepare(progress, "kmeans", as_rows(columns), n_clusters)
    tol_abs = _tolerance(summary, tol)

    def in_caller_units(inertia: float) -> float:
        with np.errstate(over="ignore"):  # inf only when the true value exceeds float64
            return float(np.ldexp(inertia, 2 * exponent))

    def in_caller_terms(iteration: int, inertia: float) -> None:
        callback(iteration, in_caller_units(inertia))

    on_iteration = None if callback is None else in_caller_terms  # None: nobody to tell

    runs, sample_starts = count_runs(n_init, n, explicit is not None)
    best = None
    for _ in range(runs):
        centers = start(
            explicit,
            columns,
            w,
            n_clusters,
            sample_starts,
            max_iter,
            tol_abs,
            rng,
            on_iteration,
            progress,
        )
        run = run_lloyd(columns, w, centers, max_iter, tol_abs, on_iteration, progress)
        if best is None or run.inertia < best.inertia:
            best = run
    if explicit is not None and (best.weights == 0).any():
        _warn_empty(best.weights, materialise(X))
    return KMeansResult(
        centers=np.ldexp(best.centers, exponent),
        labels=best.labels,
        inertia=in_caller_units(best.inertia),
        n_iter=best.n_iter,
        sums=None if exponent else best.sums,
        weights=best.weights,
    )


def _warn_empty(weights: np.ndarray, X: np.ndarray) -> None:
    """Say why clusters of an explicit start hold no rows (k-means++ refuses up front)."""
    k, n_empty = len(weights), int((weights == 0).sum())
    n_distinct = len(np.unique(X, axis=0))
    reason = (
        f"init has {k} starting centres but only {n_distinct} distinct rows"
        if n_distinct < k
        else "no row is nearest to their starting centre"
    )
    warnings.warn(f"{n_empty} of {k} clusters are empty: {reason}", UserWarning, stacklevel=3)
