"""Texture features: local energy of band-pass, Hessian and structure-tensor responses, n-D.

``texture=True`` (largest scale 8 pixels) or ``texture=S`` adds, on the grey (luma for
RGB, the channels' mean otherwise) image, with band scales s = 1, 2, 4, … while 2s ≤ S and an
integration scale ρ = S:

- the smoothed intensity ``G_ρ * g``;
- per band, the local energies ``sqrt(G_ρ * b²)`` of the difference of Gaussians
  ``b = G_s g − G_2s g``, of the scale-normalised Hessian (Frobenius norm, ``s²∂²``) and of the
  scale-normalised gradient (the structure tensor's trace, ``s∂``);
- per band (2-D and more), the structure tensor's anisotropy ``sqrt(‖J‖² − tr(J)²/n) / tr J``
  of ``J = G_ρ * (s²∇∇ᵀ)``: 0 where the texture has no direction, up to 1 for stripes.

Scales are in pixels of the finest axis (per axis divided by the relative spacing). The
recipe divides each column by its spread over the fitted pixels, times the colour features'
typical spread, so that every texture feature weighs as much as a colour feature. The filters
are scipy.ndimage's; a pixel's features depend only on the pixels within :func:`reach`.

Examples
--------
>>> feature_names(16.0, 2)[:3]
['texture mean', 'texture DoG 1', 'texture Hessian 1']
>>> len(feature_names(16.0, 2)), len(feature_names(4.0, 1))
(17, 7)
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from . import color_spaces
from .smooth import TRUNCATE, gaussian_radius

DEFAULT_LARGEST = 8.0

ALLOWED = "False (off), True (largest scale 8 pixels) or a largest scale >= 2 pixels"


def check_texture(texture) -> float | None:
    """Check a ``texture=`` value; return the largest scale in pixels or None (off).

    Parameters
    ----------
    texture : bool or number
        False/None: off; True: largest scale 8 pixels; a number >= 2: that largest scale.

    Returns
    -------
    float or None
        The largest scale, None for off.

    Raises
    ------
    ValueError
        Naming the value and what is allowed.

    Examples
    --------
    >>> check_texture(True), check_texture(False), check_texture(8)
    (8.0, None, 8.0)
    >>> check_texture(1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: texture=1 is not allowed: use False (off), True (largest scale 8 pixels) or ...
    """
    if texture is None or texture is False or texture is np.False_:
        return None
    if texture is True or texture is np.True_:
        return DEFAULT_LARGEST
    if isinstance(texture, Real) and np.isfinite(texture) and texture >= 2:
        return float(texture)
    raise ValueError(f"texture={texture!r} is not allowed: use {ALLOWED}")


def band_scales(largest: float) -> list[float]:
    """Return the band scales 1, 2, 4, … whose band (s to 2s) fits under ``largest``.

    Parameters
    ----------
    largest : float
        The largest scale in pixels (>= 2).

    Returns
    -------
    list of float
        The scales s.

    Examples
    --------
    >>> band_scales(16.0), band_scales(5.0)
    ([1.0, 2.0, 4.0, 8.0], [1.0, 2.0])
    """
    scales = [1.0]
    while scales[-1] * 4 <= largest:
        scales.append(scales[-1] * 2)
    return scales


def feature_names(largest: float, spatial_ndim: int) -> list[str]:
    """Return the names of the texture features, in column order.

    Parameters
    ----------
    largest : float
        The largest scale in pixels.
    spatial_ndim : int
        Number of spatial axes.

    Returns
    -------
    list of str
        One name per column.

    Examples
    --------
    >>> feature_names(2.0, 1)
    ['texture mean', 'texture DoG 1', 'texture Hessian 1', 'texture gradient 1']
    """
    names = ["texture mean"]
    for s in band_scales(largest):
        scale = f"{s:g}"
        names += [f"texture DoG {scale}", f"texture Hessian {scale}", f"texture gradient {scale}"]
        if spatial_ndim > 1:
            names.append(f"texture anisotropy {scale}")
    return names


def _sigmas(scale: float, spacing: tuple[float, ...]) -> list[float]:
    finest = min(spacing)
    return [scale * finest / s for s in spacing]


def reach(largest: float, spacing: tuple[float, ...]) -> tuple[int, ...]:
    """Per spatial axis, how many pixels away the texture features read.

    The band filters (up to scale ``largest``) followed by the integration at ``largest``.

    Parameters
    ----------
    largest : float
        The largest scale in pixels.
    spacing : tuple of float
        Pixel/voxel size per spatial axis.

    Returns
    -------
    tuple of int
        Radius in pixels per axis.

    Examples
    --------
    >>> reach(4.0, (1.0, 2.0))
    (32, 16)
    """
    widest = 2 * band_scales(largest)[-1]
    return tuple(
        gaussian_radius(a) + gaussian_radius(b)
        for a, b in zip(_sigmas(widest, spacing), _sigmas(largest, spacing), strict=True)
    )


def grey(values: np.ndarray) -> np.ndarray:
    """Return the grey value of pixel rows: luma of RGB, the mean of other channels.

    Parameters
    ----------
    values : numpy.ndarray
        ``(m, C)`` channel values (alpha excluded).

    Returns
    -------
    numpy.ndarray
        ``(m,)`` float32 (float64 for 8-byte input) grey values; non-finite values count 0.

    Examples
    --------
    >>> grey(np.array([[0, 0, 100], [10, 10, 10]], np.uint8)).tolist()
    [11.399999618530273, 10.0]
    """
    dtype = np.float64 if values.dtype.itemsize == 8 else np.float32
    rows = values.astype(dtype)
    if rows.dtype.kind == "f" and values.dtype.kind == "f":
        rows[~np.isfinite(rows)] = 0
    if rows.shape[1] == 3:
        return rows @ color_spaces.LUMA.astype(dtype)
    return rows.mean(axis=1, dtype=dtype)


def texture_features(image: np.ndarray, largest: float, spacing: tuple[float, ...]) -> np.ndarray:
    """Return the raw texture features of a grey image, one column per feature.

    Parameters
    ----------
    image : numpy.ndarray
        Grey image (spatial axes only), float.
    largest : float
        The largest scale in pixels.
    spacing : tuple of float
        Pixel/voxel size per spatial axis.

    Returns
    -------
    numpy.ndarray
        ``(n_pixels, len(feature_names(largest, ndim)))`` in the image's float dtype, pixels
        in C order.

    Examples
    --------
    >>> stripes = np.tile([0.0, 0.0, 9.0, 9.0], (16, 4))
    >>> feats = texture_features(stripes, 2.0, (1.0, 1.0))
    >>> feats.shape, bool(feats[:, 4].mean() > 0.9)
    ((256, 5), True)
    """
    from scipy import ndimage

    def gauss(data, scale, order=0):
        return ndimage.gaussian_filter(
            data, _sigmas(scale, spacing), order=order, mode="reflect", truncate=TRUNCATE
        )

    image = np.asarray(image)
    ndim = image.ndim
    columns = [gauss(image, largest)]

    def energy(squared):
        return np.sqrt(np.maximum(gauss(squared, largest), 0))

    smoothed = gauss(image, 1.0)
    for s in band_scales(largest):
        coarser = gauss(image, 2 * s)
        columns.append(energy((smoothed - coarser) ** 2))
        hessian = np.zeros_like(image)
        gradients = []
        for i in range(ndim):
            for j in range(i, ndim):
                order = [0] * ndim
                order[i] += 1
                order[j] += 1
                term = (s * s) * gauss(image, s, order)
                hessian += (term * term) * (1 if i == j else 2)
            order = [0] * ndim
            order[i] = 1
            gradients.append(s * gauss(image, s, order))
        columns.append(energy(hessian))
        columns.append(energy(sum(g * g for g in gradients)))
        if ndim > 1:
            trace = np.zeros_like(image)
            frobenius = np.zeros_like(image)
            for i in range(ndim):
                for j in range(i, ndim):
                    entry = gauss(gradients[i] * gradients[j], largest)
                    frobenius += entry * entry * (1 if i == j else 2)
                    if i == j:
                        trace += entry
            spread = np.sqrt(np.maximum(frobenius - trace * trace / ndim, 0))
            # normalised so that one direction (stripes) gives 1, none gives 0
            limit = np.sqrt(1 - 1 / ndim)
            anisotropy = np.zeros_like(image)
            np.divide(spread, trace * limit, out=anisotropy, where=trace > 0)
            columns.append(anisotropy)
        smoothed = coarser
    return np.stack([c.ravel() for c in columns], axis=1)


def parse_texture(text: str) -> float | bool:
    """Read a command-line ``--texture`` value: a largest scale, on/true or off/false.

    Parameters
    ----------
    text : str
        The text given.

    Returns
    -------
    float or bool
        A value for :func:`check_texture`.

    Raises
    ------
    ValueError
        When the text is none of those.

    Examples
    --------
    >>> parse_texture("8"), parse_texture("off")
    (8.0, False)
    """
    word = text.strip().lower()
    if word in ("on", "true", "yes"):
        return True
    if word in ("off", "false", "no", "none"):
        return False
    try:
        return float(word)
    except ValueError:
        raise ValueError(
            f"{text!r} is not allowed: use a largest scale in pixels, on or off"
        ) from None
