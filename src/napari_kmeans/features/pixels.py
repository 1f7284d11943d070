"""Pixels ⇄ feature rows: channel layout and alpha, colour features, mask, coordinates.

Colour spaces themselves are entries of :mod:`napari_kmeans.features.color_spaces`.

Everything here is a pure function of arrays; ``api.segment`` strings them together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ..engine.blocks import map_blocks
from ..engine.distances import RowSummary
from ..engine.grid_rows import GridRows
from . import color_spaces


@dataclass(frozen=True)
class PixelTable:
    """An image seen as one row of channel values per pixel.

    Attributes
    ----------
    values : np.ndarray
        ``(n, C)`` colour channel values (alpha excluded), pixels in C order of the spatial
        axes.
    alpha : np.ndarray or None
        ``(n,)`` alpha values, or None.
    spatial_shape : tuple of int
        Shape of the image without its channel axis.
    channel_axis : int or None
        The channel axis of the original image (non-negative), or None.

    Examples
    --------
    >>> image = np.arange(8, dtype=np.uint8).reshape(2, 1, 4)
    >>> t = channel_layout(image.shape, "auto").table(image)
    >>> t.values.tolist(), t.alpha.tolist(), t.spatial_shape, t.channel_axis
    ([[0, 1, 2], [4, 5, 6]], [3, 7], (2, 1), 2)
    """

    values: np.ndarray
    alpha: np.ndarray | None
    spatial_shape: tuple[int, ...]
    channel_axis: int | None


@dataclass(frozen=True)
class ChannelLayout:
    """Where an image keeps its channels, and whether the last one is alpha.

    Attributes
    ----------
    axis : int or None
        The channel axis (non-negative), or None when every element is one value.
    n_channels : int
        Colour (data) channels, alpha excluded.
    alpha : bool
        The last channel is alpha: kept in ``recolored``, never clustered.
    spatial_shape : tuple of int
        Shape of the image without its channel axis.

    Examples
    --------
    >>> channel_layout((5, 6, 3), "auto")
    ChannelLayout(axis=2, n_channels=3, alpha=False, spatial_shape=(5, 6))
    """

    axis: int | None
    n_channels: int
    alpha: bool
    spatial_shape: tuple[int, ...]

    def table(self, image: np.ndarray) -> PixelTable:
        """Split ``image`` (or a chunk of it, channels whole) into per-pixel channel rows.

        Parameters
        ----------
        image : numpy.ndarray
            An image of this layout, or a chunk of one with its channels whole.

        Returns
        -------
        PixelTable
            Colour rows, alpha apart.

        Examples
        --------
        >>> layout = channel_layout((2, 2, 4), "auto")
        >>> layout.table(np.zeros((1, 2, 4), np.uint8)).values.shape
        (2, 3)
        """
        if self.axis is None:
            return PixelTable(image.reshape(-1, 1), None, image.shape, None)
        channels_last = np.moveaxis(image, self.axis, -1)
        spatial_shape = channels_last.shape[:-1]
        rows = channels_last.reshape(-1, channels_last.shape[-1])
        if self.alpha:
            return PixelTable(rows[:, :-1], rows[:, -1], spatial_shape, self.axis)
        return PixelTable(rows, None, spatial_shape, self.axis)


CHANNEL_AXIS_WORDS = ("auto", "rgb")
MAX_SPATIAL_WEIGHT = 1e6


def check_channel_axis(channel_axis) -> str | int | None:
    """Return ``channel_axis`` if it is ``"auto"``, ``"rgb"``, None or an int.

    Parameters
    ----------
    channel_axis : "auto", "rgb", None or int
        The argument to check.

    Returns
    -------
    str, int or None
        ``channel_axis`` (an int as a Python int).

    Raises
    ------
    ValueError
        For any other value.

    Examples
    --------
    >>> check_channel_axis(np.int64(0))
    0
    >>> check_channel_axis("last")
    Traceback (most recent call last):
    ...
    ValueError: channel_axis='last' is not allowed: use 'auto', 'rgb', None or an axis index
    """
    if channel_axis is None or (
        isinstance(channel_axis, str) and channel_axis in CHANNEL_AXIS_WORDS
    ):
        return channel_axis
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, Integral):
        raise ValueError(
            f"channel_axis={channel_axis!r} is not allowed: use 'auto', 'rgb', None or an "
            "axis index"
        )
    return int(channel_axis)


def channel_layout(shape: tuple[int, ...], channel_axis) -> ChannelLayout:
    """Resolve a ``channel_axis`` argument for an image of ``shape``.

    ``"auto"`` treats a last axis of length 3 or 4 as RGB(A) when the image has at least three
    dimensions, as napari guesses, and is ``None`` otherwise; a last axis that could as well
    be channels as slices is refused (:func:`check_unambiguous`). ``"rgb"`` says the last axis is
    RGB or RGBA (napari's ``rgb=True``). With either, a fourth channel is alpha: kept, never
    clustered. An int names a channel axis whose channels are all data (no alpha), as in
    multichannel microscopy; ``None`` means every element is one value.

    Parameters
    ----------
    shape : tuple of int
        Shape of the image.
    channel_axis : "auto", "rgb", None or int
        Where the channels are.

    Returns
    -------
    ChannelLayout
        Channel axis, number of colour channels, alpha and spatial shape.

    Raises
    ------
    ValueError
        When ``channel_axis`` is not allowed or does not fit ``shape``.

    Examples
    --------
    >>> channel_layout((5, 6, 4), "auto")
    ChannelLayout(axis=2, n_channels=3, alpha=True, spatial_shape=(5, 6))
    >>> channel_layout((5, 6, 4), 2).alpha
    False
    >>> channel_layout((5, 4), "auto").axis is None
    True
    """
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    channel_axis = check_channel_axis(channel_axis)
    if channel_axis == "auto":
        check_unambiguous(shape)
        channel_axis = "rgb" if ndim >= 3 and shape[-1] in (3, 4) else None
    if channel_axis is None:
        return ChannelLayout(None, 1, False, shape)
    if channel_axis == "rgb":
        if ndim < 2 or shape[-1] not in (3, 4):
            raise ValueError(
                f"channel_axis='rgb' needs a last axis of 3 (RGB) or 4 (RGBA) channels and at "
                f"least one spatial axis; this image has shape {shape}"
            )
        return ChannelLayout(ndim - 1, 3, shape[-1] == 4, shape[:-1])
    if not -ndim <= channel_axis < ndim or ndim < 2:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for an image of shape {shape}: "
            f"it must leave at least one spatial axis, between {-ndim} and {ndim - 1}"
        )
    axis = channel_axis % ndim
    return ChannelLayout(axis, shape[axis], False, shape[:axis] + shape[axis + 1 :])


def check_unambiguous(shape: tuple[int, ...]) -> None:
    """Refuse a shape whose small last axis ``channel_axis="auto"`` cannot read for sure.

    A last axis of 2 or of 5 to 8, shorter than every other axis of an image of three or
    more dimensions, may hold channels (two fluorescence channels: ``(512, 512, 2)``) as well
    as slices of a volume: guessing either silently gives wrong labels, so the caller must
    say which.

    Parameters
    ----------
    shape : tuple of int
        The image's shape.

    Raises
    ------
    ValueError
        Naming ``channel_axis`` and both ways to read the shape.

    Examples
    --------
    >>> check_unambiguous((512, 512, 3))
    >>> check_unambiguous((512, 512, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: channel_axis='auto' cannot tell whether the last axis of shape (512, 512, 2) ...
    """
    last = shape[-1] if shape else 0
    if len(shape) >= 3 and (last == 2 or 5 <= last <= 8) and last < min(shape[:-1]):
        raise ValueError(
            f"channel_axis='auto' cannot tell whether the last axis of shape {shape} holds "
            f"{last} channels or {last} slices: pass channel_axis=-1 (channels, standardised) "
            "or channel_axis=None (one volume)"
        )


def resolve_channel_axis(image, channel_axis) -> int | None:
    """Return the channel axis of ``image`` (anything with a ``shape``): an int >= 0, or None.

    Parameters
    ----------
    image : array_like
        NumPy, dask or any array with a ``shape``.
    channel_axis : "auto", "rgb", None or int
        As in :func:`napari_kmeans.segment` (see :func:`channel_layout`).

    Returns
    -------
    int or None
        The non-negative channel axis, or None for no channels.

    Examples
    --------
    >>> resolve_channel_axis(np.zeros((5, 6, 3)), "auto")
    2
    >>> resolve_channel_axis(np.zeros((5, 3)), "auto") is None
    True
    """
    return channel_layout(image.shape, channel_axis).axis


def feature_dtype(dtype: np.dtype) -> np.dtype:
    """Return float32 when it holds every value of ``dtype`` exactly enough, else float64.

    Parameters
    ----------
    dtype : numpy.dtype
        The image's dtype.

    Returns
    -------
    numpy.dtype
        The feature dtype: float32 for 8/16-bit integers, float16 and float32.

    Examples
    --------
    >>> [str(feature_dtype(t)) for t in (np.uint8, np.uint16, np.int32, np.float32)]
    ['float32', 'float32', 'float64', 'float32']
    """
    dtype = np.dtype(dtype)
    small = dtype.kind in "ui" and dtype.itemsize <= 2
    return np.dtype(np.float32 if small or dtype in (np.float16, np.float32) else np.float64)


def color_features(
    values: np.ndarray, color_space: str, out_dtype: np.dtype, out: np.ndarray | None = None
) -> np.ndarray:
    """Return the feature rows of pixel values ``(m, C)`` in a colour space of the registry.

    Converted block by block, so temporary arrays stay small (see
    :mod:`napari_kmeans.features.color_spaces` for the spaces); written into ``out`` (``(m, d)``)
    when given, else into a new array (the ``rgb`` space may return ``values`` itself).

    Parameters
    ----------
    values : numpy.ndarray
        ``(m, C)`` pixel values, alpha excluded.
    color_space : str
        A name of the registry.
    out_dtype : numpy.dtype
        The feature dtype.
    out : numpy.ndarray, optional
        ``(m, d)`` array to write the features into.

    Returns
    -------
    numpy.ndarray
        ``(m, d)`` features: ``out`` when given.

    Examples
    --------
    >>> color_features(np.array([[255, 255, 255]], np.uint8), "lab", np.float64).round(1).tolist()
    [[100.0, 0.0, 0.0]]
    """
    space = color_spaces.get(color_space)
    out_dtype = np.dtype(out_dtype)
    if out is None:
        if space.convert is color_spaces.own_values:  # no temporaries: convert in one go
            return space.convert(values, out_dtype)
        out = np.empty((len(values), space.n_features(values.shape[1])), dtype=out_dtype)

    def block(s: slice) -> None:
        out[s] = space.convert(values[s], out_dtype)

    map_blocks(block, len(values))
    return out


def check_spatial_weight(spatial_weight) -> float:
    """Return ``spatial_weight`` as a float; ValueError unless it is finite and >= 0.

    Parameters
    ----------
    spatial_weight : float
        The argument to check.

    Returns
    -------
    float
        ``spatial_weight``.

    Raises
    ------
    ValueError
        When it is not a finite number >= 0.

    Examples
    --------
    >>> check_spatial_weight(1)
    1.0
    >>> check_spatial_weight(-1)
    Traceback (most recent call last):
    ...
    ValueError: spatial_weight=-1 is not allowed: it must be a finite number from 0 to 1e+06
    """
    # beyond 1e6 a pixel's position counts a million times its colour: nothing changes but
    # the coordinate features' overflow, long before 1e300
    if (
        isinstance(spatial_weight, bool)
        or not isinstance(spatial_weight, Real)
        or not math.isfinite(spatial_weight)
        or not 0 <= float(spatial_weight) <= MAX_SPATIAL_WEIGHT
    ):
        raise ValueError(
            f"spatial_weight={spatial_weight!r} is not allowed: it must be a finite number "
            f"from 0 to {MAX_SPATIAL_WEIGHT:g}"
        )
    return float(spatial_weight)


def check_spacing(spacing, spatial_ndim: int) -> tuple[float, ...]:
    """Return the per-axis pixel/voxel spacing, one positive number per spatial axis.

    Parameters
    ----------
    spacing : sequence of float or None
        The argument to check; None: all 1.
    spatial_ndim : int
        Number of spatial axes of the image.

    Returns
    -------
    tuple of float
        One spacing per spatial axis.

    Raises
    ------
    ValueError
        Unless ``spacing`` is None or ``spatial_ndim`` positive finite numbers.

    Examples
    --------
    >>> check_spacing(None, 2), check_spacing([2, 0.5], 2)
    ((1.0, 1.0), (2.0, 0.5))
    """
    if spacing is None:
        return (1.0,) * spatial_ndim
    values = tuple(np.atleast_1d(np.asarray(spacing, dtype=object)).tolist())
    ok = len(values) == spatial_ndim and all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and float(v) > 0
        for v in values
    )
    if not ok:
        raise ValueError(
            f"spacing={spacing!r} is not allowed: give {spatial_ndim} positive finite numbers, "
            "one per spatial axis"
        )
    return tuple(float(v) for v in values)


def axis_coordinates(
    spatial_shape: tuple[int, ...],
    spacing: tuple[float, ...],
    weight: float,
    value_range: float,
    dtype: np.dtype,
) -> tuple[np.ndarray, ...]:
    """Return, per spatial axis, the coordinate feature of every index along it.

    Scaled so that ``weight`` 1 makes the image's largest physical extent weigh as much as
    ``value_range`` (SLIC-style compactness): ``dtype(index) * dtype(scale)``, rounded in
    the feature dtype. The one place the formula lives: :func:`coordinate_features` and
    :func:`spatial_rows` look the coordinates up here.

    Parameters
    ----------
    spatial_shape : tuple of int
        Spatial shape of the image.
    spacing : tuple of float
        Pixel/voxel size per spatial axis.
    weight : float
        The spatial weight.
    value_range : float
        Range of the colour features the coordinates are scaled against.
    dtype : numpy.dtype
        The feature dtype.

    Returns
    -------
    tuple of numpy.ndarray
        One float64 array of ``spatial_shape[a]`` values per axis (each a value of ``dtype``).

    Examples
    --------
    >>> [t.tolist() for t in axis_coordinates((2, 3), (1.0, 1.0), 1.0, 255.0, np.float64)]
    [[0.0, 127.5], [0.0, 127.5, 255.0]]
    """
    dtype = np.dtype(dtype)
    extent = max((n - 1) * s for n, s in zip(spatial_shape, spacing, strict=True)) or 1.0
    return tuple(
        (np.arange(n).astype(dtype) * dtype.type(s * weight * value_range / extent)).astype(
            np.float64
        )
        for n, s in zip(spatial_shape, spacing, strict=True)
    )


def coordinate_features(
    spatial_shape: tuple[int, ...],
    spacing: tuple[float, ...],
    weight: float,
    value_range: float,
    pixels: np.ndarray | None,
    dtype: np.dtype,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Return the ``(m, ndim)`` scaled coordinates of the chosen pixels (all for None).

    Scaled as :func:`axis_coordinates` says. Computed block by block, into ``out`` when
    given: no temporary grows with the image.

    Parameters
    ----------
    spatial_shape : tuple of int
        Spatial shape of the image.
    spacing : tuple of float
        Pixel/voxel size per spatial axis.
    weight : float
        The spatial weight.
    value_range : float
        Range of the colour features the coordinates are scaled against.
    pixels : numpy.ndarray or None
        Flat indices of the chosen pixels; None: all, in order.
    dtype : numpy.dtype
        The feature dtype.
    out : numpy.ndarray, optional
        ``(m, ndim)`` array to write the coordinates into.

    Returns
    -------
    numpy.ndarray
        ``(m, ndim)`` coordinates: ``out`` when given.

    Examples
    --------
    >>> coordinate_features((2, 3), (1.0, 1.0), 1.0, 255.0, None, np.float64)[-1].tolist()
    [127.5, 255.0]
    """
    dtype = np.dtype(dtype)
    tables = axis_coordinates(spatial_shape, spacing, weight, value_range, dtype)
    n = int(np.prod(spatial_shape)) if pixels is None else len(pixels)
    if out is None:
        out = np.empty((n, len(spatial_shape)), dtype=dtype)

    def block(rows: slice) -> None:
        flat = np.arange(rows.start, rows.stop) if pixels is None else pixels[rows]
        coords = np.unravel_index(flat, spatial_shape)
        for j, (c, table) in enumerate(zip(coords, tables, strict=True)):
            out[rows, j] = table[c]

    map_blocks(block, n)
    return out


def spatial_rows(
    colour: np.ndarray,
    spatial_shape: tuple[int, ...],
    spacing: tuple[float, ...],
    weight: float,
    value_range: float,
    pixels: np.ndarray | None,
    dtype: np.dtype,
    colour_summary: RowSummary | None = None,
) -> GridRows:
    """Return the feature rows ``colour`` then coordinates, the coordinates never written out.

    The engine reads them as it would read ``concatenate([colour, coordinate_features(...)])``
    (the same numbers, see :func:`axis_coordinates`), at the memory of ``colour`` alone.

    Parameters
    ----------
    colour : numpy.ndarray
        ``(m, c)`` colour features (any real dtype whose values ``dtype`` holds exactly,
        such as the pixel values themselves for the ``rgb`` space); kept, never copied.
    spatial_shape : tuple of int
        Spatial shape of the image.
    spacing : tuple of float
        Pixel/voxel size per spatial axis.
    weight : float
        The spatial weight.
    value_range : float
        Range of the colour features the coordinates are scaled against.
    pixels : numpy.ndarray or None
        Flat indices of the chosen pixels; None: all, in order.
    dtype : numpy.dtype
        The feature dtype.
    colour_summary : RowSummary, optional
        ``summarise(colour, None)`` when already made (kept with the rows, so that their
        summary reads only the coordinates).

    Returns
    -------
    GridRows
        ``(m, c + ndim)`` feature rows.

    Examples
    --------
    >>> from napari_kmeans.engine.grid_rows import materialise
    >>> rows = spatial_rows(np.array([[0], [10]], np.uint8), (2,), (1.0,), 1.0, 10.0, None,
    ...                     np.float32)
    >>> materialise(rows).tolist()
    [[0.0, 0.0], [10.0, 10.0]]
    """
    tables = axis_coordinates(spatial_shape, spacing, weight, value_range, dtype)
    return GridRows(colour, pixels, tuple(spatial_shape), tables, np.dtype(dtype), colour_summary)


def check_mask(mask, spatial_shape: tuple[int, ...]) -> None:
    """Refuse a mask (NumPy or dask array) of the wrong shape or of a non-numeric dtype.

    Parameters
    ----------
    mask : numpy.ndarray or dask.array.Array
        The mask; only its shape and dtype are read.
    spatial_shape : tuple of int
        The image's spatial shape.

    Raises
    ------
    ValueError
        Naming the mask's shape or dtype and what is allowed.

    Examples
    --------
    >>> check_mask(np.ones((2, 3), bool), (2, 3))
    >>> check_mask(np.ones((3, 2), bool), (2, 3))
    Traceback (most recent call last):
    ...
    ValueError: mask has shape (3, 2): it must have the image's spatial shape (2, 3)
    """
    if tuple(mask.shape) != tuple(spatial_shape):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}: it must have the image's spatial shape "
            f"{tuple(spatial_shape)}"
        )
    if mask.dtype.kind not in "biuf":
        raise ValueError(f"mask has dtype {mask.dtype}: use booleans (True = included)")


def mask_rows(mask, spatial_shape: tuple[int, ...]) -> np.ndarray | None:
    """Return the flat indices of the included pixels (mask non-zero), or None for no mask.

    Parameters
    ----------
    mask : array_like or None
        Spatial shape of the image; non-zero pixels are included.
    spatial_shape : tuple of int
        Spatial shape of the image.

    Returns
    -------
    numpy.ndarray or None
        Flat indices of the included pixels, None when ``mask`` is None.

    Raises
    ------
    ValueError
        When the mask's shape or dtype does not fit, or it excludes every pixel.

    Examples
    --------
    >>> mask_rows(np.array([[True, False], [False, True]]), (2, 2)).tolist()
    [0, 3]
    """
    if mask is None:
        return None
    mask = np.asarray(mask)
    check_mask(mask, spatial_shape)
    included = np.flatnonzero(mask)
    if len(included) == 0:
        raise ValueError("mask excludes every pixel: include at least n_clusters pixels")
    return included
