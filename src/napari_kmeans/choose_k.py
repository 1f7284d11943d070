"""``suggest_k``: help choosing the number of clusters of an image."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np

from . import color_spaces
from . import model as model_
from .engine import make_rng
from .options import make_options
from .result import prepare_image

PARSIMONY = 0.1  # see suggest_k's rule


@dataclass(frozen=True)
class KSuggestion:
    """Scores of each tried k and the recommended one.

    Attributes
    ----------
    k, inertia, silhouette, bic : tuples aligned with the tried numbers of clusters
        (silhouette is NaN for k = 1).
    recommended : the suggested number of clusters.
    reason : one sentence saying why.
    """

    k: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    bic: tuple[float, ...]
    recommended: int
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _k_values(k_range, n_distinct: int) -> list[int]:
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
    if not ks or not complete or ks[0] < 1 or ks[-1] > n_distinct:
        raise ValueError(
            f"k_range={k_range!r} is not allowed: give integers from 1 to {n_distinct}, the "
            "number of distinct feature vectors of this image"
        )
    return ks


def _bic(inertia: float, counts: np.ndarray, d: int, floor: float) -> float:
    """BIC of the Gaussian mixture matching a k-means partition: cluster weights n_c/n,
    the centres as means, one shared spherical variance inertia / (n d) (Pelleg & Moore)."""
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


def _silhouette(feats: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw 1987) of a sample, from its full distance matrix."""
    x = feats.astype(np.float64)
    distance = np.sqrt(
        np.maximum(
            np.einsum("ij,ij->i", x, x)[:, None] - 2 * x @ x.T + np.einsum("ij,ij->i", x, x)[None],
            0,
        )
    )
    clusters = np.unique(labels)
    member = labels[:, None] == clusters[None]  # (s, k)
    sizes = member.sum(axis=0)
    mean_to = (distance @ member) / sizes  # mean distance from each point to each cluster
    own = member.argmax(axis=1)
    own_size = sizes[own]
    a = mean_to[np.arange(len(x)), own] * own_size / np.maximum(own_size - 1, 1)
    mean_to[np.arange(len(x)), own] = np.inf
    b = mean_to.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(a, b), 0.0)
    return float(np.nan_to_num(s).mean())


def suggest_k(
    image,
    k_range=None,
    *,
    seed=0,
    color_space: str = "rgb",
    channel_axis="auto",
    mask=None,
    sample_size: int = 2000,
) -> KSuggestion:
    """Score each number of clusters in ``k_range`` and recommend one.

    ``k_range`` defaults to ``range(2, 13)``, capped at the number of distinct feature
    vectors of the image.

    For each k the image is clustered as :func:`segment` would (one-channel data with the
    globally optimal 1-D method, so its scores are exact), and three scores are reported:
    the inertia; the mean silhouette on a reproducible sample of ``sample_size`` pixels
    (drawn with ``seed``); and the BIC of the Gaussian mixture matching the partition
    (cluster weights, centres as means, one shared spherical variance).

    **Rule:** the recommended k is the smallest whose BIC is within ``PARSIMONY`` (10 %) of
    the span of the BIC values from the lowest one. With truly separate classes the BIC
    drops steeply up to their number and is flat after it, so this is the number of
    classes; on photographs, whose colours are no Gaussian mixture, the BIC keeps falling
    slowly with k, and the rule stops where more clusters stop paying much. An image with
    a single value recommends 1.

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
    if isinstance(sample_size, bool) or not isinstance(sample_size, Integral) or sample_size < 2:
        raise ValueError(f"sample_size={sample_size!r} is not allowed: use an integer >= 2")
    spacing = (1.0,) * len(prepared.table.spatial_shape)
    rows, recipe = model_.pixel_rows(
        [(prepared.values, prepared.table.spatial_shape, prepared.included)],
        color_space,
        0.0,
        spacing,
    )
    feats = rows.features
    weights = np.ones(len(feats)) if rows.weights is None else rows.weights.astype(np.float64)
    n_distinct = len(np.unique(feats, axis=0))
    if n_distinct == 1:
        return KSuggestion(
            (1,), (0.0,), (math.nan,), (math.nan,), 1, "the image has a single value: one cluster"
        )
    if k_range is None:
        k_range = range(2, min(12, n_distinct) + 1)
    ks = _k_values(k_range, n_distinct)
    rng = make_rng(seed)
    method = "optimal" if feats.shape[1] == 1 else "kmeans++"
    sample = rng.choice(len(feats), size=sample_size, p=weights / weights.sum())
    floor = 1e-12 * float(np.var(feats[sample].astype(np.float64), axis=0).mean() or 1.0)
    inertias, silhouettes, bics = [], [], []
    for k in ks:
        model, labels = model_.fit_rows(rows, recipe, make_options(k, method=method, seed=rng))
        inertias.append(model.inertia)
        bics.append(_bic(model.inertia, model.counts, feats.shape[1], floor))
        sample_labels = labels[sample]
        single = len(np.unique(sample_labels)) < 2
        silhouettes.append(math.nan if single else _silhouette(feats[sample], sample_labels))
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
