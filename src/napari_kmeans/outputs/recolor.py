"""Labels back onto the image grid, and the palette painted onto the pixels."""

from __future__ import annotations

import numpy as np

from ..engine.blocks import take_blocks
from ..features import pixels as ft
from ..features.prepare import PreparedImage


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
    >>> from napari_kmeans.features.prepare import prepare_image
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
        # the largest float64 that fits: (u)int64's maximum rounds up to 2**64 (2**63)
        info, ceiling = np.iinfo(dtype), np.float64(np.iinfo(dtype).max)
        if int(ceiling) > info.max:
            ceiling = np.nextafter(ceiling, 0)
        return np.clip(np.rint(values), info.min, ceiling).astype(dtype)
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
    >>> from napari_kmeans.features.prepare import prepare_image
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
