"""The neighbourhood stage of the recipe: denoising and texture, before pixels become rows.

:class:`Filters` turns an image (or a chunk of it with its overlap) into the values the
colour features are made from (the smoothed image) and the raw texture columns. The original
pixels stay what ``palette``, ``recolored`` and the features table are means of.

Examples
--------
>>> from napari_kmeans.features.smooth import Smoothing
>>> from napari_kmeans.features.pixels import channel_layout
>>> f = Filters(Smoothing("median", 1.0), None, (1.0, 1.0))
>>> img = np.array([[0, 0, 0], [0, 90, 0], [0, 0, 0]], np.uint8)
>>> values, texture = f.apply(img, channel_layout(img.shape, "auto"), None)
>>> int(values.max()), texture
(0, None)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import pixels as ft
from . import texture as tx
from .smooth import Smoothing

_NEEDS_SCIPY = (
    "smooth= and texture= filter the image with scipy.ndimage, which is not installed: "
    'pip install scipy (or pip install "napari-kmeans[all]")'
)


def require_scipy() -> None:
    """Raise ImportError naming what to install when scipy.ndimage is missing.

    Examples
    --------
    >>> require_scipy()
    """
    try:
        import scipy.ndimage  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is a base dependency
        raise ImportError(_NEEDS_SCIPY) from None


@dataclass(frozen=True)
class Filters:
    """The filters a recipe applies to the whole image before making feature rows.

    Attributes
    ----------
    smooth : Smoothing or None
        Denoising of every channel, or None.
    texture : float or None
        Largest texture scale in pixels, or None for no texture features.
    spacing : tuple of float
        Pixel/voxel size per spatial axis.

    Examples
    --------
    >>> Filters(Smoothing("gaussian", 1.0), 4.0, (1.0, 1.0)).reach()
    (32, 32)
    >>> Filters(None, None, (1.0,)).active
    False
    """

    smooth: Smoothing | None
    texture: float | None
    spacing: tuple[float, ...]

    @property
    def active(self) -> bool:
        """Whether any filter applies."""
        return self.smooth is not None or self.texture is not None

    def n_texture(self) -> int:
        """Return the number of texture columns (0 without texture)."""
        if self.texture is None:
            return 0
        return len(tx.feature_names(self.texture, len(self.spacing)))

    def reach(self) -> tuple[int, ...]:
        """Per spatial axis, the overlap chunks need for results equal to the whole image's.

        Returns
        -------
        tuple of int
            Pixels per spatial axis.

        Examples
        --------
        >>> Filters(Smoothing("median", 1.0), None, (1.0, 2.0)).reach()
        (1, 0)
        """
        zero = (0,) * len(self.spacing)
        smooth = zero if self.smooth is None else self.smooth.reach(self.spacing)
        texture = zero if self.texture is None else tx.reach(self.texture, self.spacing)
        return tuple(max(a, b) for a, b in zip(smooth, texture, strict=True))

    def apply(
        self, image: np.ndarray, layout: ft.ChannelLayout, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the image the colour features are made from, and the raw texture columns.

        Parameters
        ----------
        image : numpy.ndarray
            The image (or a chunk with every channel).
        layout : ChannelLayout
            Its channel layout (``spatial_shape`` unused: the image's own shape is).
        mask : numpy.ndarray or None
            Spatial shape, non-zero where the pixel is clustered.

        Returns
        -------
        values_image : numpy.ndarray
            ``image`` smoothed (``image`` itself without smoothing), same shape and dtype.
        texture : numpy.ndarray or None
            ``(n_pixels, n_texture)`` raw texture columns of every pixel in C order, or None.

        Examples
        --------
        >>> from napari_kmeans.features.pixels import channel_layout
        >>> img = np.zeros((8, 8), np.float32)
        >>> layout = channel_layout(img.shape, None)
        >>> _, cols = Filters(None, 2.0, (1.0, 1.0)).apply(img, layout, None)
        >>> cols.shape
        (64, 5)
        """
        if not self.active:
            return image, None
        require_scipy()
        smoothed = image
        if self.smooth is not None:
            included = None if mask is None else np.asarray(mask) != 0
            smoothed = self.smooth.apply(image, layout.axis, self.spacing, included)
        if self.texture is None:
            return smoothed, None
        table = layout.table(image)
        grey = tx.grey(table.values).reshape(table.spatial_shape)
        return smoothed, tx.texture_features(grey, self.texture, self.spacing)


def filtered_rows(
    filters: Filters,
    image: np.ndarray,
    layout: ft.ChannelLayout,
    included: np.ndarray | None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return the filtered values and raw texture columns of an image's clustered pixels.

    Parameters
    ----------
    filters : Filters
        The recipe's filters.
    image : numpy.ndarray
        The whole image.
    layout : ChannelLayout
        Its channel layout.
    included : numpy.ndarray or None
        Flat indices of the clustered pixels (the Gaussian averages these only); None: all.

    Returns
    -------
    values : numpy.ndarray or None
        ``(m, C)`` smoothed values of the pixels; None without smoothing (the originals are
        the values).
    texture : numpy.ndarray or None
        ``(m, t)`` raw texture columns, or None without texture.

    Examples
    --------
    >>> from napari_kmeans.features.pixels import channel_layout
    >>> img = np.array([[0, 0, 0], [0, 90, 0], [0, 0, 0]], np.uint8)
    >>> f = Filters(Smoothing("median", 1.0), None, (1.0, 1.0))
    >>> values, texture = filtered_rows(f, img, channel_layout(img.shape, None), np.array([4]))
    >>> values.tolist(), texture
    ([[0]], None)
    """
    if not filters.active:
        return None, None
    mask = None
    if included is not None:
        mask = np.zeros(layout.spatial_shape, dtype=bool)
        mask.flat[included] = True
    smoothed, texture = filters.apply(image, layout, mask)
    values = None
    if filters.smooth is not None:
        values = layout.table(smoothed).values
        values = values if included is None else values[included]
    if texture is not None and included is not None:
        texture = texture[included]
    return values, texture
