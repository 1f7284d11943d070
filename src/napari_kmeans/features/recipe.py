"""How pixel values (and positions) become feature rows: the recipe a model keeps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.blocks import map_blocks
from . import color_spaces
from . import pixels as ft
from .filtering import Filters
from .smooth import Smoothing


def compressible(
    dtype: np.dtype, color_space: str, spatial_weight: float, texture: float | None = None
) -> bool:
    """Tell whether pixels can be clustered (and labelled) through their distinct values.

    Exact for integer images whose features depend on the (smoothed) pixel value alone.

    Parameters
    ----------
    dtype : numpy.dtype
        The image's dtype.
    color_space : str
        A name of the colour-space registry.
    spatial_weight : float
        The spatial weight (coordinates make every pixel distinct).
    texture : float or None
        The largest texture scale (texture features make every pixel distinct), or None.

    Returns
    -------
    bool
        True for integer images, no spatial or texture features and a histogram-friendly
        space.

    Examples
    --------
    >>> compressible(np.uint8, "lab", 0.0), compressible(np.float32, "rgb", 0.0)
    (True, False)
    """
    space = color_spaces.get(color_space)
    plain = spatial_weight == 0 and texture is None
    return np.dtype(dtype).kind in "ui" and plain and space.histogram


@dataclass(frozen=True)
class FeatureRecipe:
    """How pixel values (and positions) become feature rows.

    ``value_range`` scales the coordinates (see ``features.coordinate_features``) and
    ``scale`` (``standardize=True``) divides each colour feature by its spread; both are
    measured at fitting time, so that every later image is featurised the same way. The
    colour features are made from the image after ``smooth`` (see :attr:`filters`); texture
    columns, divided by ``texture_scale``, come between them and the coordinates.

    Attributes
    ----------
    color_space : str
        A name of the colour-space registry.
    spatial_weight : float
        Weight of the coordinates (0: colour only).
    spacing : tuple of float
        Pixel/voxel size per spatial axis.
    value_range : float
        Range of the colour features the coordinates are scaled against.
    dtype : numpy.dtype
        The feature dtype: float32 or float64.
    scale : tuple of float or None
        Divisor of each colour feature (``standardize=True``), None: none.
    smooth : Smoothing or None
        The denoising filter applied before the colour features, None: none.
    texture : float or None
        Largest texture scale in pixels, None: no texture features.
    texture_scale : tuple of float or None
        Divisor of each raw texture column (set with ``texture``).

    Examples
    --------
    >>> recipe = FeatureRecipe("rgb", 1.0, (1.0,), 10.0, np.dtype(np.float64))
    >>> recipe.features(np.array([[4], [6]], np.uint8), (2,), None).tolist()
    [[4.0, 0.0], [6.0, 10.0]]
    """

    color_space: str
    spatial_weight: float
    spacing: tuple[float, ...]
    value_range: float
    dtype: np.dtype  # the feature dtype: float32 or float64
    scale: tuple[float, ...] | None = None  # divisor of each colour feature, None: none
    smooth: Smoothing | None = None
    texture: float | None = None
    texture_scale: tuple[float, ...] | None = None  # divisor of each raw texture column

    @property
    def filters(self) -> Filters:
        """The neighbourhood filters this recipe applies to an image before its rows."""
        return Filters(self.smooth, self.texture, tuple(self.spacing))

    def color(self, values: np.ndarray) -> np.ndarray:
        """Return the colour feature rows of pixel ``values`` (divided by any ``scale``).

        Parameters
        ----------
        values : numpy.ndarray
            ``(m, C)`` pixel values, alpha excluded.

        Returns
        -------
        numpy.ndarray
            ``(m, d)`` colour features.

        Examples
        --------
        >>> recipe = FeatureRecipe("rgb", 0.0, (1.0,), 1.0, np.dtype(np.float64), (2.0,))
        >>> recipe.color(np.array([[4], [6]], np.uint8)).tolist()
        [[2.0], [3.0]]
        """
        feats = ft.color_features(values, self.color_space, self.dtype)
        return divided(feats, self.scale, values)

    def features(
        self,
        values: np.ndarray,
        spatial_shape: tuple[int, ...],
        pixels: np.ndarray | None,
        texture: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return the feature rows of pixel ``values``: colour, texture, coordinates.

        Parameters
        ----------
        values : numpy.ndarray
            ``(m, C)`` pixel values, alpha excluded.
        spatial_shape : tuple of int
            Spatial shape of the image the pixels come from.
        pixels : numpy.ndarray or None
            Flat indices of the pixels in that image; None: all, in order.
        texture : numpy.ndarray, optional
            ``(m, t)`` raw texture columns of the pixels (:class:`Filters`), needed when the
            recipe has ``texture``.

        Returns
        -------
        numpy.ndarray
            ``(m, d)`` features.

        Examples
        --------
        >>> recipe = FeatureRecipe("rgb", 1.0, (1.0,), 10.0, np.dtype(np.float64))
        >>> recipe.features(np.array([[6]], np.uint8), (2,), np.array([1])).tolist()
        [[6.0, 10.0]]
        """
        feats = self.color(values)
        parts = [feats]
        if self.texture is not None:
            divisors = np.asarray(self.texture_scale, dtype=self.dtype)
            parts.append(texture.astype(self.dtype) / divisors)
        if self.spatial_weight > 0:
            parts.append(
                ft.coordinate_features(
                    spatial_shape,
                    self.spacing,
                    self.spatial_weight,
                    self.value_range,
                    pixels,
                    self.dtype,
                )
            )
        return feats if len(parts) == 1 else np.concatenate(parts, axis=1)


def divided(feats: np.ndarray, scale: tuple[float, ...] | None, values: np.ndarray):
    """``feats / scale``, in place unless ``feats`` may be the caller's ``values``."""
    if scale is None:
        return feats
    divisors = np.asarray(scale, dtype=feats.dtype)
    if np.may_share_memory(feats, values):
        return feats / divisors
    feats /= divisors
    return feats


def spread(feats: np.ndarray, weights: np.ndarray | None) -> tuple[float, ...]:
    """Return the standard deviation of each feature column (rows weighted), 1.0 if constant.

    Summed in float64 block by block, shifted by the first row: no temporary grows with the
    rows.

    Parameters
    ----------
    feats : numpy.ndarray
        ``(m, d)`` feature rows.
    weights : numpy.ndarray or None
        ``(m,)`` weight of each row; None: 1 each.

    Returns
    -------
    tuple of float
        One standard deviation per column (1.0 for a constant column).

    Examples
    --------
    >>> spread(np.array([[0.0, 5.0], [2.0, 5.0]]), None)
    (1.0, 1.0)
    >>> spread(np.array([[0.0], [4.0]]), np.array([3, 1]))
    (1.7320508075688772,)
    """
    shift = feats[0].astype(np.float64)

    def block(rows: slice):
        centred = feats[rows].astype(np.float64) - shift
        w = np.ones(len(centred)) if weights is None else weights[rows].astype(np.float64)
        return w.sum(), w @ centred, w @ (centred * centred)

    parts = map_blocks(block, len(feats))
    total = sum(p[0] for p in parts)
    mean = sum(p[1] for p in parts) / total
    variance = np.maximum(sum(p[2] for p in parts) / total - mean * mean, 0.0)
    deviation = np.sqrt(variance)
    return tuple(float(d) if d > 0 else 1.0 for d in deviation)


def texture_divisors(
    colour: np.ndarray, texture: np.ndarray, weights: np.ndarray | None
) -> tuple[float, ...]:
    """Return the divisor of each raw texture column: its spread over the colour features'.

    Divided by these, every texture column spreads as much as a typical (root mean square)
    colour feature, so that neither group drowns the other's columns.

    Parameters
    ----------
    colour : numpy.ndarray
        ``(m, d)`` colour features of the fitted pixels (after any ``scale``).
    texture : numpy.ndarray
        ``(m, t)`` raw texture columns of the same pixels.
    weights : numpy.ndarray or None
        ``(m,)`` weight of each row; None: 1 each.

    Returns
    -------
    tuple of float
        ``t`` positive divisors.

    Examples
    --------
    >>> colour = np.array([[0.0], [10.0]])
    >>> texture_divisors(colour, np.array([[0.0, 1.0], [2.0, 1.0]]), None)
    (0.2, 0.2)
    """
    typical = float(np.sqrt(np.mean(np.square(spread(colour, weights)))))
    return tuple(s / typical for s in spread(texture, weights))
