"""Segmentation quality on generated images with ground truth, ours beside its peers.

Every image is built from a fixed seed, with the true class of every pixel known, in the
groups a microscopy user meets: 2-D cells/nuclei/spots under Poisson noise at three SNRs
(8- and 16-bit, a +-20 % illumination gradient), two channels whose ranges are ~50x apart,
3-D anisotropic stacks (z spacing 2) at low and medium SNR, colour regions saved as JPEG,
H&E / IHC slides made by Beer-Lambert stain combination, two-class texture mosaics and clean
high-SNR images. Each result is scored by the adjusted Rand index (ARI) against the truth,
macro Dice after Hungarian matching of the labels, boundary noise (the share of pixels on a
boundary of the result that lies farther than one pixel from any true boundary) and the
component ratio (connected components of the result / of the truth).

The methods are given only what a user gives: k, the channel axis and the voxel spacing.

Examples
--------
As a library (other benchmarks and tuning scripts import it)::

    from bench_quality import cases, score, evaluate, ours
    table = evaluate(ours({"smooth": "auto"}), quick=True)   # {group: {"ari": ...}}
    print(table["2-D low SNR"]["ari"])

From the command line::

    python benchmarks/bench_quality.py --quick
    python benchmarks/bench_quality.py --quick --only ours --options '{"smooth": "auto"}'
    python benchmarks/bench_quality.py --quick --suggest-k
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

GROUPS = (
    "2-D low SNR",
    "2-D medium SNR",
    "2-D high SNR",
    "two channels",
    "3-D low SNR",
    "3-D medium SNR",
    "colour + JPEG",
    "H&E / IHC",
    "textures",
    "clean",
)
METRICS = ("ari", "dice", "boundary_noise", "component_ratio", "seconds")
# Photons of the background per pixel; objects are brighter by their level (below).
PHOTONS = {"low": 4.0, "medium": 16.0, "high": 100.0, "clean": 2000.0}
GRADIENT = 0.2  # illumination varies by +-20 % across the field
PSF_SIGMA = 1.0  # optical blur (pixels) before photon noise


@dataclass(frozen=True)
class Case:
    """One generated image with its truth and what a user would tell the segmenter.

    ``truth`` holds the class of every pixel, 0..k-1, on the image's spatial shape.
    ``channel_axis`` and ``spacing`` are the keywords of ``nk.segment``; ``rgb`` says the
    last axis is RGB colour.
    """

    name: str
    group: str
    image: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    k: int
    channel_axis: object = None
    spacing: tuple[float, ...] | None = None
    rgb: bool = False

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.truth.shape

    def channels_last(self) -> np.ndarray:
        """The image as (pixels, channels) float64 rows (channels last already)."""
        img = self.image.astype(np.float64)
        return img.reshape(-1, 1) if img.ndim == self.truth.ndim else img.reshape(-1, img.shape[-1])


# ----------------------------------------------------------------------------- generators


def _blur(x: np.ndarray, sigma) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(x, sigma, mode="nearest")


def _gradient(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Illumination 1 +- GRADIENT, linear along a random direction of the last two axes."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape[-2:]), indexing="ij")
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    ramp /= np.abs(ramp).max()
    return np.broadcast_to(1 + GRADIENT * ramp, shape)


def _ellipsoids(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    spacing: Sequence[float],
    count: int,
    radius: tuple[float, float],
    inner: float | None = None,
) -> np.ndarray:
    """Label map: 0 outside, 1 inside random ellipsoids (2 in a concentric core of
    relative size ``inner``), radii in physical units."""
    truth = np.zeros(shape, np.int64)
    grids = np.meshgrid(
        *(np.arange(n) * s for n, s in zip(shape, spacing, strict=True)), indexing="ij", sparse=True
    )
    extent = [n * s for n, s in zip(shape, spacing, strict=True)]
    for _ in range(count):
        centre = [rng.uniform(0, e) for e in extent]
        radii = rng.uniform(*radius, size=len(shape))
        if len(shape) == 3:
            radii[0] = min(radii[0], extent[0] / 3)
        r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True))
        truth[(r2 <= 1) & (truth == 0)] = 1
        if inner is not None:
            truth[r2 <= inner**2] = 2
    return truth


def _fluorescence(
    rng: np.random.Generator,
    truth: np.ndarray,
    levels: Sequence[float],
    photons: float,
    bits: int,
    gradient: bool,
    blur,
) -> np.ndarray:
    """Poisson photon counts of the blurred object levels, scaled into ``bits`` bits."""
    expected = np.asarray(levels, float)[truth]
    expected = _blur(expected, blur) if blur else expected
    if gradient:
        expected = expected * _gradient(rng, truth.shape)
    counts = rng.poisson(expected * photons).astype(np.float64)
    top = max(levels) * photons * (1 + GRADIENT) * 1.3  # headroom for noise
    if bits == 8:
        scaled = 10 + counts * (235 / top)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    gain = min(8.0, 60000 / top)
    return np.clip(np.rint(100 + counts * gain), 0, 65535).astype(np.uint16)


def _microscopy_2d(rng, kind: str, size: int, photons: float, bits: int, gradient: bool):
    """Nuclei (k 2), cells with a nucleus (k 3) or spots (k 2) on a dark background."""
    shape = (size, size)
    area = size * size
    if kind == "nuclei":
        truth = _ellipsoids(rng, shape, (1, 1), max(3, area // 1800), (7, 14))
        levels = (1.0, 3.0)
    elif kind == "cells":
        truth = _ellipsoids(rng, shape, (1, 1), max(2, area // 3000), (12, 20), inner=0.5)
        levels = (1.0, 2.0, 4.0)
    else:
        truth = _ellipsoids(rng, shape, (1, 1), max(6, area // 300), (2.0, 3.5))
        levels = (1.0, 4.0)
    image = _fluorescence(rng, truth, levels, photons, bits, gradient, PSF_SIGMA)
    return image, truth, len(levels)


def _microscopy_3d(rng, kind: str, shape: tuple[int, int, int], photons: float):
    """3-D nuclei or cells, z spacing 2, anisotropic blur, 16-bit."""
    spacing = (2.0, 1.0, 1.0)
    volume = shape[1] * shape[2]
    if kind == "nuclei":
        truth = _ellipsoids(rng, shape, spacing, max(4, volume // 1500), (8, 14))
        levels = (1.0, 3.0)
    else:
        truth = _ellipsoids(rng, shape, spacing, max(3, volume // 2500), (13, 20), inner=0.5)
        levels = (1.0, 2.0, 4.0)
    image = _fluorescence(rng, truth, levels, photons, 16, True, (0.5, PSF_SIGMA, PSF_SIGMA))
    return image, truth, len(levels), spacing


def _two_channels(rng, size: int, k: int):
    """Nuclear channel (range ~4000) and cytoplasm channel (range ~80); k 3: background,
    cytoplasm, nucleus; k 4 adds regions bright in both (co-localised)."""
    shape = (size, size)
    truth = _ellipsoids(rng, shape, (1, 1), max(2, size * size // 3000), (12, 20), inner=0.5)
    if k == 4:
        blobs = _ellipsoids(rng, shape, (1, 1), max(2, size * size // 6000), (6, 10))
        truth[(blobs == 1) & (truth == 0)] = 3
    nuclear = np.array([1.0, 1.0, 4.0, 4.0])[truth]
    cytoplasm = np.array([1.0, 4.0, 1.0, 4.0])[truth]
    channels = []
    for expected, gain in ((nuclear, 50.0), (cytoplasm, 1.0)):
        expected = _blur(expected, PSF_SIGMA) * _gradient(rng, shape)
        counts = rng.poisson(expected * 16.0)
        channels.append(np.clip(np.rint(10 + gain * counts), 0, 65535).astype(np.uint16))
    return np.stack(channels, axis=-1), truth


def _voronoi(rng, shape: tuple[int, int], n_cells: int, k: int) -> np.ndarray:
    """Voronoi regions of random seeds, each of one of k classes (every class used)."""
    seeds = rng.uniform(0, 1, (n_cells, 2)) * shape
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    d2 = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    cell = d2.argmin(axis=-1)
    classes = np.concatenate([np.arange(k), rng.integers(0, k, n_cells - k)])
    rng.shuffle(classes)
    truth = classes[cell]
    present = np.unique(truth)
    return np.searchsorted(present, truth)  # classes whose cells were swallowed drop out


def _distinct_colours(rng, k: int, min_distance: float = 70.0) -> np.ndarray:
    colours: list[np.ndarray] = []
    while len(colours) < k:
        c = rng.uniform(20, 235, 3)
        if all(np.linalg.norm(c - o) >= min_distance for o in colours):
            colours.append(c)
    return np.array(colours)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, buffer = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1])


def _colour_regions(rng, size: int, k: int, noise: float, quality: int | None):
    truth = _voronoi(rng, (size, size), 4 * k, k)
    k = int(truth.max()) + 1
    image = _distinct_colours(rng, k)[truth] + rng.normal(0, noise, (size, size, 3))
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return (image if quality is None else _jpeg(image, quality)), truth, k


# Optical densities per unit concentration (Ruifrok & Johnston, as in skimage.color).
STAINS = {
    "hematoxylin": np.array([0.65, 0.70, 0.29]),
    "eosin": np.array([0.07, 0.99, 0.11]),
    "dab": np.array([0.27, 0.57, 0.78]),
}


def _stained(rng, size: int, stain: str, noise: float):
    """H&E (k 4: glass, stroma, nuclei, red cells) or IHC (k 3: glass/unstained,
    negative nuclei, DAB-positive nuclei) by Beer-Lambert combination of stains."""
    shape = (size, size)
    if stain == "he":
        truth = np.where(_voronoi(rng, shape, 10, 2) == 1, 1, 0)  # stroma vs glass
        truth[_ellipsoids(rng, shape, (1, 1), max(3, size * size // 1200), (5, 9)) > 0] = 2
        truth[_ellipsoids(rng, shape, (1, 1), max(4, size * size // 1200), (3, 5)) > 0] = 3
        concentration = {  # per class: glass, stroma, nuclei, red cells
            "hematoxylin": np.array([0.03, 0.15, 1.1, 0.05]),
            "eosin": np.array([0.03, 0.5, 0.25, 1.8]),
        }
    else:
        truth = np.zeros(shape, np.int64)
        nuclei = _ellipsoids(rng, shape, (1, 1), max(4, size * size // 900), (5, 9))
        positive = _ellipsoids(rng, shape, (1, 1), max(2, size * size // 1800), (5, 9))
        truth[nuclei > 0] = 1
        truth[positive > 0] = 2
        concentration = {  # glass/unstained tissue, negative nuclei, DAB-positive
            "hematoxylin": np.array([0.08, 0.9, 0.35]),
            "dab": np.array([0.02, 0.02, 0.9]),
        }
    texture = 1 + 0.08 * _blur(rng.normal(0, 1, shape), 2) / 0.14
    od = np.zeros((*shape, 3))
    for name, per_class in concentration.items():
        c = per_class[truth] * texture * (1 + rng.normal(0, noise / 100, shape))
        od += np.clip(c, 0, None)[..., None] * STAINS[name]
    rgb = 245 * np.exp(-od) + rng.normal(0, noise, (*shape, 3))
    rgb = np.clip(np.rint(_blur(rgb, (0.7, 0.7, 0))), 0, 255).astype(np.uint8)
    return _jpeg(rgb, 85), truth, int(truth.max()) + 1


def _texture(rng, shape, kind: str) -> np.ndarray:
    """A texture of mean 0 and standard deviation 1."""
    if kind.startswith("noise"):
        t = _blur(rng.normal(0, 1, shape), float(kind[5:]))
    else:  # stripes<angle in degrees>
        angle = np.deg2rad(float(kind[7:]))
        yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        t = np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / 8)
        t = t + 0.3 * rng.normal(0, 1, shape)
    return (t - t.mean()) / t.std()


def _mosaic(rng, size: int, kinds: tuple[str, str]):
    """Two textures of equal mean and variance, in Voronoi regions (k 2)."""
    shape = (size, size)
    truth = _voronoi(rng, shape, 6, 2)
    a, b = (_texture(rng, shape, kind) for kind in kinds)
    image = 128 + 35 * np.where(truth == 0, a, b)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), truth


def cases(quick: bool = False, groups: Iterable[str] | None = None, seed: int = 0) -> list[Case]:
    """Build the benchmark's images (deterministic for a given ``quick`` and ``seed``).

    ``quick``: 128-pixel images and 16x96x96 stacks instead of 256 and 32x256x256.
    ``groups``: a subset of ``GROUPS``.
    """
    wanted = set(GROUPS if groups is None else groups)
    unknown = wanted - set(GROUPS)
    if unknown:
        raise ValueError(f"groups={sorted(unknown)!r} unknown: choose from {GROUPS}")
    size = 128 if quick else 256
    stack = (16, 96, 96) if quick else (32, 256, 256)
    out: list[Case] = []
    for snr, group in (
        ("low", "2-D low SNR"),
        ("medium", "2-D medium SNR"),
        ("high", "2-D high SNR"),
    ):
        if group not in wanted:
            continue
        for kind in ("nuclei", "cells", "spots"):
            for bits in (8, 16):
                rng = np.random.default_rng(
                    [
                        seed,
                        1,
                        ("low", "medium", "high").index(snr),
                        ("nuclei", "cells", "spots").index(kind),
                        bits,
                    ]
                )
                image, truth, k = _microscopy_2d(rng, kind, size, PHOTONS[snr], bits, True)
                out.append(Case(f"{kind} {snr} SNR {bits}-bit", group, image, truth, k))
    if "two channels" in wanted:
        for k in (3, 4):
            for variant in (0, 1):
                rng = np.random.default_rng([seed, 2, k, variant])
                image, truth = _two_channels(rng, size, k)
                out.append(
                    Case(
                        f"two channels k {k} #{variant}",
                        "two channels",
                        image,
                        truth,
                        int(truth.max()) + 1,
                        channel_axis=-1,
                    )
                )
    for snr, group in (("low", "3-D low SNR"), ("medium", "3-D medium SNR")):
        if group not in wanted:
            continue
        for kind in ("nuclei", "cells"):
            rng = np.random.default_rng(
                [seed, 3, ("low", "medium").index(snr), ("nuclei", "cells").index(kind)]
            )
            image, truth, k, spacing = _microscopy_3d(rng, kind, stack, PHOTONS[snr])
            out.append(Case(f"3-D {kind} {snr} SNR", group, image, truth, k, spacing=spacing))
    if "colour + JPEG" in wanted:
        for k in (3, 4, 5, 6):
            rng = np.random.default_rng([seed, 4, k])
            image, truth, k_true = _colour_regions(rng, size, k, 6.0, 70)
            out.append(
                Case(
                    f"colour regions k {k} JPEG 70",
                    "colour + JPEG",
                    image,
                    truth,
                    k_true,
                    channel_axis="rgb",
                    rgb=True,
                )
            )
    if "H&E / IHC" in wanted:
        for stain in ("he", "ihc"):
            for noise in (3.0, 12.0):
                rng = np.random.default_rng([seed, 5, stain == "he", int(noise)])
                image, truth, k = _stained(rng, size, stain, noise)
                name = f"{'H&E' if stain == 'he' else 'IHC'} noise {noise:g}"
                out.append(Case(name, "H&E / IHC", image, truth, k, channel_axis="rgb", rgb=True))
    if "textures" in wanted:
        for i, kinds in enumerate(
            (("noise1", "noise4"), ("stripes0", "noise2"), ("stripes0", "stripes90"))
        ):
            rng = np.random.default_rng([seed, 6, i])
            image, truth = _mosaic(rng, size, kinds)
            out.append(Case(f"mosaic {kinds[0]}/{kinds[1]}", "textures", image, truth, 2))
    if "clean" in wanted:
        for i, kind in enumerate(("nuclei", "cells", "spots")):
            rng = np.random.default_rng([seed, 7, i])
            image, truth, k = _microscopy_2d(rng, kind, size, PHOTONS["clean"], 16, False)
            out.append(Case(f"{kind} clean 16-bit", "clean", image, truth, k))
        rng = np.random.default_rng([seed, 7, 9])
        image, truth, k = _colour_regions(rng, size, 4, 2.0, None)
        out.append(
            Case("colour regions k 4 clean", "clean", image, truth, k, channel_axis="rgb", rgb=True)
        )
    return out


# ----------------------------------------------------------------------------- scores


def _contingency(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pixels of each (true class, result label) pair; rows and columns of present values."""
    _, t = np.unique(np.asarray(truth).reshape(-1), return_inverse=True)
    _, p = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
    t, p = t.reshape(-1), p.reshape(-1)
    width = int(p.max()) + 1
    table = np.bincount(t * width + p, minlength=(int(t.max()) + 1) * width)
    return table.reshape(-1, width).astype(np.float64)


def adjusted_rand_index(labels: np.ndarray, truth: np.ndarray) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985) of two labellings of the same pixels."""
    table = _contingency(labels, truth)
    n = table.sum()

    def pairs(x):
        return float(np.sum(x * (x - 1) / 2))

    index = pairs(table)
    rows, cols = pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2)
    top = (rows + cols) / 2
    if top == expected:  # both labellings trivial (one class, or every pixel its own)
        return 1.0
    return (index - expected) / (top - expected)


def macro_dice(labels: np.ndarray, truth: np.ndarray) -> float:
    """Mean Dice over the true classes, each matched to at most one result label by the
    Hungarian method (maximum total Dice); an unmatched class scores 0."""
    from scipy.optimize import linear_sum_assignment

    table = _contingency(labels, truth)
    dice = 2 * table / (table.sum(axis=1)[:, None] + table.sum(axis=0)[None, :])
    rows, cols = linear_sum_assignment(dice, maximize=True)
    return float(dice[rows, cols].sum() / table.shape[0])


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels with a face neighbour of another label."""
    edge = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        differs = labels[tuple(lo)] != labels[tuple(hi)]
        edge[tuple(lo)] |= differs
        edge[tuple(hi)] |= differs
    return edge


def boundary_noise(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels on a boundary of the result farther than one pixel (any direction)
    from every true boundary: specks and ragged edges, not the true outlines."""
    from scipy import ndimage

    near_true = ndimage.binary_dilation(
        _boundaries(np.asarray(truth)), ndimage.generate_binary_structure(truth.ndim, truth.ndim)
    )
    return float(np.mean(_boundaries(np.asarray(labels)) & ~near_true))


def count_components(labels: np.ndarray) -> int:
    """Connected regions of equal label (face neighbours), over all labels."""
    from skimage.measure import label

    _, coded = np.unique(np.asarray(labels), return_inverse=True)
    return int(label(coded.reshape(labels.shape) + 1, background=0, connectivity=1).max())


def score(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ARI, macro Dice, boundary noise and component ratio of ``labels`` against ``truth``."""
    labels = np.asarray(labels)
    if labels.shape != truth.shape:
        raise ValueError(f"labels of shape {labels.shape} for a truth of shape {truth.shape}")
    return {
        "ari": adjusted_rand_index(labels, truth),
        "dice": macro_dice(labels, truth),
        "boundary_noise": boundary_noise(labels, truth),
        "component_ratio": count_components(labels) / count_components(truth),
    }


# ----------------------------------------------------------------------------- methods

Segmenter = Callable[[np.ndarray, int, Case], np.ndarray]


def ours(options: dict | None = None) -> Segmenter:
    """``nk.segment`` given k, the channel axis, the spacing, seed 0 and ``options``."""
    import napari_kmeans as nk

    options = dict(options or {})

    def segment(image: np.ndarray, k: int, case: Case) -> np.ndarray:
        keywords = {"channel_axis": case.channel_axis, "seed": 0, **options}
        if case.spacing is not None:
            keywords.setdefault("spacing", case.spacing)
        return nk.segment(image, n_clusters=k, **keywords).labels

    return segment


def _rows(case: Case) -> np.ndarray:
    return case.channels_last()


def _grey(case: Case) -> np.ndarray:
    """One value per pixel: luma for colour, the channel itself, else the first principal
    component of the standardised channels."""
    rows = _rows(case)
    if case.rgb:
        return rows[:, :3] @ np.array([0.299, 0.587, 0.114])
    if rows.shape[1] == 1:
        return rows[:, 0]
    z = (rows - rows.mean(axis=0)) / rows.std(axis=0)
    return z @ np.linalg.svd(z[:: max(1, len(z) // 50000)], full_matrices=False)[2][0]


def opencv_kmeans(image: np.ndarray, k: int, case: Case) -> np.ndarray:
    import cv2

    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 0.01)
    _, labels, _ = cv2.kmeans(
        _rows(case).astype(np.float32), k, None, criteria, 3, cv2.KMEANS_PP_CENTERS
    )
    return labels.reshape(case.spatial_shape)


def sklearn_kmeans(image: np.ndarray, k: int, case: Case) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=3, random_state=0).fit_predict(_rows(case)).reshape(case.spatial_shape)


def gaussian_mixture(image: np.ndarray, k: int, case: Case) -> np.ndarray:
    from sklearn.mixture import GaussianMixture

    rows = _rows(case)
    sample = np.random.default_rng(0).choice(len(rows), min(len(rows), 20000), replace=False)
    gmm = GaussianMixture(k, random_state=0).fit(rows[sample])
    return gmm.predict(rows).reshape(case.spatial_shape)


def multi_otsu(image: np.ndarray, k: int, case: Case) -> np.ndarray:
    from skimage.filters import threshold_multiotsu

    grey = _grey(case)
    nbins = {2: 256, 3: 256, 4: 128}.get(k, 48)  # its search grows as nbins ** (k - 1)
    thresholds = threshold_multiotsu(grey, classes=k, nbins=nbins)
    return np.digitize(grey, thresholds).reshape(case.spatial_shape)


def slic_kmeans(image: np.ndarray, k: int, case: Case) -> np.ndarray:
    """SLIC superpixels (about 50 pixels each), then k-means of their mean values."""
    from skimage.segmentation import slic
    from sklearn.cluster import KMeans

    rows = _rows(case)
    scaled = (rows - rows.min(axis=0)) / np.maximum(np.ptp(rows, axis=0), 1e-12)
    multichannel = rows.shape[1] > 1
    shaped = (
        scaled.reshape(*case.spatial_shape, -1)
        if multichannel
        else scaled.reshape(case.spatial_shape)
    )
    superpixels = slic(
        shaped,
        n_segments=max(k, len(rows) // 50),
        channel_axis=-1 if multichannel else None,
        spacing=case.spacing,
        slic_zero=True,
        start_label=0,
    ).reshape(-1)
    sizes = np.bincount(superpixels)
    means = np.stack([np.bincount(superpixels, c) for c in rows.T], axis=1)
    used = sizes > 0
    means = means[used] / sizes[used, None]
    clusters = KMeans(k, n_init=3, random_state=0).fit_predict(means, sample_weight=sizes[used])
    per_superpixel = np.zeros(len(sizes), np.int64)
    per_superpixel[used] = clusters
    return per_superpixel[superpixels].reshape(case.spatial_shape)


PEERS: dict[str, Segmenter] = {
    "cv2.kmeans": opencv_kmeans,
    "sklearn KMeans": sklearn_kmeans,
    "GaussianMixture": gaussian_mixture,
    "multi-Otsu": multi_otsu,
    "SLIC + k-means": slic_kmeans,
}


# ----------------------------------------------------------------------------- running


def run(segment: Segmenter, case_list: Sequence[Case], log=None) -> list[dict]:
    """Segment and score every case: one dict per case (name, group, k, scores, seconds)."""
    results = []
    for case in case_list:
        started = time.perf_counter()
        labels = segment(case.image.copy(), case.k, case)
        seconds = time.perf_counter() - started
        results.append(
            {
                "name": case.name,
                "group": case.group,
                "k": case.k,
                **score(labels, case.truth),
                "seconds": seconds,
            }
        )
        if log is not None:
            log(f"  {case.name}: ARI {results[-1]['ari']:.3f} ({seconds:.2f} s)")
    return results


def summarize(results: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Mean of every metric per group, in ``GROUPS`` order, and over all cases ("all")."""
    table: dict[str, dict[str, float]] = {}
    groups = [g for g in GROUPS if any(r["group"] == g for r in results)]
    for group in [*groups, "all"]:
        members = [r for r in results if group in ("all", r["group"])]
        table[group] = {m: float(np.mean([r[m] for r in members])) for m in METRICS}
        table[group]["n"] = len(members)
    return table


def evaluate(
    segment: Segmenter,
    case_list: Sequence[Case] | None = None,
    *,
    quick: bool = False,
    groups: Iterable[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Per-group mean scores (``ari``, ``dice``, ``boundary_noise``, ``component_ratio``,
    ``seconds``, ``n``) of ``segment(image, k, case) -> labels`` on ``case_list`` (default:
    ``cases(quick, groups)``)."""
    if case_list is None:
        case_list = cases(quick, groups)
    return summarize(run(segment, case_list))


# ----------------------------------------------------------------------------- suggest k


def known_k_cases(quick: bool = False) -> list[Case]:
    """Images whose number of classes is unambiguous from their pixels (no textures):
    every other group of seed 0, and the two-channel, colour and stained ones of seed 1."""
    groups = [g for g in GROUPS if g != "textures"]
    return cases(quick, groups, seed=0) + cases(
        quick, ("two channels", "colour + JPEG", "H&E / IHC"), seed=1
    )


def evaluate_suggest_k(
    suggest: Callable[[Case], object] | None = None,
    case_list: Sequence[Case] | None = None,
    *,
    quick: bool = False,
    options: dict | None = None,
    log=None,
) -> dict:
    """Run ``suggest(case)`` (default: ``nk.suggest_k`` with the case's channel axis and
    ``options``) on images of known k; return per-case rows and the totals (``exact``:
    share right, ``mean_abs_error``, ``in_candidates``: share with the true k among the
    best two)."""
    import napari_kmeans as nk

    if case_list is None:
        case_list = known_k_cases(quick)
    options = dict(options or {})

    def default(case: Case):
        keywords = {"channel_axis": case.channel_axis, "seed": 0, **options}
        if case.spacing is not None and "spacing" in _suggest_parameters():
            keywords.setdefault("spacing", case.spacing)
        return nk.suggest_k(case.image, **keywords)

    suggest = suggest or default
    rows = []
    for case in case_list:
        started = time.perf_counter()
        result = suggest(case)
        seconds = time.perf_counter() - started
        k = int(getattr(result, "recommended", result))
        candidates = tuple(getattr(result, "candidates", (k,)))
        rows.append(
            {
                "name": case.name,
                "group": case.group,
                "k": case.k,
                "suggested": k,
                "candidates": candidates,
                "seconds": seconds,
                "reason": getattr(result, "reason", ""),
            }
        )
        if log is not None:
            log(f"  {case.name}: true {case.k}, suggested {k} {candidates} ({seconds:.2f} s)")
    errors = np.array([abs(r["suggested"] - r["k"]) for r in rows])
    return {
        "rows": rows,
        "n": len(rows),
        "exact": float(np.mean(errors == 0)),
        "mean_abs_error": float(errors.mean()),
        "in_candidates": float(np.mean([r["k"] in r["candidates"] for r in rows])),
        "seconds": float(np.sum([r["seconds"] for r in rows])),
    }


def _suggest_parameters() -> set[str]:
    import inspect

    import napari_kmeans as nk

    return set(inspect.signature(nk.suggest_k).parameters)


# ----------------------------------------------------------------------------- command line


def markdown(tables: dict[str, dict[str, dict[str, float]]]) -> str:
    """One Markdown table per group: a row per method."""
    lines = []
    groups = [g for g in [*GROUPS, "all"] if any(g in t for t in tables.values())]
    for group in groups:
        n = next(t[group]["n"] for t in tables.values() if group in t)
        lines += [
            f"\n### {group} ({n} images)\n",
            "| method | ARI | Dice | boundary noise | components × | s / image |",
            "|---|---|---|---|---|---|",
        ]
        for method, table in tables.items():
            if group in table:
                r = table[group]
                lines.append(
                    f"| {method} | {r['ari']:.3f} | {r['dice']:.3f} | "
                    f"{100 * r['boundary_noise']:.2f} % | {r['component_ratio']:.2f} | "
                    f"{r['seconds']:.2f} |"
                )
    return "\n".join(lines)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="128-pixel images and 16x96x96 stacks (a few minutes on 2 cores)",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated methods: ours," + ",".join(PEERS)
    )
    parser.add_argument("--groups", default=None, help="comma-separated subset of the groups")
    parser.add_argument(
        "--options",
        default="{}",
        help='JSON keywords for nk.segment / nk.suggest_k, e.g. \'{"smooth": "auto"}\'',
    )
    parser.add_argument(
        "--suggest-k",
        action="store_true",
        help="evaluate nk.suggest_k on images of known k instead",
    )
    parser.add_argument("--json", default=None, help="also write every result to this file")
    args = parser.parse_args(argv)
    try:
        options = json.loads(args.options)
        if not isinstance(options, dict):
            raise ValueError("not an object")
    except ValueError as error:
        parser.error(f"--options {args.options!r} is not a JSON object: {error}")
    groups = None if args.groups is None else [g.strip() for g in args.groups.split(",")]
    if groups is not None and set(groups) - set(GROUPS):
        parser.error(f"--groups {args.groups!r}: choose from {', '.join(GROUPS)}")

    if args.suggest_k:
        result = evaluate_suggest_k(quick=args.quick, options=options, log=_log)
        print("| image | true k | suggested | best two |\n|---|---|---|---|")
        for r in result["rows"]:
            print(f"| {r['name']} | {r['k']} | {r['suggested']} | {r['candidates']} |")
        print(
            f"\n{result['n']} images: exact {100 * result['exact']:.0f} %, mean |error| "
            f"{result['mean_abs_error']:.2f}, true k among the best two "
            f"{100 * result['in_candidates']:.0f} %, {result['seconds']:.1f} s in all"
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1, default=list)
        return 0

    methods = {"ours": ours(options), **PEERS}
    if args.only is not None:
        chosen = [m.strip() for m in args.only.split(",")]
        unknown = [m for m in chosen if m not in methods]
        if unknown:
            parser.error(f"--only {args.only!r}: unknown {unknown}; choose from {list(methods)}")
        methods = {m: methods[m] for m in chosen}
    case_list = cases(args.quick, groups)
    _log(f"{len(case_list)} images built")
    tables, everything = {}, {}
    for name, segment in methods.items():
        _log(name)
        everything[name] = run(segment, case_list, log=_log)
        tables[name] = summarize(everything[name])
    label = "ours" if not options else f"ours {json.dumps(options)}"
    print(markdown({(label if m == "ours" else m): t for m, t in tables.items()}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"options": options, "results": everything}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
