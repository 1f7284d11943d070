"""``segment`` and ``fit``: images in, a Segmentation or a reusable model out.

One engine serves both: :class:`Segmentation` and :class:`KMeansModel`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from .engine.lloyd import IterationCallback
from .features.prepare import PreparedImage, check_poolable, is_dask_array, prepare_image
from .model import fitting
from .model.kmeans_model import KMeansModel
from .options import METHODS, Options, documented, make_options, option_values
from .outputs.recolor import spread_labels
from .outputs.segmentation import Segmentation
from .progress import LABELLING, ProgressCallback, report

__all__ = ["METHODS", "Segmentation", "fit", "segment"]


@documented
def segment(
    image,
    n_clusters: int = 5,
    *,
    method: str = "kmeans++",
    color_space: str = "rgb",
    channel_axis: str | int | None = "auto",
    spatial_weight: float = 0.0,
    spacing: Sequence[float] | None = None,
    standardize: bool | str = "auto",
    smooth: float | str | tuple | None = "auto",
    texture: bool | float = False,
    seed: int | np.random.Generator | None = None,
    n_init: int | str = "auto",
    max_iter: int = 300,
    tol: float = 1e-5,
    regularize=None,
    min_size: int | float | None = None,
    callback: IterationCallback | None = None,
    progress: ProgressCallback | None = None,
    sample_size: int = 1_000_000,
    mask=None,
) -> Segmentation:
    """Segment an image by k-means clustering of its pixels.

    Parameters
    ----------
    image : array_like
        2-D grey, RGB(A) colour or any n-D array, integer or float; never modified. A dask
        array is segmented chunk by chunk: integer images without spatial features exactly
        as in memory (the chunks' histograms merged), others on a reproducible sample of
        ``sample_size`` pixels; ``labels`` and ``recolored`` are then lazy dask arrays with
        the image's spatial chunks, everything else computed.
    {options}
    mask : array_like, optional
        Spatial shape; non-zero pixels are clustered, the others get label 0 and keep their
        value in ``recolored``.

    Returns
    -------
    Segmentation
        Labels, palette, recoloured image, centres, counts, inertia, params and the model.
        After a clean-up (``regularize``, ``min_size``), counts, palette, recoloured image
        and inertia are those of the cleaned labels; ``fit_inertia`` is the k-means
        objective of the fit.

    Raises
    ------
    ValueError
        When an option, the image or the mask is not allowed (the message names the
        argument, its value and what is allowed).

    Notes
    -----
    Integer images without spatial features are clustered on their distinct values weighted
    by pixel counts, which gives the same Lloyd iterations as clustering every pixel, much
    faster; a lookup table then labels every pixel.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[10, 12, 200], [11, 210, 205]], dtype=np.uint8)
    >>> seg = segment(img, n_clusters=2, seed=0)
    >>> seg.labels.tolist()
    [[1, 1, 2], [1, 2, 2]]
    >>> seg.palette.ravel().tolist()
    [11.0, 205.0]
    >>> noisy = np.array([[10, 10, 10, 10], [10, 200, 10, 10], [10, 10, 10, 10]], np.uint8)
    >>> segment(noisy, 2, seed=0, min_size=2).labels.tolist()
    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    >>> noisy = np.array([[0, 90, 0, 0, 200, 200, 0, 200]] * 4, np.uint8)
    >>> segment(noisy, 2, smooth="median", seed=0).params["smoothing"]
    {'kind': 'median', 'size': 1.0}
    """
    opts = make_options(**option_values(locals()))
    if is_dask_array(image):
        from .lazy.segment import dask_segmentation

        return dask_segmentation(image, opts, mask)
    started = time.perf_counter()
    prepared = prepare_image(image, opts.channel_axis, mask)
    model, row_labels, rows = _fit([prepared], opts)
    n = len(prepared.values)
    report(opts.progress, LABELLING, 0, n)
    pixel_labels = row_labels if rows.histogram is None else rows.histogram.take(row_labels)
    report(opts.progress, LABELLING, n, n)
    flat_labels = spread_labels(prepared, pixel_labels)
    return model.segmentation(prepared, flat_labels, model.counts, model.inertia, started)


def _fit(images: Sequence[PreparedImage], options: Options):
    """Fit a model on prepared images; also return the fitted rows and their labels."""
    first = images[0]
    check_poolable([(p.image.dtype, p.values.shape[1]) for p in images])
    o = options.for_image(first.layout)
    rows, recipe = fitting.prepared_rows(images, o)
    model, row_labels = fitting.fit_rows(
        rows, recipe, o, first.layout.n_channels, first.image.dtype
    )
    params = o.params(
        first.layout, first.image.dtype, len(images), sum(len(p.values) for p in images)
    )
    params["smoothing"] = None if recipe.smooth is None else recipe.smooth.to_dict()
    return dataclasses.replace(model, params=params, cleanup=o.cleanup), row_labels, rows


@documented
def fit(
    images,
    n_clusters: int = 5,
    *,
    method: str = "kmeans++",
    color_space: str = "rgb",
    channel_axis: str | int | None = "auto",
    spatial_weight: float = 0.0,
    spacing: Sequence[float] | None = None,
    standardize: bool | str = "auto",
    smooth: float | str | tuple | None = "auto",
    texture: bool | float = False,
    seed: int | np.random.Generator | None = None,
    n_init: int | str = "auto",
    max_iter: int = 300,
    tol: float = 1e-5,
    regularize=None,
    min_size: int | float | None = None,
    callback: IterationCallback | None = None,
    progress: ProgressCallback | None = None,
    sample_size: int = 1_000_000,
    mask=None,
) -> KMeansModel:
    """Fit a k-means model on one image or on the pooled pixels of several.

    Integer images are pooled exactly through their histograms.
    ``segment(image, ...)`` gives the same result as ``fit(image, ...).predict(image)``.
    Dask arrays (one or several; NumPy arrays beside them are wrapped) are fitted as
    :func:`segment` fits one, chunk by chunk: on the exact pooled histogram for integers,
    else on one sample drawn from the pixels of all of them.

    Parameters
    ----------
    images : array_like or list of array_like
        One image, or several of the same dtype and number of channels; never modified.
    {options}
    mask : array_like or list, optional
        One mask for one image, or a list with one mask (or None) per image; as in
        :func:`segment`.

    Returns
    -------
    KMeansModel
        The ordered clusters and their feature recipe, to ``predict`` any image with.

    Raises
    ------
    ValueError
        When an option, an image or a mask is not allowed, or the images do not share
        their dtype and number of channels.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[0, 10], [200, 210]], np.uint8)
    >>> model = fit([a, a + 20], n_clusters=2, seed=0)
    >>> model.palette.ravel().tolist()
    [15.0, 215.0]
    >>> model.predict(np.array([[5, 250]], np.uint8)).labels.tolist()
    [[1, 2]]
    """
    opts = make_options(**option_values(locals()))
    image_list = list(images) if isinstance(images, list | tuple) else [images]
    if not image_list:
        raise ValueError("images is empty: give an image or a list of images")
    masks = mask if isinstance(mask, list | tuple) else [mask] * len(image_list)
    if len(masks) != len(image_list):
        raise ValueError(
            f"mask has {len(masks)} entries for {len(image_list)} images: give one per image"
        )
    if any(is_dask_array(i) for i in image_list):
        import dask.array as da

        from .lazy.segment import fit_dask

        lazy = [i if is_dask_array(i) else da.from_array(np.asarray(i)) for i in image_list]
        return fit_dask(lazy, opts, list(masks))
    prepared = [
        prepare_image(i, opts.channel_axis, m) for i, m in zip(image_list, masks, strict=True)
    ]
    return _fit(prepared, opts)[0]
