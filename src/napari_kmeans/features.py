"""Pixels ⇄ feature rows: channel layout, colour spaces, mask and pixel coordinates.

Everything here is a pure function of arrays; ``api.segment`` strings them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import cv2
import numpy as np

COLOR_SPACES = ("rgb", "lab", "gray")
# ITU-R BT.601 luma, the weights of OpenCV's RGB2GRAY.
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class PixelTable:
    """An image seen as one row of channel values per pixel.

    Attributes
    ----------
    values : (n, C) channel values (alpha excluded), pixels in C order of the spatial axes.
    alpha : (n,) alpha values, or None.
    spatial_shape : shape of the image without its channel axis.
    channel_axis : the channel axis of the original image (non-negative), or None.
    """

    values: np.ndarray
    alpha: np.ndarray | None
    spatial_shape: tuple[int, ...]
    channel_axis: int | None


def resolve_channel_axis(image: np.ndarray, channel_axis) -> int | None:
    """The image's channel axis as a non-negative int, or None.

    ``"auto"`` treats a last axis of length 3 or 4 as RGB(A) when the image has at least three
    dimensions, as napari guesses; ``None`` means every element is one value.

    Examples
    --------
    >>> resolve_channel_axis(np.zeros((5, 6, 3)), "auto")
    2
    >>> resolve_channel_axis(np.zeros((5, 3)), "auto") is None
    True
    """
    if isinstance(channel_axis, str) and channel_axis == "auto":
        return image.ndim - 1 if image.ndim >= 3 and image.shape[-1] in (3, 4) else None
    if channel_axis is None:
        return None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, Integral):
        raise ValueError(
            f"channel_axis={channel_axis!r} is not allowed: use 'auto', None or an axis index"
        )
    if not -image.ndim <= channel_axis < image.ndim or image.ndim < 2:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for an image of shape {image.shape}: "
            f"it must leave at least one spatial axis, between {-image.ndim} and {image.ndim - 1}"
        )
    return int(channel_axis) % image.ndim


def pixel_table(image: np.ndarray, channel_axis) -> PixelTable:
    """Split ``image`` into per-pixel channel rows (alpha apart) and its spatial shape.

    Alpha is recognised only with ``channel_axis="auto"`` and 4 channels (RGBA); with an
    explicit axis every channel is data, as in multichannel microscopy.

    Examples
    --------
    >>> t = pixel_table(np.zeros((2, 3, 4), np.uint8), "auto")
    >>> t.values.shape, t.alpha.shape, t.spatial_shape
    ((6, 3), (6,), (2, 3))
    """
    axis = resolve_channel_axis(image, channel_axis)
    if axis is None:
        return PixelTable(image.reshape(-1, 1), None, image.shape, None)
    channels_last = np.moveaxis(image, axis, -1)
    spatial_shape = channels_last.shape[:-1]
    rows = channels_last.reshape(-1, channels_last.shape[-1])
    is_rgba = isinstance(channel_axis, str) and rows.shape[1] == 4
    if is_rgba:
        return PixelTable(rows[:, :3], rows[:, 3], spatial_shape, axis)
    return PixelTable(rows, None, spatial_shape, axis)


def check_color_space(color_space, n_channels: int) -> str:
    """Validate ``color_space`` for an image with ``n_channels`` (alpha excluded)."""
    if color_space not in COLOR_SPACES:
        raise ValueError(f"color_space={color_space!r} is not allowed: use one of {COLOR_SPACES}")
    if color_space == "lab" and n_channels != 3:
        raise ValueError(
            f"color_space='lab' needs an RGB image (3 channels), this one has {n_channels}: "
            "use 'rgb' or 'gray'"
        )
    if color_space == "gray" and n_channels not in (1, 3):
        raise ValueError(
            f"color_space='gray' needs 1 or 3 (RGB) channels, this image has {n_channels}: "
            "use 'rgb'"
        )
    return color_space


def feature_dtype(dtype: np.dtype) -> np.dtype:
    """float32 when it holds every value of ``dtype`` exactly enough, else float64."""
    dtype = np.dtype(dtype)
    small = dtype.kind in "ui" and dtype.itemsize <= 2
    return np.dtype(np.float32 if small or dtype in (np.float16, np.float32) else np.float64)


def _unit_scale(dtype: np.dtype) -> float:
    """The value that maps to 1.0 when converting to the [0, 1] range OpenCV's Lab expects."""
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def color_features(values: np.ndarray, color_space: str, out_dtype: np.dtype) -> np.ndarray:
    """Feature rows of pixel values ``(m, C)`` in the given colour space.

    ``rgb`` keeps the image's own values; ``gray`` is BT.601 luma in the image's units (one
    channel is used as is); ``lab`` is CIELAB (L* 0–100) through OpenCV, from integers scaled by
    their dtype maximum or from floats that must lie in [0, 1].

    Examples
    --------
    >>> color_features(np.array([[255, 255, 255]], np.uint8), "lab", np.float64).round(1).tolist()
    [[100.0, 0.0, 0.0]]
    """
    if color_space == "rgb" or (color_space == "gray" and values.shape[1] == 1):
        return values.astype(out_dtype, copy=False)
    if color_space == "gray":
        luma = LUMA.astype(out_dtype)
        return np.einsum("ij,j->i", values.astype(out_dtype, copy=False), luma)[:, None]
    unit = values.astype(np.float32) / np.float32(_unit_scale(values.dtype))
    if values.dtype.kind == "f" and len(unit) and (unit.min() < 0 or unit.max() > 1):
        raise ValueError(
            "color_space='lab' needs float images with values in [0, 1]; this one spans "
            f"[{unit.min():g}, {unit.max():g}]: rescale it or use 'rgb'"
        )
    lab = cv2.cvtColor(unit.reshape(1, -1, 3), cv2.COLOR_RGB2Lab)
    return lab.reshape(-1, 3).astype(out_dtype, copy=False)


def check_spatial_weight(spatial_weight) -> float:
    if (
        isinstance(spatial_weight, bool)
        or not isinstance(spatial_weight, Real)
        or not np.isfinite(spatial_weight)
        or spatial_weight < 0
    ):
        raise ValueError(
            f"spatial_weight={spatial_weight!r} is not allowed: it must be a finite number >= 0"
        )
    return float(spatial_weight)


def check_spacing(spacing, spatial_ndim: int) -> tuple[float, ...]:
    """Per-axis pixel/voxel spacing, one positive number per spatial axis (default all 1)."""
    if spacing is None:
        return (1.0,) * spatial_ndim
    values = tuple(np.atleast_1d(np.asarray(spacing, dtype=object)).tolist())
    ok = len(values) == spatial_ndim and all(
        isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) and v > 0 for v in values
    )
    if not ok:
        raise ValueError(
            f"spacing={spacing!r} is not allowed: give {spatial_ndim} positive finite numbers, "
            "one per spatial axis"
        )
    return tuple(float(v) for v in values)


def coordinate_features(
    spatial_shape: tuple[int, ...],
    spacing: tuple[float, ...],
    weight: float,
    value_range: float,
    pixels: np.ndarray | None,
    dtype: np.dtype,
) -> np.ndarray:
    """``(m, ndim)`` scaled coordinates of the chosen pixels (all when ``pixels`` is None).

    Scaled so that ``weight`` 1 makes the image's largest physical extent weigh as much as
    ``value_range`` (SLIC-style compactness).

    Examples
    --------
    >>> coordinate_features((2, 3), (1.0, 1.0), 1.0, 255.0, None, np.float64)[-1].tolist()
    [127.5, 255.0]
    """
    dtype = np.dtype(dtype)
    extent = max((n - 1) * s for n, s in zip(spatial_shape, spacing, strict=True)) or 1.0
    scale = weight * value_range / extent
    flat = np.arange(int(np.prod(spatial_shape))) if pixels is None else pixels
    coords = np.unravel_index(flat, spatial_shape)
    return np.stack(
        [c.astype(dtype) * dtype.type(s * scale) for c, s in zip(coords, spacing, strict=True)],
        axis=1,
    )


def mask_rows(mask, spatial_shape: tuple[int, ...]) -> np.ndarray | None:
    """Flat indices of the included pixels (mask non-zero), or None for no mask."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != tuple(spatial_shape):
        raise ValueError(
            f"mask has shape {mask.shape}: it must have the image's spatial shape {spatial_shape}"
        )
    if mask.dtype.kind not in "biuf":
        raise ValueError(f"mask has dtype {mask.dtype}: use booleans (True = included)")
    included = np.flatnonzero(mask)
    if len(included) == 0:
        raise ValueError("mask excludes every pixel: include at least n_clusters pixels")
    return included
