"""The colour spaces pixels can be clustered in: one registry entry per space.

Each :class:`ColorSpace` says which images it accepts (number of colour channels, alpha
excluded), which features it makes, how it converts pixel values into them, whether the
distinct-value (histogram) path applies and whether its features mean the same for every
dtype. Validation, models, the cross-check, the command line and the widget read this table:
a new space is one new entry.

Examples
--------
>>> [space.name for space in choices(3)]
['rgb', 'lab', 'oklab', 'gray']
>>> [space.name for space in choices(2)]
['rgb']
>>> get("oklab").feature_names(3)
('L', 'a', 'b')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# ITU-R BT.601 luma, the weights of OpenCV's RGB2GRAY.
LUMA = np.array([0.299, 0.587, 0.114])

Converter = Callable[[np.ndarray, np.dtype], np.ndarray]


@dataclass(frozen=True)
class ColorSpace:
    """One colour space of the registry.

    Attributes
    ----------
    name : str
        What ``color_space=`` takes.
    label : str
        What a user interface shows.
    channels : tuple of int or None
        Colour channel counts (alpha excluded) it accepts; None: any.
    features : tuple of str or None
        Names of the features it makes; None: one per channel, named after the channels.
    convert : callable
        ``convert(values, out_dtype)``: ``(m, C)`` pixel values to ``(m, d)`` features.
    histogram : bool
        The features are a function of the pixel value alone, so integer images can be
        clustered on their distinct values weighted by counts.
    dtype_independent : bool
        The features mean the same for every dtype (values are scaled by the dtype's range):
        a model fitted on one dtype applies to images of another.

    Examples
    --------
    >>> space = get("gray")
    >>> space.channels, space.feature_names(3), space.histogram
    ((1, 3), ('luma',), True)
    """

    name: str
    label: str
    channels: tuple[int, ...] | None
    features: tuple[str, ...] | None
    convert: Converter
    histogram: bool
    dtype_independent: bool

    def accepts(self, n_channels: int) -> bool:
        """Tell whether images with ``n_channels`` colour channels can use this space.

        Parameters
        ----------
        n_channels : int
            Colour channels of the image, alpha excluded.

        Returns
        -------
        bool
            True when the space accepts them.

        Examples
        --------
        >>> get("lab").accepts(3), get("lab").accepts(1)
        (True, False)
        """
        return self.channels is None or n_channels in self.channels

    def feature_names(self, n_channels: int) -> tuple[str, ...]:
        """Return the names of the features made from ``n_channels`` colour channels.

        Parameters
        ----------
        n_channels : int
            Colour channels of the image, alpha excluded.

        Returns
        -------
        tuple of str
            One name per feature.

        Examples
        --------
        >>> get("rgb").feature_names(3), get("rgb").feature_names(2)
        (('R', 'G', 'B'), ('channel 0', 'channel 1'))
        """
        if self.features is not None:
            return self.features
        if n_channels == 3:
            return ("R", "G", "B")
        if n_channels == 1:
            return ("value",)
        return tuple(f"channel {i}" for i in range(n_channels))

    def n_features(self, n_channels: int) -> int:
        """Count the features made from ``n_channels`` colour channels.

        Parameters
        ----------
        n_channels : int
            Colour channels of the image, alpha excluded.

        Returns
        -------
        int
            The number of features.

        Examples
        --------
        >>> get("gray").n_features(3), get("rgb").n_features(3)
        (1, 3)
        """
        return len(self.feature_names(n_channels))


def _unit_values(values: np.ndarray, name: str) -> np.ndarray:
    """float32 values in [0, 1]: integers scaled by their dtype maximum, floats checked."""
    if values.dtype.kind in "ui":
        return values.astype(np.float32) / np.float32(np.iinfo(values.dtype).max)
    unit = values.astype(np.float32, copy=False)
    if len(unit) and (unit.min() < 0 or unit.max() > 1):
        raise ValueError(
            f"color_space={name!r} needs float images with values in [0, 1]; this one has "
            f"values in [{unit.min():g}, {unit.max():g}]: rescale it or use 'rgb'"
        )
    return unit


def own_values(values: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    """Use the pixel values themselves as features (the ``rgb`` space).

    Parameters
    ----------
    values : numpy.ndarray
        ``(m, C)`` pixel values.
    out_dtype : numpy.dtype
        The feature dtype.

    Returns
    -------
    numpy.ndarray
        ``values`` as ``out_dtype`` (not copied when already of that dtype).

    Examples
    --------
    >>> own_values(np.array([[1, 2, 3]], np.uint8), np.float32).tolist()
    [[1.0, 2.0, 3.0]]
    """
    return values.astype(out_dtype, copy=False)


def _luma(values: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    if values.shape[1] == 1:
        return values.astype(out_dtype, copy=False)
    weights = LUMA.astype(out_dtype)
    return np.einsum("ij,j->i", values.astype(out_dtype, copy=False), weights)[:, None]


def _cielab(values: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    unit = _unit_values(values, "lab")
    lab = cv2.cvtColor(unit.reshape(1, -1, 3), cv2.COLOR_RGB2Lab)
    return lab.reshape(-1, 3).astype(out_dtype, copy=False)


# Björn Ottosson, "A perceptual color space for image processing" (2020),
# https://bottosson.github.io/posts/oklab/: linear sRGB -> LMS, cube root -> Lab.
_OKLAB_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_OKLAB_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)


def _oklab(values: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    unit = _unit_values(values, "oklab").astype(out_dtype)
    linear = np.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)
    lms = np.cbrt(linear @ _OKLAB_LMS.T.astype(out_dtype))
    return lms @ _OKLAB_LAB.T.astype(out_dtype)


COLOR_SPACES: dict[str, ColorSpace] = {
    space.name: space
    for space in (
        ColorSpace("rgb", "RGB", None, None, own_values, True, False),
        ColorSpace("lab", "CIELAB", (3,), ("L*", "a*", "b*"), _cielab, True, True),
        ColorSpace("oklab", "Oklab", (3,), ("L", "a", "b"), _oklab, True, True),
        ColorSpace("gray", "grey (luma)", (1, 3), ("luma",), _luma, True, False),
    )
}


def get(name) -> ColorSpace:
    """Return the registry entry called ``name``.

    Parameters
    ----------
    name : str
        A colour space name, e.g. ``"lab"``.

    Returns
    -------
    ColorSpace
        Its registry entry.

    Raises
    ------
    ValueError
        Naming the allowed names, when ``name`` is not one of them.

    Examples
    --------
    >>> get("lab").label
    'CIELAB'
    >>> get("hsv")
    Traceback (most recent call last):
    ...
    ValueError: color_space='hsv' is not allowed: use one of ('rgb', 'lab', 'oklab', 'gray')
    """
    if not isinstance(name, str) or name not in COLOR_SPACES:
        raise ValueError(f"color_space={name!r} is not allowed: use one of {tuple(COLOR_SPACES)}")
    return COLOR_SPACES[name]


def choices(n_channels: int) -> list[ColorSpace]:
    """List the spaces that accept ``n_channels`` colour channels (alpha excluded).

    Parameters
    ----------
    n_channels : int
        Colour channels of the image, alpha excluded.

    Returns
    -------
    list of ColorSpace
        In registry order.

    Examples
    --------
    >>> [space.name for space in choices(1)]
    ['rgb', 'gray']
    """
    return [space for space in COLOR_SPACES.values() if space.accepts(n_channels)]


def check(name, n_channels: int) -> ColorSpace:
    """Return the entry called ``name``, checked against ``n_channels`` colour channels.

    Parameters
    ----------
    name : str
        A colour space name.
    n_channels : int
        Colour channels of the image, alpha excluded.

    Returns
    -------
    ColorSpace
        Its registry entry.

    Raises
    ------
    ValueError
        When ``name`` is unknown or does not accept ``n_channels`` channels.

    Examples
    --------
    >>> check("lab", 3).label
    'CIELAB'
    >>> check("lab", 1)
    Traceback (most recent call last):
    ...
    ValueError: color_space='lab' needs an RGB image (3 channels), this image has 1: ...
    """
    space = get(name)
    if not space.accepts(n_channels):
        allowed = tuple(s.name for s in choices(n_channels))
        counts = " or ".join(str(c) for c in space.channels or ())
        needs = "an RGB image (3 channels)" if space.channels == (3,) else f"{counts} channels"
        raise ValueError(
            f"color_space={name!r} needs {needs}, this image has {n_channels}: use one of {allowed}"
        )
    return space
