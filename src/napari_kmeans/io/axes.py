"""Images with their axes and pixel sizes, as their files describe them.

:func:`napari_kmeans.read_image` returns an :class:`AxesImage`: the pixels (as
:func:`~napari_kmeans.io.images.load_image` decodes them) shaped by the file's own axes, one
letter per axis, and the physical size of a pixel along each. The letters:

- ``T`` time points, ``Z`` depth, ``Y`` rows, ``X`` columns;
- ``C`` channels (data: fluorescence, spectra), ``S`` samples of a colour pixel (RGB(A)),
  always the last axis;
- any other letter (``I`` pages of a plain multi-page TIFF, ``Q`` an axis the file does not
  name) is a stack axis, clustered with the others like ``Z``.

Where the axes come from: ImageJ hyperstacks and OME-TIFF through ``tifffile``'s series axes
and their metadata (ImageJ ``spacing``/``unit`` and resolution, OME ``PhysicalSize*``);
Zarr arrays and OME-Zarr (NGFF 0.4 and 0.5 ``multiscales``) through ``zarr``; PNG, JPEG and
the other OpenCV formats are ``YX`` or ``YXS``. A file that names no axes gets ``Q`` for
every leading axis, and the ``channel_axis="auto"`` rule of :func:`napari_kmeans.segment`
applies to it.

Orientation: pixels are read as stored. JPEG EXIF orientation is not applied, as napari's
own reader, tifffile and scikit-image do not apply it, so a mask drawn in napari lands on
the same pixels in the command line.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from napari_kmeans import save_image
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rgb.png"
>>> save_image(path, np.zeros((4, 5, 3), np.uint8))
>>> from napari_kmeans import read_image
>>> image = read_image(path)
>>> image.axes, image.data.shape, image.channel_axis
('YXS', (4, 5, 3), 'rgb')
"""

from __future__ import annotations

import io
import math
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from .decode import ImageLoadError
from .headers import TIFF_MAGICS, TiffPage, tiff_pages

__all__ = [
    "AxesImage",
    "channel_axis_for",
    "file_axes",
    "is_zarr_store",
    "ngff_axes",
    "read_zarr",
    "zarr_axes",
]

#: Axes whose pixels are one image plane; every other non-channel axis is a stack axis.
PLANE_AXES = "YX"
#: Axes that hold the values of one pixel.
CHANNEL_AXES = "CS"
_EXTRA_HINT = 'pip install "napari-kmeans[all]"'


@dataclass(frozen=True)
class AxesImage:
    """An image, one letter per axis, and the physical size of a step along each axis.

    Attributes
    ----------
    data : numpy.ndarray or dask.array.Array
        The pixels, ``S`` (colour samples) last when present.
    axes : str
        One letter per axis of ``data`` (see the module notes): e.g. ``"ZCYX"``, ``"YXS"``.
    scale : tuple of float
        The physical size of one step along each axis (1.0 where the file says nothing;
        the time between frames along ``T``).
    units : tuple of str or None
        The unit of each entry of ``scale`` (``"micrometer"``...), None where unknown.

    Examples
    --------
    >>> image = AxesImage(np.zeros((3, 2, 4, 5)), "ZCYX", (2.0, 1.0, 0.5, 0.5), (None,) * 4)
    >>> image.channel_axis, image.labels_axes, image.spacing()
    (1, 'ZYX', (2.0, 0.5, 0.5))
    """

    data: Any
    axes: str
    scale: tuple[float, ...]
    units: tuple[str | None, ...]

    def __post_init__(self):  # noqa: D105 - the check of the attributes above
        if not len(self.axes) == len(self.scale) == len(self.units) == len(self.data.shape):
            raise ValueError(
                f"axes {self.axes!r}, scale {self.scale} and units {self.units} must each "
                f"have one entry per axis of the data, of shape {self.data.shape}"
            )

    @property
    def channel_axis(self) -> str | int | None:
        """The ``channel_axis`` argument of :func:`napari_kmeans.segment` for this image.

        The ``C`` axis; else ``"rgb"`` for 3 or 4 colour samples (``S``) and the ``S`` axis
        for any other count; else ``"auto"`` when the file names no axis (only ``Q``
        before ``YX``); else None.

        Examples
        --------
        >>> AxesImage(np.zeros((4, 5, 3)), "YXS", (1.0,) * 3, (None,) * 3).channel_axis
        'rgb'
        """
        if "C" in self.axes:
            return self.axes.index("C")
        if self.axes.endswith("S"):
            return "rgb" if self.data.shape[-1] in (3, 4) else len(self.axes) - 1
        return "auto" if set(self.axes[:-2]) <= {"Q"} else None

    @property
    def labels_axes(self) -> str:
        """The axes of this image's labels: every axis but the channel axis.

        Examples
        --------
        >>> AxesImage(np.zeros((2, 3, 4, 5)), "TCYX", (1.0,) * 4, (None,) * 4).labels_axes
        'TYX'
        """
        return "".join(a for a in self.axes if a not in CHANNEL_AXES)

    def spacing(self, axes: str | None = None) -> tuple[float, ...]:
        """Return the pixel size along each labels axis (or along each of ``axes``).

        Parameters
        ----------
        axes : str, optional
            The letters wanted, in the image's order; default :attr:`labels_axes`.

        Returns
        -------
        tuple of float
            One size per letter.

        Examples
        --------
        >>> image = AxesImage(np.zeros((2, 4, 5)), "ZYX", (3.0, 0.5, 0.5), (None,) * 3)
        >>> image.spacing("YX")
        (0.5, 0.5)
        """
        wanted = self.labels_axes if axes is None else axes
        return tuple(s for a, s in zip(self.axes, self.scale, strict=True) if a in wanted)


def _plain_axes(shape: tuple[int, ...], samples: bool) -> str:
    """Axes of an array its file does not describe: ``Q``... then ``YX`` (and ``S``)."""
    return "Q" * (len(shape) - 2 - samples) + "YX" + "S" * samples


def file_axes(data: bytes, pixels: np.ndarray, path: str | os.PathLike[str]) -> AxesImage:
    """Give decoded pixels the axes and pixel sizes their file's bytes describe.

    TIFF pages are shaped by the file's first series (tifffile); other formats are ``YX``
    or ``YXS``.

    Parameters
    ----------
    data : bytes
        The whole file.
    pixels : numpy.ndarray
        What :func:`napari_kmeans.io.decode.decode_image` made of it.
    path : str or os.PathLike
        The file's name, for messages.

    Returns
    -------
    AxesImage
        The pixels, shaped by their axes.

    Raises
    ------
    ImageLoadError
        When the axes need tifffile and it is not installed, or the pages do not fill
        the series the metadata describes.

    Examples
    --------
    >>> file_axes(b"not a TIFF", np.zeros((4, 5, 3), np.uint8), "rgb.png").axes
    'YXS'
    """
    if data[:4] not in TIFF_MAGICS:
        axes = _plain_axes(pixels.shape, pixels.ndim == 3)
        return AxesImage(pixels, axes, (1.0,) * pixels.ndim, (None,) * pixels.ndim)
    samples = (tiff_pages(data) or [TiffPage()])[0].first("samples_per_pixel", 1) > 1
    flat = _plain_axes(pixels.shape, samples).replace("Q", "I")
    try:
        import tifffile
    except ImportError:
        pages = pixels.shape[0] if flat.startswith("I") else 1
        if pages > 1 and (b"ImageJ=" in data or b"<OME" in data):
            raise ImageLoadError(
                f"cannot load image '{path}': its ImageJ/OME metadata says how its {pages} "
                f"pages are arranged (Z, C, T); reading it needs tifffile: {_EXTRA_HINT}"
            ) from None
        return AxesImage(pixels, flat, (1.0,) * pixels.ndim, (None,) * pixels.ndim)
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            axes, shape, scale, units, _ = tiff_series_axes(tiff)
    except Exception as error:  # tifffile raises many kinds for odd metadata
        raise ImageLoadError(
            f"cannot load image '{path}': tifffile cannot read it ({error})"
        ) from error
    if math.prod(shape) != pixels.size:
        raise ImageLoadError(
            f"cannot load image '{path}': its metadata describes a series of shape {shape} "
            f"({axes}) but its pages hold {pixels.shape}; the file is incomplete or holds "
            "several series"
        )
    return AxesImage(pixels.reshape(shape), axes, scale, units)


def tiff_series_axes(tiff) -> tuple[str, tuple[int, ...], tuple, tuple, list[int]]:
    """Axes, shape, scale and units of a TIFF's first series, samples (``S``) last.

    Parameters
    ----------
    tiff : tifffile.TiffFile
        The open file.

    Returns
    -------
    axes : str
        One letter per axis (``I`` for any letter other than ``TZCYXS``).
    shape : tuple of int
        The series' shape in that order, without axes of length 1 other than ``YXCS``.
    scale, units : tuple
        Pixel sizes and their units (ImageJ resolution/``spacing``/``finterval``, OME
        ``PhysicalSize*``/``TimeIncrement``), 1.0 and None where unknown.
    order : list of int
        The series' own axes in this order (to transpose a lazy view of the series).
    """
    series = tiff.series[0]
    raw_axes, raw_shape = series.axes, tuple(series.shape)
    sizes = _ome_sizes(tiff.ome_metadata) if tiff.is_ome else {}
    if tiff.is_imagej:
        sizes = _imagej_sizes(tiff)
    order = [i for i, a in enumerate(raw_axes) if a != "S"] + [
        i for i, a in enumerate(raw_axes) if a == "S"
    ]
    kept = [i for i in order if raw_shape[i] > 1 or raw_axes[i] in "YXCS"]
    axes = "".join(raw_axes[i] if raw_axes[i] in "TZCYXS" else "I" for i in kept)
    shape = tuple(raw_shape[i] for i in kept)
    scale = tuple(sizes.get(a, (1.0, None))[0] for a in axes)
    units = tuple(sizes.get(a, (1.0, None))[1] for a in axes)
    return axes, shape, scale, units, order


def _imagej_sizes(tiff) -> dict[str, tuple[float, str | None]]:
    """Pixel sizes of an ImageJ file: resolution (Y, X), ``spacing`` (Z), ``finterval`` (T)."""
    metadata = tiff.imagej_metadata or {}
    unit = _unit_name(metadata.get("unit"))
    sizes: dict[str, tuple[float, str | None]] = {}
    page = tiff.pages.first
    x_resolution, y_resolution = page.resolution
    if x_resolution > 0 and y_resolution > 0 and unit is not None:
        sizes["X"] = (1.0 / x_resolution, unit)
        sizes["Y"] = (1.0 / y_resolution, unit)
    if _positive(metadata.get("spacing")):
        sizes["Z"] = (float(metadata["spacing"]), unit)
    if _positive(metadata.get("finterval")):
        sizes["T"] = (float(metadata["finterval"]), "second")
    return sizes


def _ome_sizes(xml: str | None) -> dict[str, tuple[float, str | None]]:
    """Pixel sizes of an OME-TIFF's first image: ``PhysicalSize{X,Y,Z}``, ``TimeIncrement``."""
    if not xml:
        return {}
    pixels = next(
        (e for e in ElementTree.fromstring(xml).iter() if e.tag.endswith("}Pixels")), None
    )
    if pixels is None:
        return {}
    sizes: dict[str, tuple[float, str | None]] = {}
    for axis, name, default_unit in (
        ("X", "PhysicalSizeX", "µm"),
        ("Y", "PhysicalSizeY", "µm"),
        ("Z", "PhysicalSizeZ", "µm"),
        ("T", "TimeIncrement", "s"),
    ):
        value = pixels.get(name)
        if value is not None and _positive(value):
            sizes[axis] = (float(value), _unit_name(pixels.get(name + "Unit", default_unit)))
    return sizes


_UNITS = {
    "um": "micrometer",
    "µm": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "nm": "nanometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "s": "second",
    "ms": "millisecond",
    "min": "minute",
}


def _unit_name(unit) -> str | None:
    """Name a unit as OME-NGFF (UDUNITS-2) does; None for none or ImageJ's ``pixel``."""
    if not isinstance(unit, str) or unit.strip().lower() in ("", "pixel", "pixels"):
        return None
    unit = unit.strip().replace("\\u00B5", "µ").replace("\\u00b5", "µ")
    return _UNITS.get(unit, _UNITS.get(unit.lower(), unit))


def _positive(value) -> bool:
    try:
        return math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Zarr and OME-Zarr


def ngff_axes(attributes: dict, ndim: int) -> tuple[str, tuple[float, ...], tuple]:
    """Read the axes, level-0 scale and units of OME-NGFF ``multiscales`` metadata.

    Version 0.4 keeps ``multiscales`` in the group's attributes, 0.5 under ``"ome"``.

    Parameters
    ----------
    attributes : dict
        The group's attributes.
    ndim : int
        The number of dimensions of the level-0 array.

    Returns
    -------
    axes : str
        One letter per axis (``t``, ``c``, ``z``, ``y``, ``x`` by name, else by type,
        else ``Q``); ``"Q"...`` when there is no usable metadata.
    scale : tuple of float
        The level-0 scale (1.0 without metadata).
    units : tuple
        The axes' units (None where not given).

    Examples
    --------
    >>> attributes = {"multiscales": [{"version": "0.4", "axes": [
    ...     {"name": "z", "type": "space", "unit": "micrometer"},
    ...     {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
    ...     "datasets": [{"path": "0", "coordinateTransformations": [
    ...         {"type": "scale", "scale": [2.0, 0.5, 0.5]}]}]}]}
    >>> ngff_axes(attributes, 3)
    ('ZYX', (2.0, 0.5, 0.5), ('micrometer', None, None))
    """
    multiscales = attributes.get("ome", attributes).get("multiscales")
    try:
        first = multiscales[0]
        described = first["axes"]
        if len(described) != ndim:
            raise ValueError
        axes = "".join(_ngff_letter(axis) for axis in described)
        units = tuple(axis.get("unit") if isinstance(axis, dict) else None for axis in described)
        scale = [1.0] * ndim
        transforms = [
            *first["datasets"][0].get("coordinateTransformations", []),
            *first.get("coordinateTransformations", []),
        ]
        for transform in transforms:
            if transform.get("type") == "scale":
                scale = [a * float(b) for a, b in zip(scale, transform["scale"], strict=True)]
        return axes, tuple(scale), units
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return "Q" * ndim, (1.0,) * ndim, (None,) * ndim


def _ngff_letter(axis) -> str:
    name = (axis.get("name", "") if isinstance(axis, dict) else str(axis)).lower()
    kind = axis.get("type", "") if isinstance(axis, dict) else ""
    if name in ("t", "c", "z", "y", "x"):
        return name.upper()
    return {"time": "T", "channel": "C"}.get(kind, "Q")


def zarr_axes(path: str | os.PathLike[str]):
    """Open a Zarr array or OME-Zarr image without reading pixels; return it with its axes.

    A group is read at its level-0 dataset (OME-Zarr ``multiscales``), else its array
    ``"0"``, else its only array.

    Parameters
    ----------
    path : str or os.PathLike
        The Zarr store.

    Returns
    -------
    array : zarr.Array
        The full-resolution array, not read.
    axes, scale, units
        As :func:`ngff_axes`; a plain array gets ``Q``... then ``YX``.

    Raises
    ------
    ImageLoadError
        When zarr is missing, or the path is not a Zarr array or image.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = tempfile.mkdtemp() + "/plain.zarr"
    >>> _ = zarr.create_array(path, shape=(3, 4, 5), dtype="u1")
    >>> zarr_axes(path)[1]
    'QYX'
    """
    try:
        import zarr
    except ImportError:
        raise ImageLoadError(
            f"cannot load image '{path}': reading Zarr needs zarr: {_EXTRA_HINT}"
        ) from None
    try:
        stored = zarr.open(str(path), mode="r")
        if isinstance(stored, zarr.Array):
            ndim = stored.ndim
            return stored, _plain_axes(stored.shape, False), (1.0,) * ndim, (None,) * ndim
        attributes: dict[str, Any] = dict(stored.attrs)
        multiscales = attributes.get("ome", attributes).get("multiscales")
        arrays = dict(stored.arrays())
        level = None
        if isinstance(multiscales, list) and multiscales:
            level = multiscales[0].get("datasets", [{}])[0].get("path")
        name = level if level in arrays else "0" if "0" in arrays else None
        if name is None and len(arrays) == 1:
            name = next(iter(arrays))
        if name is None:
            raise ValueError(
                f"a Zarr group needs OME-Zarr multiscales, an array '0' or a single array; "
                f"this one has {sorted(arrays)}"
            )
        array = arrays[name]
    except Exception as error:  # zarr and the file system each raise their own kinds
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ImageLoadError(
            f"cannot load image '{path}': not a readable Zarr array or image ({reason})"
        ) from error
    axes, scale, units = ngff_axes(attributes, array.ndim)
    if set(axes) == {"Q"}:
        axes = _plain_axes(array.shape, False)
    return array, axes, scale, units


def is_zarr_store(path: str | os.PathLike[str]) -> bool:
    """Tell whether ``path`` is a folder holding a Zarr array or group (v2 or v3).

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    bool
        True for a folder with ``zarr.json``, ``.zarray`` or ``.zgroup``.

    Examples
    --------
    >>> is_zarr_store("no_such_folder.zarr")
    False
    """
    path = Path(path)
    return path.is_dir() and any(
        (path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup")
    )


def read_zarr(path: str | os.PathLike[str], budget: int) -> AxesImage:
    """Read a Zarr array or OME-Zarr image at full resolution, with its axes, into memory.

    Parameters
    ----------
    path : str or os.PathLike
        The store.
    budget : int
        The most values it may hold (checked from its shape, before reading).

    Returns
    -------
    AxesImage
        The pixels and their axes.

    Raises
    ------
    ImageLoadError
        As :func:`zarr_axes`, or when the store holds more than ``budget`` values.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = tempfile.mkdtemp() + "/plain.zarr"
    >>> zarr.create_array(path, shape=(3, 4), dtype="u1")[:] = 7
    >>> read_zarr(path, 100).data.sum()
    np.uint64(84)
    """
    array, axes, scale, units = zarr_axes(path)
    pixels = math.prod(array.shape)
    if pixels > budget:
        raise ImageLoadError(
            f"cannot load image '{path}': it holds {pixels:,} values, more than the budget "
            f"of {budget:,}; read it lazily (the command does) or raise max_pixels"
        )
    return AxesImage(array[...], axes, scale, units)


# ---------------------------------------------------------------------------------------------
# The channel axis a file implies, and an explicit one checked against it


def channel_axis_for(image: AxesImage, channel_axis="auto", *, name: str = "channel_axis"):
    """Return the ``channel_axis`` to segment ``image`` with: the file's, or a checked choice.

    ``"auto"`` takes the file's channel axis (:attr:`AxesImage.channel_axis`). An explicit
    value wins when it agrees with the file: it may name the file's ``C`` or ``S`` axis
    (``"rgb"`` for colour samples), or, in a file without channels, any stack axis (pages
    that are channels). It is refused when it names a ``Y`` or ``X`` axis, leaves out the
    file's channels (``None``), or names another axis than the file's channels.

    Parameters
    ----------
    image : AxesImage
        The image and its axes.
    channel_axis : "auto", "rgb", None or int
        The value given by the user.
    name : str
        The option's name in messages (``"--channel-axis"`` on the command line).

    Returns
    -------
    "auto", "rgb", None or int
        The channel axis to pass to :func:`napari_kmeans.segment`.

    Raises
    ------
    ValueError
        Naming the option, its value, the file's axes and what would fit.

    Examples
    --------
    >>> image = AxesImage(np.zeros((3, 2, 4, 5)), "ZCYX", (1.0,) * 4, (None,) * 4)
    >>> channel_axis_for(image), channel_axis_for(image, -3)
    (1, 1)
    >>> channel_axis_for(image, 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: channel_axis=2 is the Y axis of this image (axes ZCYX, ...): its channels ...
    """
    found = image.channel_axis
    if channel_axis == "auto":
        return found
    given = f"{name} {channel_axis}" if name.startswith("--") else f"{name}={channel_axis!r}"
    ndim = len(image.axes)
    known = "C" in image.axes or image.axes.endswith("S")
    where = f"this image (axes {image.axes}, shape {tuple(image.data.shape)})"
    if known:
        index = image.axes.index("C") if "C" in image.axes else ndim - 1
        advice = f"its channels are axis {index} ({image.axes[index]}); give {index} or 'auto'"
    else:
        advice = "it has no channel axis; give a stack axis or 'auto'"
    if channel_axis is None:
        if known:
            raise ValueError(f"{given} leaves out the channels of {where}: {advice}")
        return None
    if channel_axis == "rgb":
        if known and not image.axes.endswith("S"):
            raise ValueError(f"{given} does not fit {where}: {advice}")
        return "rgb"
    if isinstance(channel_axis, Integral) and not isinstance(channel_axis, bool):
        index = int(channel_axis)
        if not -ndim <= index < ndim:
            return index  # segment reports the range
        letter = image.axes[index % ndim]
        if letter in CHANNEL_AXES:
            return index % ndim
        if letter in PLANE_AXES or known:
            raise ValueError(f"{given} is the {letter} axis of {where}: {advice}")
        return index % ndim
    return channel_axis  # segment reports values that are not allowed
