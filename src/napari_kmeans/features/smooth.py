"""Denoising before clustering: a Gaussian or a median over the spatial axes, per channel.

Spelling of ``smooth=`` (checked by :func:`check_smooth`):

- ``None`` or ``0``: off;
- a number σ > 0, or ``("gaussian", σ)``: a Gaussian of standard deviation σ in the units of
  ``spacing`` along every spatial axis (σ / spacing pixels per axis: anisotropic stacks are
  smoothed alike in physical space), never across channels;
- ``"median"`` or ``("median", r)``: the median of the box of pixels within ``r`` spacing
  units of the pixel along each axis (``"median"``: one pixel of the finest axis, a 3×3
  median in 2-D), for salt-and-pepper noise and JPEG blocks;
- ``"auto"``: :func:`resolve` estimates each channel's noise (:func:`noise_sigma`) and picks
  the Gaussian that brings the noise down to a tenth of the signal's spread, or none when the
  image is already that clean, or when neighbouring pixels are no more alike than any two
  (:func:`coherence`: nothing spatial for a smoothing to recover).

Filters are scipy.ndimage's (n-D, separable, the field's reference); the result of a pixel
depends only on the pixels within :meth:`Smoothing.reach` of it, so chunks filtered with that
overlap equal the image filtered whole. Integer images are smoothed in their own dtype
(rounded, clipped), so the distinct-value histogram keeps applying.

Examples
--------
>>> check_smooth(1.5)
Smoothing(kind='gaussian', size=1.5)
>>> check_smooth("median").reach((1.0, 1.0))
(1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np

KINDS = ("gaussian", "median")
# the Gaussian is cut at this many σ (scipy.ndimage's default): the reach of the filter
TRUNCATE = 4.0
# "auto": noise brought down to this fraction of the signal's spread, and the widest σ chosen
AUTO_TARGET = 0.1
AUTO_MAX_SIGMA = 1.0
# "auto" smooths only images whose neighbouring pixels correlate at least this much
AUTO_MIN_COHERENCE = 0.2
# "auto" estimates the noise on at most this many pixels (a regular subset of lines)
NOISE_PIXELS = 1 << 18

ALLOWED = (
    "None or 0 (off), 'auto', a Gaussian sigma > 0 in spacing units, ('gaussian', sigma), "
    "'median' or ('median', radius)"
)


@dataclass(frozen=True)
class Smoothing:
    """A resolved denoising filter: its kind and its size in spacing units.

    Attributes
    ----------
    kind : str
        ``"gaussian"`` or ``"median"``.
    size : float or None
        Gaussian σ, or median radius; None (median only) until :meth:`for_spacing` sets
        one pixel of the finest axis.

    Examples
    --------
    >>> Smoothing("gaussian", 2.0).pixels((1.0, 2.0))
    (2.0, 1.0)
    >>> Smoothing("median", 2.0).pixels((1.0, 2.0))
    (5, 3)
    """

    kind: str
    size: float | None

    def for_spacing(self, spacing: tuple[float, ...]) -> Smoothing:
        """Return this filter with a size (the default median radius: the finest spacing).

        Parameters
        ----------
        spacing : tuple of float
            Pixel/voxel size per spatial axis.

        Returns
        -------
        Smoothing
            A filter whose ``size`` is a number.

        Examples
        --------
        >>> Smoothing("median", None).for_spacing((2.0, 0.5)).size
        0.5
        """
        if self.size is not None:
            return self
        return Smoothing(self.kind, float(min(spacing)))

    def pixels(self, spacing: tuple[float, ...]) -> tuple:
        """Per spatial axis: the Gaussian's σ in pixels, or the median's window width.

        Parameters
        ----------
        spacing : tuple of float
            Pixel/voxel size per spatial axis.

        Returns
        -------
        tuple
            One float σ or one odd int width per spatial axis.

        Examples
        --------
        >>> Smoothing("median", 1.0).pixels((1.0, 1.0, 2.0))
        (3, 3, 1)
        """
        size = self.for_spacing(spacing).size
        if self.kind == "gaussian":
            return tuple(size / s for s in spacing)
        # a tiny tolerance: a radius equal to the spacing reaches the neighbour
        return tuple(2 * int(np.floor(size / s + 1e-9)) + 1 for s in spacing)

    def reach(self, spacing: tuple[float, ...]) -> tuple[int, ...]:
        """Per spatial axis, how many pixels away the filter reads.

        Parameters
        ----------
        spacing : tuple of float
            Pixel/voxel size per spatial axis.

        Returns
        -------
        tuple of int
            The filter's radius in pixels per axis.

        Examples
        --------
        >>> Smoothing("gaussian", 1.0).reach((1.0, 0.5))
        (4, 8)
        """
        if self.kind == "gaussian":
            return tuple(gaussian_radius(sigma) for sigma in self.pixels(spacing))
        return tuple(width // 2 for width in self.pixels(spacing))

    def to_dict(self) -> dict:
        """Return the filter as JSON: ``{"kind": ..., "size": ...}``.

        Returns
        -------
        dict
            Kind and size.

        Examples
        --------
        >>> Smoothing("median", 1.0).to_dict()
        {'kind': 'median', 'size': 1.0}
        """
        return {"kind": self.kind, "size": self.size}

    def apply(
        self,
        image: np.ndarray,
        channel_axis: int | None,
        spacing: tuple[float, ...],
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return ``image`` filtered along its spatial axes, in its own dtype (a new array).

        Integers are rounded and clipped to their dtype's range. With a ``mask`` (spatial
        shape, True where clustered) the Gaussian averages included pixels only; the median
        window reads every pixel. Values that are not finite count as 0.

        Parameters
        ----------
        image : numpy.ndarray
            The image (or a chunk of it with every channel).
        channel_axis : int or None
            Its channel axis (never filtered across).
        spacing : tuple of float
            Pixel/voxel size per spatial axis.
        mask : numpy.ndarray, optional
            Spatial shape, True where the pixel is clustered.

        Returns
        -------
        numpy.ndarray
            The filtered image, same shape and dtype.

        Examples
        --------
        >>> img = np.array([[0, 0, 0], [0, 90, 0], [0, 0, 0]], np.uint8)
        >>> Smoothing("median", 1.0).apply(img, None, (1.0, 1.0)).max()
        np.uint8(0)
        >>> Smoothing("gaussian", 0.5).apply(img, None, (1.0, 1.0))[1].tolist()
        [8, 56, 8]
        """
        from scipy import ndimage

        per_axis = list(self.pixels(spacing))
        if channel_axis is not None:
            per_axis.insert(channel_axis, 0.0 if self.kind == "gaussian" else 1)
        work = image.astype(np.float32 if image.dtype.itemsize <= 2 else np.float64)
        if work.dtype.kind == "f" and image.dtype.kind == "f":
            work[~np.isfinite(work)] = 0
        if self.kind == "median":
            out = ndimage.median_filter(work, size=per_axis, mode="reflect")
        elif mask is None:
            out = gaussian(work, per_axis, channel_axis)
        else:
            weights = mask.astype(work.dtype)
            if channel_axis is not None:
                weights = np.expand_dims(weights, channel_axis)
            work *= weights
            out = gaussian(work, per_axis, channel_axis)
            spatial = [s for i, s in enumerate(per_axis) if i != channel_axis]
            total = gaussian(mask.astype(work.dtype), spatial, None)
            if channel_axis is not None:
                total = np.expand_dims(total, channel_axis)
            # an excluded pixel far from any included one keeps its value (never clustered)
            np.divide(out, total, out=out, where=total > 0)
            out = np.where(total > 0, out, image)
        return in_dtype(out, image.dtype)


def gaussian(work: np.ndarray, sigmas: list, channel_axis: int | None) -> np.ndarray:
    """Return ``work`` (float) smoothed by a Gaussian of ``sigmas`` pixels per axis.

    The kernel is scipy.ndimage's (cut at ``TRUNCATE`` σ, mirrored border ``d c b a | a b c d``);
    2-D images with their channels last go through OpenCV's separable filter with that same
    kernel (about five times faster), others through ``scipy.ndimage.gaussian_filter``.

    Parameters
    ----------
    work : numpy.ndarray
        Float32 or float64 image.
    sigmas : list of float
        σ in pixels per axis of ``work`` (0 on the channel axis).
    channel_axis : int or None
        The channel axis of ``work``.

    Returns
    -------
    numpy.ndarray
        The smoothed image, same shape and dtype.

    Examples
    --------
    >>> from scipy import ndimage
    >>> img = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    >>> ours = gaussian(img, [1.5, 0.7], None)
    >>> bool(np.allclose(ours, ndimage.gaussian_filter(img, [1.5, 0.7]), atol=1e-6))
    True
    """
    spatial_ndim = work.ndim - (channel_axis is not None)
    channels_last = channel_axis is None or channel_axis == work.ndim - 1
    channels = 1 if channel_axis is None else work.shape[channel_axis]
    if spatial_ndim == 2 and channels_last and channels <= 4 and work.dtype == np.float32:
        import cv2

        rows, columns = (np.asarray(_kernel(s), np.float32) for s in sigmas[:2])
        # OpenCV names the kernels along x (columns) then y (rows)
        return cv2.sepFilter2D(
            np.ascontiguousarray(work), -1, columns, rows, borderType=cv2.BORDER_REFLECT
        ).reshape(work.shape)
    from scipy import ndimage

    return ndimage.gaussian_filter(work, sigmas, mode="reflect", truncate=TRUNCATE)


def _kernel(sigma: float) -> np.ndarray:
    """scipy.ndimage's normalised Gaussian kernel of ``sigma`` pixels."""
    radius = gaussian_radius(sigma)
    if sigma == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x * x)
    return phi / phi.sum()


def gaussian_radius(sigma: float) -> int:
    """Return the radius in pixels of scipy.ndimage's Gaussian of ``sigma`` pixels.

    Parameters
    ----------
    sigma : float
        σ in pixels.

    Returns
    -------
    int
        ``int(TRUNCATE * sigma + 0.5)``, as scipy.ndimage computes it.

    Examples
    --------
    >>> gaussian_radius(1.0), gaussian_radius(0.0)
    (4, 0)
    """
    return int(TRUNCATE * float(sigma) + 0.5)


def in_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Return float ``values`` in ``dtype``: integers rounded and clipped to its range.

    Parameters
    ----------
    values : numpy.ndarray
        Float values.
    dtype : numpy.dtype
        The dtype to return.

    Returns
    -------
    numpy.ndarray
        ``values`` cast to ``dtype``.

    Examples
    --------
    >>> in_dtype(np.array([-3.0, 2.5, 3.5, 300.0]), np.dtype(np.uint8)).tolist()
    [0, 2, 4, 255]
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui":
        return values.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    rounded = np.rint(values, out=values if values.dtype.kind == "f" else None)
    return np.clip(rounded, info.min, info.max, out=rounded).astype(dtype)


def check_smooth(smooth) -> Smoothing | str | None:
    """Check a ``smooth=`` value; return None (off), ``"auto"`` or a :class:`Smoothing`.

    Parameters
    ----------
    smooth : None, number, str or tuple
        See the module's documentation.

    Returns
    -------
    Smoothing, "auto" or None
        The checked value (a median without radius has ``size`` None).

    Raises
    ------
    ValueError
        Naming the value and what is allowed.

    Examples
    --------
    >>> check_smooth(0) is None, check_smooth("auto"), check_smooth(("median", 2))
    (True, 'auto', Smoothing(kind='median', size=2.0))
    >>> check_smooth(-1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: smooth=-1 is not allowed: use None or 0 (off), 'auto', a Gaussian sigma ...
    """
    error = ValueError(f"smooth={smooth!r} is not allowed: use {ALLOWED}")
    if smooth is None or isinstance(smooth, Smoothing):
        return smooth
    if isinstance(smooth, str):
        if smooth == "auto":
            return "auto"
        if smooth == "median":
            return Smoothing("median", None)
        raise error
    if isinstance(smooth, tuple | list):
        if len(smooth) != 2 or smooth[0] not in KINDS:
            raise error
        size = _size(smooth[1], error)
        if size == 0:
            raise error
        return Smoothing(smooth[0], size)
    size = _size(smooth, error)
    return None if size == 0 else Smoothing("gaussian", size)


def _size(value, error: ValueError) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise error
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise error
    return value


def smoothing_from_dict(data) -> Smoothing | None:
    """Return the filter written by :meth:`Smoothing.to_dict` (None stays None).

    Parameters
    ----------
    data : dict or None
        ``{"kind": ..., "size": ...}``.

    Returns
    -------
    Smoothing or None
        The filter.

    Raises
    ------
    ValueError
        When ``data`` is not such a filter.

    Examples
    --------
    >>> smoothing_from_dict({"kind": "gaussian", "size": 1.0})
    Smoothing(kind='gaussian', size=1.0)
    """
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) != {"kind", "size"}:
        raise ValueError(f"smooth={data!r} is not a filter: give {{'kind': ..., 'size': ...}}")
    checked = check_smooth((data["kind"], data["size"]))
    if not isinstance(checked, Smoothing):
        raise ValueError(f"smooth={data!r} is not a filter")
    return checked


def noise_lines(image, channel_axis: int | None) -> np.ndarray:
    """Return the regular subset of image lines the noise is estimated on.

    Lines run along the last spatial axis; every ``step``-th index of the leading spatial axes
    is kept, so that at most about ``NOISE_PIXELS`` pixels are read. The subset depends on the
    shape alone: a NumPy array and a dask array of the same image give the same lines.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        The image.
    channel_axis : int or None
        Its channel axis.

    Returns
    -------
    numpy.ndarray
        ``(lines, length, C)`` float64 values.

    Examples
    --------
    >>> noise_lines(np.zeros((4, 5), np.uint8), None).shape
    (4, 5, 1)
    """
    if channel_axis is None:
        image = image[..., None]
    elif channel_axis != image.ndim - 1:
        image = np.moveaxis(image, channel_axis, -1)
    spatial = image.shape[:-1]
    leading = int(np.prod(spatial[:-1])) if len(spatial) > 1 else 1
    step = max(1, int(np.ceil(leading * spatial[-1] / NOISE_PIXELS)))
    if len(spatial) > 1:
        # stride the leading axes evenly: the step is spread as a per-axis root
        per_axis = max(1, int(round(step ** (1 / (len(spatial) - 1)))))
        image = image[(slice(None, None, per_axis),) * (len(spatial) - 1)]
    lines = np.asarray(image, dtype=np.float64)
    return lines.reshape(-1, spatial[-1], lines.shape[-1])


def noise_sigma(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimate each channel's noise σ and the spread of its signal from image lines.

    The noise is the robust (median absolute deviation) spread of the differences between
    neighbouring pixels, divided by √2: edges are few and the MAD ignores them. The signal's
    spread is what the image's standard deviation keeps once that noise is taken out.
    Non-finite values are ignored.

    Parameters
    ----------
    lines : numpy.ndarray
        ``(lines, length, C)`` values (:func:`noise_lines`).

    Returns
    -------
    noise : numpy.ndarray
        ``(C,)`` noise σ per channel.
    signal : numpy.ndarray
        ``(C,)`` spread of the signal per channel.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise, signal = noise_sigma(rng.normal(0, 2.0, (200, 200, 1)))
    >>> bool(abs(noise[0] - 2.0) < 0.1), bool(signal[0] < 0.5)
    (True, True)
    """
    channels = lines.shape[-1]
    noise = np.zeros(channels)
    signal = np.zeros(channels)
    for c in range(channels):
        values = lines[..., c]
        diffs = np.diff(values, axis=1).ravel()
        diffs = diffs[np.isfinite(diffs)]
        finite = values[np.isfinite(values)]
        if len(diffs) == 0 or len(finite) == 0:
            continue
        mad = np.median(np.abs(diffs - np.median(diffs)))
        noise[c] = 1.4826 * mad / np.sqrt(2.0)
        signal[c] = np.sqrt(max(float(np.var(finite)) - noise[c] ** 2, 0.0))
    return noise, signal


def coherence(lines: np.ndarray) -> float:
    """Return the mean correlation of neighbouring pixels along the lines, over channels.

    ``1 - var(differences) / (2 var(values))``: near 1 for images made of regions, near 0
    when neighbours are no more alike than any two pixels (pure noise, or classes drawn
    pixel by pixel), where smoothing has nothing to recover.

    Parameters
    ----------
    lines : numpy.ndarray
        ``(lines, length, C)`` values (:func:`noise_lines`).

    Returns
    -------
    float
        The correlation, averaged over channels (constant channels count 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> abs(coherence(rng.normal(size=(100, 100, 1)))) < 0.05
    True
    >>> coherence(np.repeat([0.0, 5.0], 50)[None, :, None].repeat(10, 0)) > 0.9
    True
    """
    values = []
    for c in range(lines.shape[-1]):
        channel = lines[..., c]
        diffs = np.diff(channel, axis=1)
        finite = np.isfinite(diffs)
        variance = float(np.var(channel[np.isfinite(channel)])) if finite.any() else 0.0
        if variance == 0:
            values.append(1.0)
            continue
        values.append(1.0 - float(np.var(diffs[finite])) / (2.0 * variance))
    return float(np.mean(values))


def auto_sigma(noise: np.ndarray, signal: np.ndarray, spatial_ndim: int) -> float:
    """Return the Gaussian σ in pixels that brings the noise to ``AUTO_TARGET`` of the signal.

    A Gaussian of σ pixels divides white noise's standard deviation by ``(2 √π σ)^(d/2)`` in
    ``d`` dimensions; σ is the one reaching the target for the noisiest channel relative to
    its signal (root mean square over channels), at most ``AUTO_MAX_SIGMA``; 0 when the image
    already meets the target.

    Parameters
    ----------
    noise : numpy.ndarray
        ``(C,)`` noise σ per channel (:func:`noise_sigma`).
    signal : numpy.ndarray
        ``(C,)`` spread of the signal per channel.
    spatial_ndim : int
        Number of spatial axes.

    Returns
    -------
    float
        σ in pixels, 0 for none.

    Examples
    --------
    >>> auto_sigma(np.array([1.0]), np.array([100.0]), 2)
    0.0
    >>> round(auto_sigma(np.array([2.0]), np.array([10.0]), 2), 3)
    0.564
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(signal > 0, noise / signal, np.where(noise > 0, np.inf, 0.0))
    ratio = float(np.sqrt(np.mean(ratio**2)))
    if ratio <= AUTO_TARGET:
        return 0.0
    sigma = (ratio / AUTO_TARGET) ** (2.0 / spatial_ndim) / (2.0 * np.sqrt(np.pi))
    return float(min(sigma, AUTO_MAX_SIGMA))


def resolve(
    smooth, image, channel_axis: int | None, spacing: tuple[float, ...]
) -> Smoothing | None:
    """Return the filter to apply to ``image``: ``"auto"`` chosen from its noise.

    Parameters
    ----------
    smooth : Smoothing, "auto" or None
        A value checked by :func:`check_smooth`.
    image : numpy.ndarray or dask.array.Array
        The image (read only for ``"auto"``).
    channel_axis : int or None
        Its channel axis.
    spacing : tuple of float
        Pixel/voxel size per spatial axis.

    Returns
    -------
    Smoothing or None
        A filter with its size, or None for none.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> img = np.repeat([0.0, 10.0], 256)[None, :].repeat(256, 0) + rng.normal(0, 5, (256, 512))
    >>> resolve("auto", img, None, (1.0, 1.0)).kind
    'gaussian'
    >>> resolve("auto", np.repeat([0.0, 100.0], 32)[None].repeat(8, 0), None, (1.0, 1.0)) is None
    True
    >>> resolve("auto", rng.normal(0, 5, (64, 64)), None, (1.0, 1.0)) is None  # no regions
    True
    """
    if smooth is None:
        return None
    if smooth != "auto":
        return smooth.for_spacing(spacing)
    lines = noise_lines(image, channel_axis)
    if coherence(lines) < AUTO_MIN_COHERENCE:
        return None
    noise, signal = noise_sigma(lines)
    sigma = auto_sigma(noise, signal, len(spacing))
    if sigma == 0:
        return None
    # σ in pixels of the finest axis, expressed in spacing units
    return Smoothing("gaussian", round(sigma * min(spacing), 6))


def smooth_json(smooth) -> float | str | list | None:
    """Return a checked ``smooth=`` value as JSON that :func:`check_smooth` takes back.

    Parameters
    ----------
    smooth : Smoothing, "auto" or None
        A value checked by :func:`check_smooth`.

    Returns
    -------
    float, str, list or None
        σ for a Gaussian, ``"median"`` or ``["median", r]``, ``"auto"`` or None.

    Examples
    --------
    >>> smooth_json(Smoothing("gaussian", 1.5)), smooth_json(Smoothing("median", None))
    (1.5, 'median')
    >>> check_smooth(smooth_json(Smoothing("median", 2.0)))
    Smoothing(kind='median', size=2.0)
    """
    if not isinstance(smooth, Smoothing):
        return smooth
    if smooth.kind == "gaussian":
        return smooth.size
    return "median" if smooth.size is None else [smooth.kind, smooth.size]


def parse_smooth(text: str):
    """Read a command-line ``--smooth`` value: auto, none, a number, median or median:R.

    Parameters
    ----------
    text : str
        The text given.

    Returns
    -------
    float, str, tuple or None
        A value for :func:`check_smooth`.

    Raises
    ------
    ValueError
        When the text is none of those.

    Examples
    --------
    >>> parse_smooth("none"), parse_smooth("1.5"), parse_smooth("median:2")
    (None, 1.5, ('median', 2.0))
    """
    word = text.strip().lower()
    if word in ("none", "off"):
        return None
    if word in ("auto", "median"):
        return word
    try:
        if ":" in word:
            kind, size = word.split(":", 1)
            return kind, float(size)
        return float(word)
    except ValueError:
        raise ValueError(
            f"{text!r} is not allowed: use auto, none, a Gaussian sigma, median or median:R"
        ) from None
