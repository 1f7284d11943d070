"""``segment``: an image in, a :class:`Segmentation` out, through one engine."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from . import features as ft
from . import model as model_
from .engine import check_iteration_options, make_rng
from .engine.lloyd import IterationCallback
from .versions import library_versions

METHODS = ("kmeans++", "optimal")


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment`.

    Attributes
    ----------
    labels : spatial shape of the image; 1..k ordered from the darkest cluster to the
        brightest, 0 only where the mask excluded the pixel. uint8 for k <= 255, else uint16.
    palette : (k, C) float64 mean original value of each cluster, in the image's units and
        channel order (alpha excluded).
    recolored : same shape and dtype as the image, every pixel replaced by its cluster's
        palette colour (rounded for integer images); alpha and excluded pixels unchanged.
    centers : (k, d) cluster centres in feature space (what k-means optimised).
    counts : (k,) pixels per cluster.
    inertia : sum over pixels of the squared feature distance to their centre (float64).
    n_iter : Lloyd iterations of the best run (0 for ``method="optimal"``).
    params : JSON-serialisable parameters, including the seed actually used and versions.
    seconds : wall time of :func:`segment`.
    """

    labels: np.ndarray
    palette: np.ndarray
    recolored: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    n_iter: int
    params: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_clusters(self) -> int:
        return len(self.counts)

    def to_dict(self) -> dict:
        """JSON-serialisable summary: params, palette, centers, counts, inertia, n_iter, seconds.

        Examples
        --------
        >>> seg = segment(np.array([[0, 0, 9, 9]], np.uint8), n_clusters=2, seed=0)
        >>> seg.to_dict()["counts"]
        [2, 2]
        """
        summary = {
            "params": self.params,
            "palette": self.palette.tolist(),
            "centers": self.centers.tolist(),
            "counts": self.counts.tolist(),
            "inertia": self.inertia,
            "n_iter": self.n_iter,
            "seconds": self.seconds,
        }
        json.dumps(summary)  # fail here, not in the caller's file writer
        return summary


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype.kind not in "uif" or image.dtype.itemsize > 8:
        raise ValueError(
            f"image has dtype {image.dtype}: use unsigned/signed integers or floats "
            "(uint8, uint16, float32, ...)"
        )
    if image.ndim < 1 or image.size == 0:
        raise ValueError(f"image has shape {image.shape}: it must be a non-empty array")
    return image


def _is_dask_array(image) -> bool:
    """True for a dask array, without importing dask (one exists only if dask is imported)."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(image, dask_array.Array)


def _check_n_clusters(n_clusters) -> int:
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, Integral) or n_clusters < 1:
        raise ValueError(f"n_clusters={n_clusters!r} is not allowed: it must be an integer >= 1")
    return int(n_clusters)


def _concrete_seed(seed):
    """An int to record (drawn when ``seed`` is None) and the Generator to use."""
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    rng = make_rng(seed)
    return (int(seed) if isinstance(seed, Integral) else "numpy.random.Generator"), rng


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def segment(
    image,
    n_clusters: int = 5,
    *,
    method: str = "kmeans++",
    color_space: str = "rgb",
    channel_axis="auto",
    spatial_weight: float = 0.0,
    spacing=None,
    mask=None,
    seed=None,
    n_init="auto",
    max_iter: int = 300,
    tol: float = 1e-5,
    callback: IterationCallback | None = None,
) -> Segmentation:
    """Segment an image by k-means clustering of its pixels.

    Parameters
    ----------
    image : array, 2-D grey, RGB(A) colour or any n-D array, integer or float. Never modified.
        A dask array is segmented chunk by chunk and gives lazy ``labels`` and ``recolored``
        (see :func:`napari_kmeans.scale.segment_dask`).
    n_clusters : number of clusters k, 1 <= k <= number of distinct feature vectors.
    method : ``"kmeans++"`` (greedy k-means++ seeding + Lloyd) or ``"optimal"`` (globally
        optimal k-means by dynamic programming; one feature only: one-channel images or
        ``color_space="gray"``, no spatial weight).
    color_space : ``"rgb"`` (the image's own values), ``"lab"`` (CIELAB) or ``"gray"`` (luma).
    channel_axis : ``"auto"`` (a last axis of 3 or 4 is RGB(A)), None (no channels) or an int.
    spatial_weight : >= 0; appends pixel coordinates scaled so that 1 makes the largest image
        extent weigh as much as the full range of the colour features. 0: colour only.
    spacing : pixel/voxel size per spatial axis for the coordinates (default all 1).
    mask : array of the spatial shape; non-zero pixels are clustered, the others get label 0
        and keep their value in ``recolored``.
    seed : None, int or ``numpy.random.Generator``. With None a seed is drawn and recorded in
        ``params["seed"]``, so any result can be reproduced.
    n_init, max_iter, tol : as in :func:`napari_kmeans.kmeans`.
    callback : ``callback(iteration, inertia)`` after every Lloyd iteration; raise in it to stop.

    Returns
    -------
    Segmentation

    Notes
    -----
    Integer images without spatial features are clustered on their distinct values weighted
    by pixel counts, which gives the same Lloyd iterations as clustering every pixel, much
    faster; a lookup table then labels every pixel.

    Examples
    --------
    >>> img = np.array([[10, 12, 200], [11, 210, 205]], dtype=np.uint8)
    >>> seg = segment(img, n_clusters=2, seed=0)
    >>> seg.labels.tolist()
    [[1, 1, 2], [1, 2, 2]]
    >>> seg.palette.ravel().tolist()
    [11.0, 205.0]
    """
    if _is_dask_array(image):
        from .scale import segment_dask

        return segment_dask(
            image, n_clusters, method=method, color_space=color_space,
            channel_axis=channel_axis, spatial_weight=spatial_weight, spacing=spacing,
            mask=mask, seed=seed, n_init=n_init, max_iter=max_iter, tol=tol, callback=callback,
        )
    started = time.perf_counter()
    image = _check_image(image)
    n_clusters = _check_n_clusters(n_clusters)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed: use one of {METHODS}")
    n_init, max_iter, tol = check_iteration_options(n_init, max_iter, tol)
    table = ft.pixel_table(image, channel_axis)
    n_channels = table.values.shape[1]
    color_space = ft.check_color_space(color_space, n_channels)
    spatial_weight = ft.check_spatial_weight(spatial_weight)
    spacing = ft.check_spacing(spacing, len(table.spatial_shape))
    n_feature_channels = 1 if color_space == "gray" else n_channels
    if method == "optimal" and (n_feature_channels != 1 or spatial_weight > 0):
        raise ValueError(
            "method='optimal' needs exactly one feature: a one-channel image or "
            f"color_space='gray', and spatial_weight=0 (got {n_channels} channels, "
            f"color_space={color_space!r}, spatial_weight={spatial_weight})"
        )
    included = ft.mask_rows(mask, table.spatial_shape)
    values = table.values if included is None else table.values[included]
    if image.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(axis=1).sum())
        raise ValueError(
            f"image contains NaN or infinite values in {bad} pixel(s): every clustered pixel "
            "must be finite (exclude them with mask=)"
        )
    seed_used, rng = _concrete_seed(seed)

    rows, recipe = model_.pixel_rows(
        values, table.spatial_shape, included, color_space, spatial_weight, spacing
    )
    if rows.histogram is not None:
        what = "colours" if n_channels > 1 else "values"
    else:
        what = "pixels" if spatial_weight > 0 else "feature vectors"
    model, row_labels = model_.fit_rows(
        rows, recipe, n_clusters, method, n_init, max_iter, tol, rng, callback, what
    )
    pixel_labels = row_labels if rows.histogram is None else rows.histogram.take(row_labels)
    if included is None:
        flat_labels = pixel_labels
    else:
        flat_labels = np.zeros(len(table.values), dtype=model.label_dtype)
        flat_labels[included] = pixel_labels
    labels = flat_labels.reshape(table.spatial_shape)

    recolored = _recolor(image, table, flat_labels, model.palette, included is not None)
    params = {
        "n_clusters": n_clusters,
        "method": method,
        "color_space": color_space,
        "channel_axis": channel_axis if channel_axis in ("auto", None) else int(channel_axis),
        "spatial_weight": spatial_weight,
        "spacing": list(spacing),
        "masked": included is not None,
        "seed": seed_used,
        "n_init": n_init,
        "max_iter": max_iter,
        "tol": tol,
        "image_shape": list(image.shape),
        "image_dtype": str(image.dtype),
        "versions": library_versions(),
    }
    return Segmentation(
        labels=labels,
        palette=model.palette,
        recolored=recolored,
        centers=model.centers,
        counts=model.counts,
        inertia=model.inertia,
        n_iter=model.n_iter,
        params=params,
        seconds=time.perf_counter() - started,
    )


def _gather_rows(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for a small ``(m, C)`` table, each row moved as one opaque item
    (about twice as fast as NumPy's row-wise fancy indexing on large images)."""
    table = np.ascontiguousarray(table)
    items = table.view(np.dtype((np.void, table.dtype.itemsize * table.shape[1]))).ravel()
    return np.take(items, index).view(table.dtype).reshape(len(index), table.shape[1])


def _recolor(
    image: np.ndarray, table: ft.PixelTable, flat_labels: np.ndarray, palette: np.ndarray,
    masked: bool,
) -> np.ndarray:
    """The image with every clustered pixel's channels replaced by its palette colour."""
    n_channels = table.values.shape[1]
    colours = _cast_like(np.concatenate([np.zeros((1, n_channels)), palette]), image.dtype)
    rows = _gather_rows(colours, flat_labels)
    if masked:
        excluded = flat_labels == 0
        rows[excluded] = table.values[excluded]
    if table.alpha is not None:
        rows = np.concatenate([rows, table.alpha[:, None]], axis=1)
    if table.channel_axis is None:
        return rows.reshape(image.shape)
    channels_last = rows.reshape(*table.spatial_shape, rows.shape[1])
    return np.ascontiguousarray(np.moveaxis(channels_last, -1, table.channel_axis))
