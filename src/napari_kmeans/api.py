"""``segment`` and ``fit``: images in, a Segmentation or a reusable model out.

One engine serves both: :class:`Segmentation` and :class:`KMeansModel`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from .features.prepare import PreparedImage, check_poolable, is_dask_array, prepare_image
from .model import fitting
from .model.kmeans_model import KMeansModel
from .options import METHODS, Options, make_options, takes_options
from .outputs.recolor import spread_labels
from .outputs.segmentation import Segmentation
from .progress import LABELLING, report

__all__ = ["METHODS", "Segmentation", "fit", "segment"]


@takes_options
def segment(image, n_clusters: int = 5, *, mask=None, **options) -> Segmentation:
    """Segment an image by k-means clustering of its pixels.

    Parameters
    ----------
    image : array_like
        2-D grey, RGB(A) colour or any n-D array, integer or float; never modified. A dask
        array is segmented chunk by chunk and gives lazy ``labels`` and ``recolored`` (see
        :func:`napari_kmeans.lazy.segment.segment_dask`).
    n_clusters : int
        Number of clusters k, 1 <= k <= number of distinct feature vectors.
    method : {"kmeans++", "optimal"}
        Greedy k-means++ seeding + Lloyd, or globally optimal k-means by dynamic programming
        (one feature only: one-channel images or ``color_space="gray"``, no spatial weight).
    color_space : {"rgb", "lab", "oklab", "gray"}
        The image's own values, CIELAB, Oklab or luma: the entries of
        :mod:`napari_kmeans.features.color_spaces`.
    channel_axis : "auto", "rgb", None or int
        ``"auto"``: a last axis of 3 or 4 on an image of >= 3 dimensions is RGB(A);
        ``"rgb"``: the last axis is RGB(A), as napari's ``rgb=True``; None: no channels; an
        int: every channel along that axis is data (no alpha). With ``"auto"`` or ``"rgb"``
        a fourth channel is alpha: kept in ``recolored``, never clustered.
    spatial_weight : float
        >= 0; appends pixel coordinates scaled so that 1 makes the largest image extent
        weigh as much as the full range of the colour features. 0: colour only.
    spacing : sequence of float, optional
        Pixel/voxel size per spatial axis for the coordinates (default all 1).
    mask : array_like, optional
        Spatial shape; non-zero pixels are clustered, the others get label 0 and keep their
        value in ``recolored``.
    standardize : bool
        Divide each colour feature by its standard deviation over the fitted pixels, so
        that channels of very different ranges (fluorescence) weigh alike. The divisors are
        kept in the model's recipe; ``palette`` stays in the image's units.
    seed : None, int or numpy.random.Generator
        With None a seed is drawn and recorded in ``params["seed"]``, so any result can be
        reproduced.
    n_init : int or "auto"
        Runs from different seedings, the best kept; as in :func:`napari_kmeans.kmeans`.
    max_iter : int
        Maximum Lloyd iterations per run.
    tol : float
        Stop a run when the centres move less than this (relative to the data's variance).
    callback : callable, optional
        ``callback(iteration, inertia)`` after every Lloyd iteration; raise in it to stop.
    progress : callable, optional
        ``progress(stage, done, total)`` during long stages (see
        :mod:`napari_kmeans.progress`); raise in it to stop.
    regularize : None, "majority", "potts" or tuple
        Clean the labels after clustering by their neighbourhood, inside the mask only
        (n-D, deterministic; see :mod:`napari_kmeans.outputs.cleanup`).
        ``"majority"`` or ``("majority", radius)``: each pixel takes the weighted majority
        label of a box of ``radius`` pixels (default 1: 3×3, 3×3×3, ...), neighbours weighted
        by the finest spacing over their physical distance (one pass).
        ``"potts"`` or ``("potts", beta)``: iterated conditional modes on a Potts energy:
        squared feature distance to the label's centre, divided by the model's mean squared
        distance per fitted pixel (inertia / fitted pixels), plus ``beta`` (default 1) times
        the weights of the 3^n neighbours with another label; so beta = 1 makes one
        disagreeing face neighbour cost as much as an average pixel's own distance.
        None: the nearest centre's label.
    min_size : None, int or float
        Connected components (face neighbours) smaller than this join the label of the
        most pixels on their outer boundary, repeatedly, after ``regularize``: an int counts
        pixels, a float is a physical volume (area in 2-D) in the units of ``spacing``.
        A component with no larger neighbour (alone in its mask) is kept. Not available on
        dask arrays. None: keep every component.

    Returns
    -------
    Segmentation
        Labels, palette, recoloured image, centres, counts, inertia, params and the model.
        After a clean-up, counts, palette, recoloured image and inertia are those of the
        cleaned labels; ``fit_inertia`` is the k-means objective of the fit.

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
    """
    opts = make_options(n_clusters, **options)
    if is_dask_array(image):
        from .lazy.segment import DEFAULT_SAMPLE_SIZE, dask_segmentation

        return dask_segmentation(image, opts, mask, DEFAULT_SAMPLE_SIZE)
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
    rows, recipe = fitting.pixel_rows(
        [(p.values, p.layout.spatial_shape, p.included) for p in images],
        o.color_space,
        o.spatial_weight,
        o.spacing,
        standardize=o.standardize,
    )
    model, row_labels = fitting.fit_rows(rows, recipe, o)
    params = o.params(
        first.layout, first.image.dtype, len(images), sum(len(p.values) for p in images)
    )
    return dataclasses.replace(model, params=params, cleanup=o.cleanup), row_labels, rows


@takes_options
def fit(images, n_clusters: int = 5, *, mask=None, **options) -> KMeansModel:
    """Fit a k-means model on one image or on the pooled pixels of several.

    Integer images are pooled exactly through their histograms.
    ``segment(image, ...)`` gives the same result as ``fit(image, ...).predict(image)``.
    Dask arrays (one or several; NumPy arrays beside them are wrapped) are fitted as
    :func:`napari_kmeans.lazy.segment.segment_dask` fits one, chunk by chunk: on the exact pooled
    histogram for integers, else on one sample drawn from the pixels of all of them.

    Parameters
    ----------
    images : array_like or list of array_like
        One image, or several of the same dtype and number of channels; never modified.
    n_clusters : int
        Number of clusters k, as in :func:`segment`.
    method : {"kmeans++", "optimal"}
        As in :func:`segment`.
    color_space : {"rgb", "lab", "oklab", "gray"}
        As in :func:`segment`.
    channel_axis : "auto", "rgb", None or int
        As in :func:`segment`.
    spatial_weight : float
        As in :func:`segment`.
    spacing : sequence of float, optional
        As in :func:`segment`.
    mask : array_like or list, optional
        One mask for one image, or a list with one mask (or None) per image; as in
        :func:`segment`.
    standardize : bool
        As in :func:`segment`.
    seed : None, int or numpy.random.Generator
        As in :func:`segment`.
    n_init : int or "auto"
        As in :func:`segment`.
    max_iter : int
        As in :func:`segment`.
    tol : float
        As in :func:`segment`.
    callback : callable, optional
        As in :func:`segment`.
    progress : callable, optional
        As in :func:`segment`.
    regularize : None, str or tuple
        As in :func:`segment`; recorded in the model, which ``predict`` applies.
    min_size : None, int or float
        As in :func:`segment`; recorded in the model likewise.

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
    opts = make_options(n_clusters, **options)
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

        from .lazy.segment import DEFAULT_SAMPLE_SIZE, fit_dask

        lazy = [i if is_dask_array(i) else da.from_array(np.asarray(i)) for i in image_list]
        return fit_dask(lazy, opts, list(masks), DEFAULT_SAMPLE_SIZE)
    prepared = [
        prepare_image(i, opts.channel_axis, m) for i, m in zip(image_list, masks, strict=True)
    ]
    return _fit(prepared, opts)[0]
