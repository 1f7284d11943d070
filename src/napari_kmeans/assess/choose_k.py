"""``suggest_k``: help choosing the number of clusters of an image.

Every k is fitted on the same rows, the features ``segment`` would cluster with the same
options: the image's distinct values with their pixel counts when there are at most
``FIT_ROWS`` of them (exact), else ``FIT_ROWS`` pixels drawn in proportion to those counts.
The centres are then scored on every pixel (inertia, BIC, and how solid the regions of each
cluster are in the image) and on a sample (silhouette, computed block by block). Work and
memory are bounded by these sizes and by ``SLAB`` pixels at a time, not by the image, and
the caller's ``progress`` is consulted throughout. The silhouettes of every k share one pass
over the sample's distances, after the last fit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np

from ..engine import kmeans, make_rng
from ..engine.distances import nearest, own_sqdist
from ..engine.grid_rows import GridRows, materialise
from ..engine.optimal1d import optimal_kmeans_1d
from ..engine.seeding import greedy_kmeans_plusplus
from ..features.prepare import prepare_image
from ..model import fitting
from ..options import make_options
from ..outputs.recolor import spread_labels
from ..progress import SUGGEST_K, ProgressCallback, report

SOLID = 0.8  # share of a cluster's neighbouring pixels in the same cluster, see suggest_k's rule
SEPARATED = 0.9  # mean silhouette of a cluster sharply distinct in value from the others
NEARLY_SOLID = 0.7  # a larger k this close to SOLID is the runner-up rather than a smaller one
STRUCTURE = 0.08  # above chance by this much: the pixels form regions (see _above_chance)
SLAB = 1 << 22  # pixels compared with their neighbours at a time
FIT_ROWS = 1 << 16  # distinct values fitted exactly up to this many, else pixels drawn
SILHOUETTE_BLOCK = 1 << 22  # distances held at once by the silhouette (32 MiB)
DEFAULT_MAX_K = 12
ASSIGN_ROWS = 1 << 19  # rows labelled between two looks at the progress callback
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
        Why, in plain words.
    coherence : tuple of float
        Per tried k, the least solid cluster's share of same-cluster neighbours: of the
        pairs of neighbouring pixels that involve one of its pixels, the share whose other
        pixel is in the same cluster (1: solid regions; low: scattered specks or thin rims).
    candidates : tuple of int
        The best two numbers of clusters, the recommended one first (one when only one
        k was tried).

    Examples
    --------
    >>> img = np.repeat(np.repeat(np.array([[10, 120, 240]], np.uint8), 30, axis=0), 10, axis=1)
    >>> s = suggest_k(img, range(1, 4))
    >>> s.k, s.recommended, s.silhouette[2], s.candidates
    ((1, 2, 3), 3, 1.0, (3, 2))
    """

    k: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    bic: tuple[float, ...]
    recommended: int
    reason: str
    coherence: tuple[float, ...] = ()
    candidates: tuple[int, ...] = ()

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

    See :func:`_silhouette_points`.
    """
    return [
        math.nan if points is None else float(points.mean())
        for points in _silhouette_points(feats, labelings, check)
    ]


def _silhouette_points(
    feats: np.ndarray, labelings: list[np.ndarray], check: Callable[[], object] | None = None
) -> list[np.ndarray | None]:
    """Silhouette of each point of a sample under each labelling (None: one cluster).

    The sample's distances are computed block by block and shared by every labelling; the
    labellings are taken in groups whose one-hot matrices hold at most ``SILHOUETTE_BLOCK``
    entries, so memory is bounded whatever the sample size and the range of k. ``check()``
    runs after every block (a progress callback that may raise).
    """
    x = feats.astype(np.float64)
    s = len(x)
    coded = [np.unique(labels, return_inverse=True)[1].reshape(-1) for labels in labelings]
    scores: list[np.ndarray | None] = [None] * len(coded)
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
            scores[i] = _point_silhouettes(mean_to[:, lo:hi], sizes[lo:hi], coded[i])
    return scores


def _point_silhouettes(mean_to: np.ndarray, sizes: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Silhouette of each point from its mean distance to each cluster (``(s, k)``)."""
    points = np.arange(len(own))
    own_size = sizes[own]
    a = mean_to[points, own] * own_size / np.maximum(own_size - 1, 1)
    others = mean_to.copy()
    others[points, own] = np.inf
    b = others.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(own_size > 1, (b - a) / np.maximum(a, b), 0.0)
    return np.nan_to_num(score)


def _cluster_silhouettes(points: np.ndarray | None, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean silhouette of each cluster's points in the sample (NaN: none drawn)."""
    if points is None:
        return np.full(k, math.nan)
    counts = np.bincount(labels, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(labels, points, minlength=k) / counts


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


def _coherence(
    labels: np.ndarray, k: int, check: Callable[[], object]
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, its share of same-cluster face neighbours and its share of the pixels.

    ``labels`` is spatial, 1..k (0: not clustered, left out of every pair); ``SLAB`` pixels
    at a time, ``check()`` after each. A cluster with no neighbour pairs gets NaN.
    """
    same = np.zeros(k + 1)
    total = np.zeros(k + 1)
    rows = max(1, SLAB // max(1, math.prod(labels.shape[1:])))
    for start in range(0, labels.shape[0], rows):
        slab = labels[start : start + rows + 1]  # one row more: the pairs across the slab's end
        own = slab[:rows]
        pairs = [(slab[:-1], slab[1:])]
        for axis in range(1, labels.ndim):
            lo = [slice(None)] * labels.ndim
            hi = [slice(None)] * labels.ndim
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            pairs.append((own[tuple(lo)], own[tuple(hi)]))
        for a, b in pairs:
            a, b = a.reshape(-1), b.reshape(-1)
            both = (a > 0) & (b > 0)
            total += np.bincount(a[both], minlength=k + 1) + np.bincount(b[both], minlength=k + 1)
            same += 2 * np.bincount(a[both & (a == b)], minlength=k + 1)
        check()
    sizes = np.bincount(labels.reshape(-1), minlength=k + 1)[1:].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return same[1:] / total[1:], sizes / sizes.sum()


def _above_chance(coherence: np.ndarray, share: np.ndarray) -> float:
    """Return how far the least solid cluster is above chance.

    0 when its pixels sit at random (its neighbours are then in it as often as its share
    of the image), 1 when solid.
    """
    if len(share) < 2:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nanmin((coherence - share) / (1 - share)))


def _percent(x: float) -> str:
    return f"{100 * x:.0f} %"


def _choose(
    ks: list[int],
    smallest: list[float],
    broken: list[float],
    above_chance: list[float],
    silhouettes: list[float],
) -> tuple[int, int | None, str]:
    """Return the indices in ``ks`` of the recommended and the runner-up k, and the reason.

    ``smallest``: the least solid cluster's coherence per k; ``broken``: the least solid
    coherence among the clusters that are neither solid nor sharply distinct in value (NaN:
    none). See :func:`suggest_k` for the rule.
    """
    structured = any(c >= STRUCTURE for c in above_chance if not math.isnan(c))
    if not structured:
        finite = [i for i, s in enumerate(silhouettes) if not math.isnan(s)]
        if not finite:
            return 0, None, f"k = {ks[0]}: the only number of clusters that could be scored"
        ranked = sorted(finite, key=lambda i: (-silhouettes[i], ks[i]))
        best = ranked[0]
        return (
            best,
            ranked[1] if len(ranked) > 1 else None,
            f"k = {ks[best]}: the pixels do not form regions in the image (neighbouring pixels "
            "are no more alike than distant ones), so k is chosen where the clusters are best "
            f"separated by value: with {ks[best]} clusters each pixel is, on average, closest "
            f"to its own cluster by the widest margin (silhouette {silhouettes[best]:.2f}).",
        )
    holds = [math.isnan(c) for c in broken]
    if not holds[0]:
        best = int(np.nanargmax(smallest))
        return (
            best,
            _neighbour(best, smallest),
            f"k = {ks[best]}: even with {ks[0]} clusters some cluster is mostly scattered "
            f"pixels rather than regions (only {_percent(broken[0])} of its neighbouring "
            "pixels are in it), which happens on noisy images: denoise the image before "
            f"clustering. {ks[best]} clusters hold together best.",
        )
    best = next((i - 1 for i, ok in enumerate(holds) if not ok), len(ks) - 1)
    if smallest[best] >= SOLID:
        regions = (
            f"each one forms solid regions in the image (at least {_percent(smallest[best])} "
            "of the neighbouring pixels of each are in it)"
        )
    else:
        regions = (
            "each one forms solid regions in the image or, where it is thin (lines, "
            "outlines), is sharply distinct in value from the others"
        )
    if best == len(ks) - 1:
        return (
            best,
            best - 1 if best > 0 else None,
            f"k = {ks[best]}: with every number of clusters tried, up to {ks[best]}, "
            f"{regions}; the image may hold more classes: try a larger range.",
        )
    after = best + 1
    runner = after if broken[after] >= NEARLY_SOLID or best == 0 else best - 1
    return (
        best,
        runner,
        f"k = {ks[best]}: with {ks[best]} clusters {regions}; with {ks[after]}, one cluster "
        "would be mostly scattered specks or thin rims along the edges of others (only "
        f"{_percent(broken[after])} of its neighbouring pixels are in it).",
    )


def _neighbour(best: int, smallest: list[float]) -> int | None:
    """Return the adjacent tried k whose clusters are more solid (None: only one k)."""
    around = [i for i in (best - 1, best + 1) if 0 <= i < len(smallest)]
    return max(around, key=lambda i: smallest[i]) if around else None


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
    **options,
) -> KSuggestion:
    """Score each number of clusters in ``k_range`` and recommend one.

    The image's features are made exactly as :func:`segment` makes them with the same
    options (colour space, standardisation, spacing, spatial weight and any filtering), and
    each k is clustered with the engine of :func:`segment` (one feature: the globally
    optimal 1-D method; else k-means++ and Lloyd, each k warm-started from the previous
    one), on the distinct values with their pixel counts when there are at most
    ``FIT_ROWS`` (65,536) of them, else on that many pixels drawn with ``seed`` in
    proportion to their counts. Every pixel is then labelled and scored: the inertia; the
    BIC of the Gaussian mixture matching the partition (cluster weights, centres as means,
    one shared spherical variance); the **coherence** of each cluster, the share of its
    pixels' neighbours (along each axis) that are in the same cluster; and the mean
    silhouette on a reproducible sample of ``sample_size`` pixels.

    **Rule.** A class of a real image forms regions: most neighbours of its pixels belong
    to it. A cluster that only splits noise, or collects the blurred or compressed rims
    between two regions, is made of scattered specks or thin lines instead. The
    recommended k is the largest of the first run of tried k whose every cluster keeps at
    least ``SOLID`` (80 %) of its pixels' neighbours (the k just before the first one that
    breaks into specks). If even the smallest k tried breaks up (a noisy image), the k
    whose clusters hold together best. If the pixels form no regions at all (no cluster's
    coherence is ``STRUCTURE`` above what random placement would give, e.g. a list of
    values), the k with the highest silhouette. The runner-up is the next k when its
    least solid cluster still keeps ``NEARLY_SOLID`` (70 %) of its neighbours, else the
    previous k. An image with a single value recommends 1. With ``spatial_weight`` > 0 the
    clusters are compact by construction, so the rule leans to larger k: read the curves.
    Classes thinner than about three pixels (one-pixel lines) count as regions only when
    they are sharply distinct in value (mean silhouette of their pixels >= ``SEPARATED``).

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
        As for :func:`segment`; only pairs of clustered pixels count as neighbours.
    standardize : bool
        As for :func:`segment`.
    sample_size : int
        Pixels of the silhouette's sample, >= 2; its distances are computed in blocks of
        ``SILHOUETTE_BLOCK``, so time grows with its square but memory does not.
    progress : callable, optional
        ``progress("suggest k", done, total)`` with ``done`` the index of the k being
        scored and ``total = len(k_range)``, called repeatedly during each k; an exception
        raised in it stops the work and propagates.
    **options
        Any other option of :func:`segment` (``spacing``, ``spatial_weight``, ...), so that
        the features scored are those the segmentation will cluster; the options of the
        clustering itself (``n_init``, ``max_iter``, ...) are checked and do not change
        the scores.

    Returns
    -------
    KSuggestion
        Scores per k, the recommended k, the best two and why.

    Raises
    ------
    ValueError
        When the image, an option or ``k_range`` is not allowed (k must be at most the
        number of distinct feature vectors).
    TypeError
        When a keyword is not an option of :func:`segment`.

    Examples
    --------
    >>> img = np.zeros((40, 60), np.uint8)
    >>> img[:, 20:40], img[:, 40:] = 120, 240
    >>> img = img + np.random.default_rng(0).integers(0, 3, img.shape).astype(np.uint8)
    >>> s = suggest_k(img, range(1, 6))
    >>> s.recommended, s.candidates
    (3, (3, 2))
    """
    if "n_clusters" in options:
        raise TypeError("suggest_k takes k_range, not n_clusters")
    if isinstance(sample_size, bool) or not isinstance(sample_size, Integral) or sample_size < 2:
        raise ValueError(f"sample_size={sample_size!r} is not allowed: use an integer >= 2")
    checked = make_options(
        2,
        color_space=color_space,
        channel_axis=channel_axis,
        standardize=standardize,
        seed=seed,
        **options,
    )
    prepared = prepare_image(image, checked.channel_axis, mask)
    checked = checked.for_image(prepared.layout)
    rows, _ = fitting.prepared_rows([prepared], checked)
    feats = materialise(rows.features) if isinstance(rows.features, GridRows) else rows.features
    weights = np.ones(len(feats)) if rows.weights is None else rows.weights.astype(np.float64)
    spatial_shape = prepared.layout.spatial_shape

    @functools.cache
    def count_distinct(cap: int) -> int:
        return _distinct_up_to(feats, cap)

    if not (feats != feats[0]).any():
        return KSuggestion(
            (1,),
            (0.0,),
            (math.nan,),
            (math.nan,),
            1,
            "the image has a single value: one cluster",
            (1.0,),
            (1,),
        )
    if k_range is None:
        k_range = range(2, count_distinct(DEFAULT_MAX_K) + 1)
    ks = _k_values(k_range, count_distinct)
    rng = make_rng(seed)
    sample = rng.choice(len(feats), size=sample_size, p=weights / weights.sum())
    floor = 1e-12 * float(np.var(feats[sample].astype(np.float64), axis=0).mean() or 1.0)
    fitter = _Fitter(feats, weights, rng, ks[-1])
    columns = np.ascontiguousarray(feats).T
    inertias, bics, sample_labels, coherences, above_chance = [], [], [], [], []
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
        pixel_labels = labels if rows.histogram is None else rows.histogram.take(labels)
        spatial = spread_labels(prepared, pixel_labels + 1).reshape(spatial_shape)
        coherence, share = _coherence(spatial, k, check)
        coherences.append(coherence)
        above_chance.append(_above_chance(coherence, share))
    points = _silhouette_points(feats[sample], sample_labels, check)  # the last k's check
    report(progress, SUGGEST_K, len(ks), len(ks))
    silhouettes = [math.nan if p is None else float(p.mean()) for p in points]
    smallest, broken = [], []
    for k, coherence, p, labels in zip(ks, coherences, points, sample_labels, strict=True):
        coherence = np.nan_to_num(coherence, nan=0.0)  # no clustered neighbours: no region
        weak = coherence[(coherence < SOLID) & ~(_cluster_silhouettes(p, labels, k) >= SEPARATED)]
        smallest.append(float(coherence.min()) if k > 1 else 1.0)
        broken.append(float(weak.min()) if len(weak) and k > 1 else math.nan)
    best, runner, reason = _choose(ks, smallest, broken, above_chance, silhouettes)
    return KSuggestion(
        tuple(ks),
        tuple(inertias),
        tuple(silhouettes),
        tuple(bics),
        ks[best],
        reason,
        tuple(smallest),
        (ks[best],) if runner is None else (ks[best], ks[runner]),
    )
