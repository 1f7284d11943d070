"""``suggest_k``: help choosing the number of clusters of an image.

Every k is fitted on the same rows: the image's distinct values with their pixel counts when
there are at most ``FIT_ROWS`` of them (exact), else ``FIT_ROWS`` pixels drawn in proportion
to those counts. The centres are then scored on every pixel (inertia, BIC) and on a sample
(silhouette, computed block by block). Work and memory are bounded by these sizes, not by
the image, and the caller's ``progress`` is consulted throughout. The silhouettes of every k
share one pass over the sample's distances, after the last fit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np

from ..engine import kmeans, make_rng
from ..engine.blocks import ASSIGN_ROWS, SILHOUETTE_BLOCK
from ..engine.distances import nearest, own_sqdist
from ..engine.optimal1d import optimal_kmeans_1d
from ..engine.seeding import greedy_kmeans_plusplus
from ..features import color_spaces
from ..features.prepare import prepare_image
from ..model import fitting
from ..options import check_flag
from ..progress import SUGGEST_K, ProgressCallback, report

PARSIMONY = 0.1  # see suggest_k's rule
FIT_ROWS = 1 << 16  # distinct values fitted exactly up to this many, else pixels drawn
DEFAULT_MAX_K = 12
FIT_TOL = 1e-4  # scikit-learn's default: enough to compare k, ten times faster to reach


@dataclass(frozen=True)
class KSuggestion:
    """Scores of each tried k and the recommended one.

    Attributes
    ----------
    k : tuple of int
        The tried numbers of clusters, ascending.
    inertia : tuple of float
        Inertia over every pixel, one per tried k.
    silhouette : tuple of float
        Mean silhouette on the sample, one per tried k (NaN for k = 1).
    bic : tuple of float
        Bayesian information criterion, one per tried k.
    recommended : int
        The suggested number of clusters.
    reason : str
        One sentence saying why.

    Examples
    --------
    >>> img = np.repeat(np.array([[10, 120, 240]], np.uint8), 30, axis=0)
    >>> s = suggest_k(img, range(1, 4))
    >>> s.k, s.recommended, s.silhouette[2]
    ((1, 2, 3), 3, 1.0)
    """

    k: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    bic: tuple[float, ...]
    recommended: int
    reason: str

    def to_dict(self) -> dict:
        """Return the scores as a JSON-friendly dict.

        Returns
        -------
        dict
            One entry per field, by name.

        Examples
        --------
        >>> img = np.repeat(np.array([[10, 120, 240]], np.uint8), 30, axis=0)
        >>> suggest_k(img, range(2, 4)).to_dict()["k"]
        (2, 3)
        """
        return asdict(self)


def _k_values(k_range, count_distinct: Callable[[int], int]) -> list[int]:
    """Return the sorted integers of ``k_range``, checked against the distinct rows.

    ``count_distinct(cap)`` returns the number of distinct rows, or ``cap`` if it is at
    least ``cap``.
    """
    try:
        ks = sorted(
            {
                int(k)
                for k in k_range
                if isinstance(k, Integral) and k is not True and k is not False
            }
        )
        complete = len(ks) == len(set(k_range))
    except TypeError:
        ks, complete = [], False
    valid = bool(ks) and complete and ks[0] >= 1
    n_distinct = count_distinct(ks[-1] if valid else DEFAULT_MAX_K)
    if not valid or ks[-1] > n_distinct:
        at_most = (
            f"{n_distinct}"
            if n_distinct < (ks[-1] if valid else DEFAULT_MAX_K)
            else (f"at least {n_distinct}")
        )
        raise ValueError(
            f"k_range={k_range!r} is not allowed: give integers from 1 to the number of "
            f"distinct feature vectors of this image ({at_most})"
        )
    return ks


def _bic(inertia: float, counts: np.ndarray, d: int, floor: float) -> float:
    """Return the BIC of the Gaussian mixture matching a k-means partition.

    Cluster weights n_c/n, the centres as means, one shared spherical variance
    inertia / (n d) (Pelleg & Moore).
    """
    n, k = counts.sum(), len(counts)
    variance = max(inertia / (n * d), floor)
    counts = counts[counts > 0]
    log_likelihood = (
        float(np.sum(counts * np.log(counts / n)))
        - n * d / 2 * math.log(2 * math.pi * variance)
        - inertia / (2 * variance)
    )
    n_parameters = k * d + (k - 1) + 1
    return -2 * log_likelihood + n_parameters * math.log(n)


def _distance_blocks(x: np.ndarray):
    """Yield ``(start, Euclidean distances from rows start.. of x to every row)``.

    Direct differences (no ``|x|² − 2x·y + |y|²`` cancellation), at most
    ``SILHOUETTE_BLOCK`` distances per block.
    """
    rows = max(1, SILHOUETTE_BLOCK // len(x))
    for start in range(0, len(x), rows):
        block = x[start : start + rows]
        distance = np.zeros((len(block), len(x)))
        for j in range(x.shape[1]):
            diff = block[:, j, None] - x[None, :, j]
            diff *= diff
            distance += diff
        np.sqrt(distance, out=distance)
        yield start, distance


def _silhouettes(
    feats: np.ndarray, labelings: list[np.ndarray], check: Callable[[], object] | None = None
) -> list[float]:
    """Mean silhouette (Rousseeuw 1987) of a sample under each labelling (NaN: one cluster).

    The sample's distances are computed block by block and shared by every labelling; the
    labellings are taken in groups whose one-hot matrices hold at most ``SILHOUETTE_BLOCK``
    entries, so memory is bounded whatever the sample size and the range of k. ``check()``
    runs after every block (a progress callback that may raise).
    """
    x = feats.astype(np.float64)
    s = len(x)
    coded = [np.unique(labels, return_inverse=True)[1].reshape(-1) for labels in labelings]
    scores = [math.nan] * len(coded)
    todo = [i for i, own in enumerate(coded) if own.max() > 0]
    while todo:
        group, width = [], 0
        while todo and (not group or (width + coded[todo[0]].max() + 1) * s <= SILHOUETTE_BLOCK):
            width += coded[todo[0]].max() + 1
            group.append(todo.pop(0))
        member = np.zeros((s, width))
        offsets = np.cumsum([0] + [coded[i].max() + 1 for i in group])
        for i, offset in zip(group, offsets[:-1], strict=True):
            member[np.arange(s), offset + coded[i]] = 1.0
        mean_to = np.empty((s, width))  # mean distance from each point to each cluster
        for start, distance in _distance_blocks(x):
            mean_to[start : start + len(distance)] = distance @ member
            if check is not None:
                check()
        sizes = member.sum(axis=0)
        mean_to /= sizes
        for i, lo, hi in zip(group, offsets[:-1], offsets[1:], strict=True):
            scores[i] = _silhouette_score(mean_to[:, lo:hi], sizes[lo:hi], coded[i])
    return scores


def _silhouette_score(mean_to: np.ndarray, sizes: np.ndarray, own: np.ndarray) -> float:
    """Mean silhouette from each point's mean distance to each cluster (``(s, k)``)."""
    points = np.arange(len(own))
    own_size = sizes[own]
    a = mean_to[points, own] * own_size / np.maximum(own_size - 1, 1)
    others = mean_to.copy()
    others[points, own] = np.inf
    b = others.min(axis=1)
    score = np.where(own_size > 1, (b - a) / np.maximum(a, b), 0.0)
    return float(np.nan_to_num(score).mean())


class _Fitter:
    """Fits every k on the same weighted rows.

    The rows are all distinct values (with their weights) when there are at most
    ``FIT_ROWS``, else ``FIT_ROWS`` pixels drawn in proportion to the weights, as distinct
    rows with their multiplicities (unless that draw holds fewer than ``max_k`` distinct
    rows: then every row, compressed). One feature: the exact optimum of those rows.
    Several: Lloyd to ``FIT_TOL`` from one k-means++ seeding for the first k, and for each
    later k from the previous k's centres with k-means++ continued from them (a warm start:
    the inertia on the fitted rows never grows with k).
    """

    def __init__(
        self, feats: np.ndarray, weights: np.ndarray, rng: np.random.Generator, max_k: int
    ):
        if len(feats) > FIT_ROWS:
            drawn = rng.choice(len(feats), size=FIT_ROWS, p=weights / weights.sum())
            rows, counts = np.unique(drawn, return_counts=True)
            if len(np.unique(feats[rows], axis=0)) >= max_k:
                feats, weights = feats[rows], counts.astype(np.float64)
            else:  # a few values hold nearly every pixel: compress them all
                feats, inverse = np.unique(feats, axis=0, return_inverse=True)
                weights = np.bincount(inverse.reshape(-1), weights, minlength=len(feats))
        self.feats, self.weights, self.rng = feats, weights, rng
        self.columns = np.ascontiguousarray(feats).T
        self.previous: np.ndarray | None = None
        if feats.shape[1] == 1:
            self.values, inverse = np.unique(feats[:, 0], return_inverse=True)
            self.counts = np.bincount(inverse.reshape(-1), weights, minlength=len(self.values))

    def fit(self, k: int, progress: ProgressCallback | None) -> np.ndarray:
        """Return the ``(k, d)`` centres for ``k`` clusters."""
        if self.feats.shape[1] == 1:
            centers, _, _ = optimal_kmeans_1d(self.values, self.counts, k, progress=progress)
            return centers[:, None]
        options = {"sample_weight": self.weights, "tol": FIT_TOL, "progress": progress}
        if self.previous is None or len(self.previous) >= k:
            run = kmeans(self.feats, k, n_init=1, seed=self.rng, **options)
        else:
            grown = greedy_kmeans_plusplus(
                self.columns, k, self.weights, self.rng, start=self.previous
            )
            run = kmeans(self.feats, k, init=grown, **options)
        self.previous = run.centers
        return self.previous


def _assign(
    columns: np.ndarray, weights: np.ndarray, centers: np.ndarray, check: Callable[[], object]
) -> tuple[np.ndarray, float]:
    """Return the nearest centre of every row and the weighted inertia.

    ``ASSIGN_ROWS`` rows at a time, with ``check()`` after each part.
    """
    labels = np.empty(columns.shape[1], dtype=np.int32)
    inertia = 0.0
    for start in range(0, columns.shape[1], ASSIGN_ROWS):
        part = slice(start, start + ASSIGN_ROWS)
        labels[part] = nearest(columns[:, part], centers)
        sq = own_sqdist(columns[:, part], labels[part], centers)
        inertia += float(np.einsum("i,i->", sq, weights[part]))
        check()
    return labels, inertia


def _distinct_up_to(feats: np.ndarray, cap: int) -> int:
    """Return the number of distinct rows of ``feats``, or ``cap`` if it is at least ``cap``.

    A first block usually settles it: counting millions of float rows costs a sort.
    """
    head = feats[:4096]
    n_distinct = len(np.unique(head, axis=0))
    if n_distinct < cap and len(head) < len(feats):
        n_distinct = len(np.unique(feats, axis=0))
    return min(n_distinct, cap)


def suggest_k(
    image,
    k_range=None,
    *,
    seed=0,
    color_space: str = "rgb",
    channel_axis="auto",
    mask=None,
    standardize: bool = False,
    sample_size: int = 2000,
    progress: ProgressCallback | None = None,
) -> KSuggestion:
    """Score each number of clusters in ``k_range`` and recommend one.

    For each k the image is clustered with the engine of :func:`segment` (one-channel data
    with the globally optimal 1-D method; else k-means++ and Lloyd, each k warm-started
    from the previous one), on the image's distinct values with their pixel counts when
    there are at most ``FIT_ROWS`` (65,536) of them, else on that many pixels drawn with
    ``seed`` in proportion to their counts. Three scores are reported: the inertia of
    those centres over every pixel; the mean silhouette on a reproducible sample of
    ``sample_size`` pixels (drawn with ``seed``); and the BIC of the Gaussian mixture
    matching the partition of every pixel (cluster weights, centres as means, one shared
    spherical variance).

    **Rule:** the recommended k is the smallest whose BIC is within ``PARSIMONY`` (10 %) of
    the span of the BIC values from the lowest one. With truly separate classes the BIC
    drops steeply up to their number and is flat after it, so this is the number of
    classes; on photographs, whose colours are no Gaussian mixture, the BIC keeps falling
    slowly with k, and the rule stops where more clusters stop paying much. An image with
    a single value recommends 1.

    Parameters
    ----------
    image : numpy.ndarray
        The image, as for :func:`segment`.
    k_range : iterable of int, optional
        Numbers of clusters to try; default ``range(2, 13)``, capped at the number of
        distinct feature vectors of the image.
    seed : None, int or numpy.random.Generator
        Draws of the samples and of k-means++; the same seed gives the same scores.
    color_space : {"rgb", "lab", "oklab", "gray"}
        As for :func:`segment`.
    channel_axis : "auto", "rgb", None or int
        As for :func:`segment`.
    mask : array_like, optional
        As for :func:`segment`.
    standardize : bool
        As for :func:`segment`.
    sample_size : int
        Pixels of the silhouette's sample, >= 2; its distances are computed in blocks of
        ``SILHOUETTE_BLOCK``, so time grows with its square but memory does not.
    progress : callable, optional
        ``progress("suggest k", done, total)`` with ``done`` the index of the k being
        scored and ``total = len(k_range)``, called repeatedly during each k; an exception
        raised in it stops the work and propagates.

    Returns
    -------
    KSuggestion
        Scores per k, the recommended k and why.

    Raises
    ------
    ValueError
        When the image, an option or ``k_range`` is not allowed (k must be at most the
        number of distinct feature vectors).

    Examples
    --------
    >>> img = np.repeat(np.array([[10, 120, 240]], np.uint8), 30, axis=0)
    >>> img = img + np.random.default_rng(0).integers(0, 3, img.shape).astype(np.uint8)
    >>> suggest_k(img, range(1, 6)).recommended
    3
    """
    prepared = prepare_image(image, channel_axis, mask)
    n_channels = prepared.values.shape[1]
    color_space = color_spaces.check(color_space, n_channels).name
    standardize = check_flag("standardize", standardize)
    if isinstance(sample_size, bool) or not isinstance(sample_size, Integral) or sample_size < 2:
        raise ValueError(f"sample_size={sample_size!r} is not allowed: use an integer >= 2")
    spacing = (1.0,) * len(prepared.table.spatial_shape)
    rows, _ = fitting.pixel_rows(
        [(prepared.values, prepared.table.spatial_shape, prepared.included)],
        color_space,
        0.0,
        spacing,
        standardize=standardize,
    )
    feats = rows.features
    weights = np.ones(len(feats)) if rows.weights is None else rows.weights.astype(np.float64)

    @functools.cache
    def count_distinct(cap: int) -> int:
        return _distinct_up_to(feats, cap)

    if not (feats != feats[0]).any():
        return KSuggestion(
            (1,), (0.0,), (math.nan,), (math.nan,), 1, "the image has a single value: one cluster"
        )
    if k_range is None:
        k_range = range(2, count_distinct(DEFAULT_MAX_K) + 1)
    ks = _k_values(k_range, count_distinct)
    rng = make_rng(seed)
    sample = rng.choice(len(feats), size=sample_size, p=weights / weights.sum())
    floor = 1e-12 * float(np.var(feats[sample].astype(np.float64), axis=0).mean() or 1.0)
    fitter = _Fitter(feats, weights, rng, ks[-1])
    columns = np.ascontiguousarray(feats).T
    inertias, bics, sample_labels = [], [], []
    for index, k in enumerate(ks):

        def check(index=index) -> None:
            report(progress, SUGGEST_K, index, len(ks))

        def inner(stage: str, done: int, total: int, check=check) -> None:
            check()

        check()
        centers = fitter.fit(k, None if progress is None else inner)
        labels, inertia = _assign(columns, weights, centers, check)
        counts = np.bincount(labels, weights, minlength=k)
        inertias.append(inertia)
        bics.append(float(_bic(inertia, counts, feats.shape[1], floor)))
        sample_labels.append(labels[sample])
    silhouettes = _silhouettes(feats[sample], sample_labels, check)  # the last k's check
    report(progress, SUGGEST_K, len(ks), len(ks))
    bic = np.array(bics)
    lowest = int(np.argmin(bic))
    best = int(np.flatnonzero(bic - bic[lowest] <= PARSIMONY * (bic.max() - bic[lowest]))[0])
    reason = (
        f"k={ks[best]} is the smallest k whose BIC ({bics[best]:.6g}) is within "
        f"{PARSIMONY:.0%} of the BIC range from the lowest (k={ks[lowest]})"
        + ("" if math.isnan(silhouettes[best]) else f"; its silhouette is {silhouettes[best]:.3f}")
    )
    return KSuggestion(
        tuple(ks), tuple(inertias), tuple(silhouettes), tuple(bics), ks[best], reason
    )
