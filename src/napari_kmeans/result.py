"""What a segmentation returns, and the per-image steps around the engine.

Preparing an image's pixels, and painting the palette back onto it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import numpy as np

from . import features as ft
from .engine.blocks import take_blocks


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment`.

    Attributes
    ----------
    labels : numpy.ndarray or dask.array.Array
        Spatial shape of the image; 1..k ordered from the darkest cluster to the brightest,
        0 only where the mask excluded the pixel. uint8 for k <= 255, uint16 for
        k <= 65,535, else uint32.
    palette : numpy.ndarray
        ``(k, C)`` float64 mean original value of each cluster, in the image's units and
        channel order (alpha excluded).
    recolored : numpy.ndarray or dask.array.Array
        Same shape and dtype as the image, every pixel replaced by its cluster's palette
        colour (rounded for integer images); alpha and excluded pixels unchanged.
    centers : numpy.ndarray
        ``(k, d)`` cluster centres in feature space (what k-means optimised).
    counts : numpy.ndarray
        ``(k,)`` pixels per cluster.
    inertia : float
        Sum over pixels of the squared feature distance to their centre (float64). For
        ``KMeansModel.predict`` on a dask array, ``counts`` and ``inertia`` are lazy dask
        arrays like ``labels`` and ``recolored``: nothing is computed until asked.
    n_iter : int
        Lloyd iterations of the best run (0 for ``method="optimal"``).
    params : dict
        JSON-serialisable parameters, including the seed actually used and versions.
    seconds : float
        Wall time of :func:`segment` or :meth:`KMeansModel.predict`.
    model : KMeansModel
        The fitted :class:`~napari_kmeans.model.KMeansModel`, to apply to other images.

    Examples
    --------
    >>> from napari_kmeans import segment
    >>> seg = segment(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> seg.labels.tolist(), seg.palette.ravel().tolist(), seg.recolored.tolist()
    ([[1, 1, 2, 2]], [5.0, 205.0], [[5, 5, 205, 205]])
    >>> seg.counts.tolist(), seg.inertia, seg.n_clusters
    ([2, 2], 100.0, 2)
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
    model: object = field(default=None, repr=False)

    @property
    def n_clusters(self) -> int:
        """Number of clusters k."""
        return len(self.counts)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable summary of the segmentation.

        Returns
        -------
        dict
            ``params``, ``palette``, ``centers``, ``counts``, ``inertia``, ``n_iter`` and
            ``seconds``; lazy (dask) counts are computed.

        Examples
        --------
        >>> from napari_kmeans import segment
        >>> seg = segment(np.array([[0, 0, 9, 9]], np.uint8), n_clusters=2, seed=0)
        >>> seg.to_dict()["counts"]
        [2, 2]
        """
        summary = {
            "params": self.params,
            "palette": self.palette.tolist(),
            "centers": self.centers.tolist(),
            "counts": np.asarray(self.counts).tolist(),  # computes lazy (dask) counts
            "inertia": float(self.inertia),
            "n_iter": self.n_iter,
            "seconds": self.seconds,
        }
        json.dumps(summary)  # fail here, not in the caller's file writer
        return summary


def is_dask_array(image) -> bool:
    """Tell a dask array, without importing dask (one exists only if dask is imported).

    Parameters
    ----------
    image : object
        Anything.

    Returns
    -------
    bool
        True for a ``dask.array.Array``.

    Examples
    --------
    >>> is_dask_array(np.zeros(3))
    False
    """
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(image, dask_array.Array)


@dataclass(frozen=True)
class PreparedImage:
    """An image's pixels as rows, with the mask applied and checked.

    Attributes
    ----------
    image : numpy.ndarray
        The image.
    layout : ChannelLayout
        Its channel layout.
    table : PixelTable
        Its pixels as rows, alpha apart.
    included : numpy.ndarray or None
        Flat indices of the clustered pixels; None for all.
    values : numpy.ndarray
        ``(m, C)`` values of the clustered pixels.

    Examples
    --------
    >>> p = prepare_image(np.array([[1, 2], [3, 4]], np.uint8), "auto", [[1, 0], [0, 1]])
    >>> p.included.tolist(), p.values.ravel().tolist()
    ([0, 3], [1, 4])
    """

    image: np.ndarray
    layout: ft.ChannelLayout
    table: ft.PixelTable
    included: np.ndarray | None  # flat indices of the clustered pixels, None for all
    values: np.ndarray  # (m, C) values of the clustered pixels


def check_image(image) -> np.ndarray:
    """Return ``image`` as a NumPy array of a supported dtype and non-empty shape.

    Parameters
    ----------
    image : array_like
        The image.

    Returns
    -------
    numpy.ndarray
        ``image`` (not copied when already an array).

    Raises
    ------
    ValueError
        For an unsupported dtype or an empty image.

    Examples
    --------
    >>> check_image([[1, 2]]).shape
    (1, 2)
    """
    image = np.asarray(image)
    check_image_type(image)
    return image


def check_image_type(image) -> None:
    """Refuse dtypes and shapes ``segment`` cannot use (NumPy and dask arrays alike).

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        The image.

    Raises
    ------
    ValueError
        Unless the dtype is an integer or float of at most 8 bytes and the image not empty.

    Examples
    --------
    >>> check_image_type(np.zeros(3, complex))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image has dtype complex128: use unsigned/signed integers or floats ...
    """
    if image.dtype.kind not in "uif" or image.dtype.itemsize > 8:
        raise ValueError(
            f"image has dtype {image.dtype}: use unsigned/signed integers or floats "
            "(uint8, uint16, float32, ...)"
        )
    if image.ndim < 1 or image.size == 0:
        raise ValueError(f"image has shape {image.shape}: it must be a non-empty array")


def check_poolable(kinds: list[tuple[np.dtype, int]]) -> None:
    """Refuse images that cannot be pooled in one fit: their dtypes or channels differ.

    Parameters
    ----------
    kinds : list of tuple
        ``(dtype, colour channels)`` of each image, in the caller's order.

    Raises
    ------
    ValueError
        Naming the first image's kind and the first that differs.

    Examples
    --------
    >>> check_poolable([(np.dtype("uint8"), 3), (np.dtype("uint8"), 3)])
    >>> check_poolable([(np.dtype("uint8"), 3), (np.dtype("uint16"), 3)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: images must share their dtype and number of channels: got uint8 with 3 ...
    """
    (first_dtype, first_channels), *others = kinds
    for dtype, channels in others:
        if channels != first_channels or dtype != first_dtype:
            raise ValueError(
                "images must share their dtype and number of channels: got "
                f"{first_dtype} with {first_channels} channel(s) and {dtype} with {channels}"
            )


def count_non_finite(values: np.ndarray) -> int:
    """Count the pixels (rows) of ``values`` holding a NaN or infinite value.

    Parameters
    ----------
    values : numpy.ndarray
        ``(m, C)`` channel values of pixels.

    Returns
    -------
    int
        How many rows are not finite (0 for integer values).

    Examples
    --------
    >>> count_non_finite(np.array([[0.0, 1.0], [np.nan, 2.0], [np.inf, np.nan]]))
    2
    """
    if values.dtype.kind != "f" or values.size == 0:
        return 0
    # min and max propagate NaN and reach ±inf: two reductions without a temporary array
    # settle the usual all-finite case; only a bad image pays for the per-pixel count.
    if np.isfinite(values.min()) and np.isfinite(values.max()):
        return 0
    return int((~np.isfinite(values)).any(axis=1).sum())


def check_finite_pixels(bad: int) -> None:
    """Refuse an image with ``bad`` non-finite clustered pixels, naming how many.

    Parameters
    ----------
    bad : int
        Pixels with a NaN or infinite value (from :func:`count_non_finite`).

    Raises
    ------
    ValueError
        When ``bad`` is not 0.

    Examples
    --------
    >>> check_finite_pixels(0)
    >>> check_finite_pixels(2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image contains NaN or infinite values in 2 pixel(s): ...
    """
    if bad:
        raise ValueError(
            f"image contains NaN or infinite values in {bad} pixel(s): every clustered pixel "
            "must be finite (exclude them with mask=)"
        )


def prepare_image(image, channel_axis, mask) -> PreparedImage:
    """Check ``image`` and ``mask`` and split the image into rows of channel values.

    Parameters
    ----------
    image : array_like
        The image.
    channel_axis : "auto", "rgb", None or int
        As in :func:`napari_kmeans.segment`.
    mask : array_like or None
        Spatial shape; non-zero pixels are clustered.

    Returns
    -------
    PreparedImage
        The image, its layout, its rows and the clustered pixels.

    Raises
    ------
    ValueError
        For a bad image, channel axis or mask, or a clustered pixel that is not finite.

    Examples
    --------
    >>> prepare_image(np.zeros((2, 3, 3), np.uint8), "auto", None).values.shape
    (6, 3)
    """
    image = check_image(image)
    layout = ft.channel_layout(image.shape, channel_axis)
    table = layout.table(image)
    included = ft.mask_rows(mask, table.spatial_shape)
    values = table.values if included is None else table.values[included]
    check_finite_pixels(count_non_finite(values))
    return PreparedImage(image, layout, table, included, values)


def spread_labels(prepared: PreparedImage, pixel_labels: np.ndarray) -> np.ndarray:
    """Return the labels of the clustered pixels as a flat array over every pixel.

    Parameters
    ----------
    prepared : PreparedImage
        The image the pixels come from.
    pixel_labels : numpy.ndarray
        Label of each clustered pixel.

    Returns
    -------
    numpy.ndarray
        Label of every pixel of the image, flat, 0 where the mask excluded it.

    Examples
    --------
    >>> p = prepare_image(np.array([[1, 2], [3, 4]], np.uint8), "auto", [[1, 0], [0, 1]])
    >>> spread_labels(p, np.array([1, 2], np.uint8)).tolist()
    [1, 0, 0, 2]
    """
    if prepared.included is None:
        return pixel_labels
    flat = np.zeros(len(prepared.table.values), dtype=pixel_labels.dtype)
    flat[prepared.included] = pixel_labels
    return flat


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _gather_rows(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Return ``table[index]`` for a small ``(m, C)`` table, each row moved as one item.

    About twice as fast as NumPy's row-wise fancy indexing on large images.
    """
    table = np.ascontiguousarray(table)
    items = table.view(np.dtype((np.void, table.dtype.itemsize * table.shape[1]))).ravel()
    return take_blocks(items, index).view(table.dtype).reshape(len(index), table.shape[1])


def recolor(
    image: np.ndarray,
    table: ft.PixelTable,
    flat_labels: np.ndarray,
    palette: np.ndarray,
    masked: bool,
) -> np.ndarray:
    """Replace every clustered pixel's channels by its palette colour in a copy of the image.

    Parameters
    ----------
    image : numpy.ndarray
        The image (never modified).
    table : PixelTable
        Its pixels as rows, alpha apart.
    flat_labels : numpy.ndarray
        Label of every pixel, flat (0 where excluded).
    palette : numpy.ndarray
        ``(k, C)`` colour of each cluster.
    masked : bool
        Whether some pixels were excluded: those keep their values.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image``; alpha unchanged.

    Examples
    --------
    >>> img = np.array([[1, 2, 9]], np.uint8)
    >>> p = prepare_image(img, "auto", None)
    >>> recolor(img, p.table, np.array([1, 1, 2]), np.array([[1.5], [9.0]]), False).tolist()
    [[2, 2, 9]]
    """
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
