"""``segment`` and ``fit``: images in, a :class:`Segmentation` or a reusable
:class:`KMeansModel` out, through one engine."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from . import features as ft
from . import model as model_
from .engine import check_iteration_options, make_rng
from .engine.lloyd import IterationCallback
from .model import KMeansModel
from .result import PreparedImage, Segmentation, prepare_image, spread_labels
from .versions import library_versions

__all__ = ["METHODS", "Segmentation", "fit", "segment"]

METHODS = ("kmeans++", "optimal")


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
            image,
            n_clusters,
            method=method,
            color_space=color_space,
            channel_axis=channel_axis,
            spatial_weight=spatial_weight,
            spacing=spacing,
            mask=mask,
            seed=seed,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            callback=callback,
        )
    started = time.perf_counter()
    prepared = prepare_image(image, channel_axis, mask)
    model, row_labels, rows = _fit(
        [prepared],
        n_clusters,
        method,
        color_space,
        channel_axis,
        spatial_weight,
        spacing,
        seed,
        n_init,
        max_iter,
        tol,
        callback,
    )
    pixel_labels = row_labels if rows.histogram is None else rows.histogram.take(row_labels)
    flat_labels = spread_labels(prepared, pixel_labels)
    return model.segmentation(prepared, flat_labels, model.counts, model.inertia, started)


def _check_method(method, color_space, n_channels, spatial_weight) -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed: use one of {METHODS}")
    n_features = 1 if color_space == "gray" else n_channels
    if method == "optimal" and (n_features != 1 or spatial_weight > 0):
        raise ValueError(
            "method='optimal' needs exactly one feature: a one-channel image or "
            f"color_space='gray', and spatial_weight=0 (got {n_channels} channels, "
            f"color_space={color_space!r}, spatial_weight={spatial_weight})"
        )


@dataclass(frozen=True)
class FitOptions:
    """The fitting options of :func:`segment`, checked; shared with the dask path."""

    n_clusters: int
    method: str
    color_space: str
    spatial_weight: float
    spacing: tuple[float, ...]
    n_init: int | str
    max_iter: int
    tol: float
    seed: int | str  # the seed to record: drawn when None was given
    rng: np.random.Generator

    def params(
        self, channel_axis, n_channels: int, fitted_dtype, fitted_images: int, fitted_pixels: int
    ) -> dict:
        """The model's JSON parameters."""
        return {
            "n_clusters": self.n_clusters,
            "method": self.method,
            "color_space": self.color_space,
            "channel_axis": channel_axis if channel_axis in ("auto", None) else int(channel_axis),
            "spatial_weight": self.spatial_weight,
            "spacing": list(self.spacing),
            "seed": self.seed,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "n_channels": n_channels,
            "fitted_dtype": str(fitted_dtype),
            "fitted_images": fitted_images,
            "fitted_pixels": int(fitted_pixels),
            "versions": library_versions(),
        }


def check_options(
    n_clusters,
    method,
    color_space,
    spatial_weight,
    spacing,
    seed,
    n_init,
    max_iter,
    tol,
    *,
    n_channels: int,
    spatial_ndim: int,
) -> FitOptions:
    """Check the fitting options for an image of ``n_channels`` and ``spatial_ndim`` axes."""
    n_clusters = _check_n_clusters(n_clusters)
    n_init, max_iter, tol = check_iteration_options(n_init, max_iter, tol)
    color_space = ft.check_color_space(color_space, n_channels)
    spatial_weight = ft.check_spatial_weight(spatial_weight)
    spacing = ft.check_spacing(spacing, spatial_ndim)
    _check_method(method, color_space, n_channels, spatial_weight)
    seed_used, rng = _concrete_seed(seed)
    return FitOptions(
        n_clusters,
        method,
        color_space,
        spatial_weight,
        spacing,
        n_init,
        max_iter,
        tol,
        seed_used,
        rng,
    )


def _fit(
    images: Sequence[PreparedImage],
    n_clusters,
    method,
    color_space,
    channel_axis,
    spatial_weight,
    spacing,
    seed,
    n_init,
    max_iter,
    tol,
    callback,
):
    """Fit a model on prepared images; also return the fitted rows and their labels."""
    first = images[0]
    n_channels = first.values.shape[1]
    for other in images[1:]:
        if other.values.shape[1] != n_channels or other.image.dtype != first.image.dtype:
            raise ValueError(
                "images must share their dtype and number of channels: got "
                f"{first.image.dtype} with {n_channels} channel(s) and {other.image.dtype} "
                f"with {other.values.shape[1]}"
            )
    o = check_options(
        n_clusters,
        method,
        color_space,
        spatial_weight,
        spacing,
        seed,
        n_init,
        max_iter,
        tol,
        n_channels=n_channels,
        spatial_ndim=len(first.table.spatial_shape),
    )
    rows, recipe = model_.pixel_rows(
        [(p.values, p.table.spatial_shape, p.included) for p in images],
        o.color_space,
        o.spatial_weight,
        o.spacing,
    )
    model, row_labels = model_.fit_rows(
        rows, recipe, o.n_clusters, o.method, o.n_init, o.max_iter, o.tol, o.rng, callback
    )
    params = o.params(
        channel_axis, n_channels, first.image.dtype, len(images), sum(len(p.values) for p in images)
    )
    return dataclasses.replace(model, params=params), row_labels, rows


def fit(
    images,
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
) -> KMeansModel:
    """Fit a k-means model on one image or on the pooled pixels of several.

    Takes the options of :func:`segment`; ``images`` is an array or a list of arrays of the
    same dtype and number of channels, and ``mask`` an array (one image) or a list with one
    mask (or None) per image. Integer images are pooled exactly through their histograms.
    ``segment(image, ...)`` gives the same result as ``fit(image, ...).predict(image)``.

    Examples
    --------
    >>> a = np.array([[0, 10], [200, 210]], np.uint8)
    >>> model = fit([a, a + 20], n_clusters=2, seed=0)
    >>> model.palette.ravel().tolist()
    [15.0, 215.0]
    >>> model.predict(np.array([[5, 250]], np.uint8)).labels.tolist()
    [[1, 2]]
    """
    image_list = list(images) if isinstance(images, list | tuple) else [images]
    if not image_list:
        raise ValueError("images is empty: give an image or a list of images")
    masks = mask if isinstance(mask, list | tuple) else [mask] * len(image_list)
    if len(masks) != len(image_list):
        raise ValueError(
            f"mask has {len(masks)} entries for {len(image_list)} images: give one per image"
        )
    prepared = [prepare_image(i, channel_axis, m) for i, m in zip(image_list, masks, strict=True)]
    return _fit(
        prepared,
        n_clusters,
        method,
        color_space,
        channel_axis,
        spatial_weight,
        spacing,
        seed,
        n_init,
        max_iter,
        tol,
        callback,
    )[0]
