"""Images in: checks of an image and its pixels, and the pixels to cluster."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from . import pixels as ft


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
    if values.dtype == np.float16:  # numba has no float16: its values are float32 exactly
        values = values.astype(np.float32)
    check_finite_pixels(count_non_finite(values))
    return PreparedImage(image, layout, table, included, values)
