"""Read and write images with OpenCV, in RGB(A) channel order.

Files are read and written as bytes by Python and decoded/encoded in memory by OpenCV
(``cv2.imdecode`` / ``cv2.imencode``), so paths with non-ASCII characters work on every
platform. Arrays are always RGB or RGBA, never OpenCV's BGR. This module checks the file and
writes images; :mod:`napari_kmeans.io.decode` turns the bytes into an array.

Decisions worth knowing:

- Pixel types kept as stored: ``uint8``, ``uint16`` and ``float32``. Anything else (for
  instance an ``int32`` or ``float64`` TIFF) raises :class:`ImageLoadError` rather than being
  converted behind the user's back.
- Pixels are read as stored: JPEG EXIF orientation is *not* applied, as napari's own reader
  (and tifffile, scikit-image) do not apply it, so a mask drawn on an image in napari lands
  on the same pixels given to the command line. JPEGs are decoded with ``IMREAD_ANYCOLOR |
  IMREAD_ANYDEPTH | IMREAD_IGNORE_ORIENTATION`` (grey stays 2-D, depth is kept) and every
  other format with ``IMREAD_UNCHANGED`` (alpha and depth kept).
- Grey + alpha PNGs come back as RGBA with the grey value in R, G and B (OpenCV's own
  choice, kept because the rest of the package understands RGB(A) only). TIFFs with two samples
  per pixel are refused: OpenCV would silently drop the second sample and reduce to 8 bits.
- Multi-page TIFFs are read whole, decoded a group of pages at a time straight into one
  stack, shaped by the file's axes (ImageJ hyperstacks, OME-TIFF: ``(Z, C, Y, X)``...) as
  :func:`napari_kmeans.io.axes.read_image` describes; a plain multi-page TIFF is a
  ``(pages, height, width[, channels])`` stack.
- TIFFs OpenCV misreads go through ``tifffile`` (an optional dependency; without it they are
  refused, never misread): 8-bit RGBA with unassociated alpha, which OpenCV returns with the
  colours multiplied by alpha (PIL, tifffile and GIMP write it), and separate colour planes.
- Inputs are checked before they cost anything: regular files only (a FIFO or a device is
  refused without being read), and a pixel budget read from the PNG, JPEG, TIFF, BMP, WebP
  or PBM/PGM/PPM header before the file is read (:func:`pixel_budget`).
- Files are written atomically (a temporary name beside the destination, then a rename),
  in this machine's byte order whatever the array's.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> red = np.zeros((2, 3, 3), np.uint8); red[..., 0] = 255
>>> save_image(folder / "röd.png", red)
>>> load_image(folder / "röd.png")[0, 0].tolist()
[255, 0, 0]
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from .axes import AxesImage, file_axes, is_zarr_store, read_zarr
from .decode import ImageLoadError, decode_image, swap_red_blue_in_place
from .headers import FileView, header_pixels
from .safe_files import open_regular_file, write_bytes

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_VARIABLE",
    "SUPPORTED_EXTENSIONS",
    "ImageLoadError",
    "check_budget",
    "load_image",
    "pixel_budget",
    "read_image",
    "save_image",
]

#: Pixels :func:`load_image` decodes at most unless told otherwise (16384 × 16384).
DEFAULT_MAX_PIXELS = 2**28
#: Environment variable that sets the pixel budget (an integer >= 1).
MAX_PIXELS_VARIABLE = "NAPARI_KMEANS_MAX_PIXELS"


def _opencv_decodes_exr() -> bool:
    # OpenEXR support depends on the OpenCV build (and, in 4.x wheels, on the
    # OPENCV_IO_ENABLE_OPENEXR variable): a 1-pixel in-memory round trip is the honest test.
    try:
        ok, encoded = cv2.imencode(".exr", np.zeros((1, 1), np.float32))
        return bool(ok) and cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED) is not None
    except cv2.error:
        return False


_HAS_EXR = _opencv_decodes_exr()

#: Lower-case file extensions (with the dot) that :func:`load_image` decodes with this OpenCV.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".webp",
    ".jp2",
    ".pbm",
    ".pgm",
    ".ppm",
) + ((".exr",) if _HAS_EXR else ())


class _Writable(NamedTuple):
    dtypes: tuple[str, ...]
    channels: tuple[int, ...]


_WRITABLE: dict[str, _Writable] = {
    ".png": _Writable(("uint8", "uint16"), (1, 3, 4)),
    ".tif": _Writable(("uint8", "uint16", "float32"), (1, 3, 4)),
    ".tiff": _Writable(("uint8", "uint16", "float32"), (1, 3, 4)),
    ".jpg": _Writable(("uint8",), (1, 3)),
    ".jpeg": _Writable(("uint8",), (1, 3)),
    ".bmp": _Writable(("uint8",), (1, 3, 4)),
    ".webp": _Writable(("uint8",), (3, 4)),
    ".jp2": _Writable(("uint8", "uint16"), (1, 3, 4)),
    ".pgm": _Writable(("uint8", "uint16"), (1,)),
    ".ppm": _Writable(("uint8", "uint16"), (3,)),
}
if _HAS_EXR:
    _WRITABLE[".exr"] = _Writable(("float32",), (1, 3, 4))


def pixel_budget(max_pixels: int | None = None) -> int:
    """Return the most pixels :func:`load_image` decodes: ``max_pixels``, else the environment.

    Parameters
    ----------
    max_pixels : int or None
        An integer >= 1; None reads the environment variable ``NAPARI_KMEANS_MAX_PIXELS``,
        and without it gives :data:`DEFAULT_MAX_PIXELS`.

    Returns
    -------
    int
        The budget, in pixels (all pages of a stack together).

    Raises
    ------
    ValueError
        If ``max_pixels`` or the environment variable is not an integer >= 1.

    Examples
    --------
    >>> pixel_budget(1000)
    1000
    >>> pixel_budget() == DEFAULT_MAX_PIXELS  # doctest: +SKIP
    True
    """
    name = "max_pixels"
    if max_pixels is None:
        text = os.environ.get(MAX_PIXELS_VARIABLE)
        if text is None:
            return DEFAULT_MAX_PIXELS
        name = f"the environment variable {MAX_PIXELS_VARIABLE}"
        try:
            max_pixels = int(text)
        except ValueError:
            raise ValueError(
                f"{name}={text!r} is not allowed: it must be an integer >= 1"
            ) from None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, Integral) or max_pixels < 1:
        raise ValueError(f"{name}={max_pixels!r} is not allowed: it must be an integer >= 1")
    return int(max_pixels)


def check_budget(path, pixels: int | None, max_pixels: int | None, source: str) -> None:
    """Refuse an image of more ``pixels`` than the budget, naming what said so.

    Parameters
    ----------
    path : str or os.PathLike
        The image, for the message.
    pixels : int or None
        Its pixels (None: not known, accepted).
    max_pixels : int or None
        The budget, as for :func:`pixel_budget`.
    source : str
        What gave ``pixels``: "its header", "its shape".

    Raises
    ------
    ImageLoadError
        When ``pixels`` exceeds the budget.

    Examples
    --------
    >>> check_budget("big.zarr", 2**40, 1000, "its shape")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_kmeans.io.decode.ImageLoadError: cannot load image 'big.zarr': its shape says ...
    """
    budget = pixel_budget(max_pixels)
    if pixels is not None and pixels > budget:
        raise ImageLoadError(
            f"cannot load image '{path}': {source} says {pixels:,} pixels, more than the "
            f"budget of {budget:,}; if there is memory for it, raise the budget with "
            "load_image(..., max_pixels=N), the command's --max-pixels N or the environment "
            f"variable {MAX_PIXELS_VARIABLE}=N"
        )


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """Load an image file as an RGB(A) array, keeping its pixel type.

    The file is checked before it costs anything: it must be a regular file (a FIFO or a
    device such as ``/dev/zero`` is refused without being read), and a PNG, JPEG, TIFF, BMP,
    WebP or PBM/PGM/PPM whose header claims more than the pixel budget is refused before the
    file is read. Memory: the file's bytes and what OpenCV's decoder needs (briefly about
    twice the image for PNG and JPEG); no copy is made after decoding, and a TIFF stack is
    filled a group of pages at a time.

    Parameters
    ----------
    path : str or os.PathLike
        Any file OpenCV can decode (see :data:`SUPPORTED_EXTENSIONS`); the format is
        recognised from the content, not the extension.
    max_pixels : int or None
        The pixel budget (all pages together), see :func:`pixel_budget`; None: the
        environment variable ``NAPARI_KMEANS_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` for grey, ``(height, width, 3)`` RGB or ``(height, width, 4)``
        RGBA, of dtype ``uint8``, ``uint16`` or ``float32``. A multi-page TIFF gives the
        shape its axes say (an ImageJ ZCYX hyperstack ``(Z, C, height, width)``), else a
        stack ``(pages, height, width[, channels])``; a single-page one gives the page
        itself. :func:`napari_kmeans.read_image` gives the axes and pixel sizes too.

    Raises
    ------
    ImageLoadError
        If the path is missing, a directory or not a regular file, the file is empty,
        truncated or not an image, larger than the pixel budget, or holds a pixel type or
        layout listed as unsupported in the module notes; an ImageJ or OME multi-page TIFF
        without tifffile installed (its axes cannot be read).
    ValueError
        If ``max_pixels`` is not an integer >= 1.

    Examples
    --------
    >>> image = load_image("sample_data/astronaut.png")  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    ((512, 512, 3), dtype('uint8'))
    """
    return read_image(path, max_pixels=max_pixels).data


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> AxesImage:
    """Read an image file with its axes and pixel sizes (in memory).

    TIFF pixels are decoded as :func:`napari_kmeans.load_image` decodes them and shaped by
    the file's series (tifffile); a Zarr array or OME-Zarr image is read at full resolution
    after its shape is checked against the pixel budget.

    Parameters
    ----------
    path : str or os.PathLike
        An image file (see :data:`napari_kmeans.io.images.SUPPORTED_EXTENSIONS`), or a
        Zarr array or OME-Zarr image folder.
    max_pixels : int or None
        The pixel budget, as for :func:`napari_kmeans.load_image`.

    Returns
    -------
    AxesImage
        The pixels with their axes, scale and units.

    Raises
    ------
    ImageLoadError
        As :func:`napari_kmeans.load_image`; also when the file's axes need ``tifffile`` or
        ``zarr`` and they are not installed, or its pages do not fill its series.

    Examples
    --------
    >>> import tempfile, tifffile
    >>> path = tempfile.mkdtemp() + "/zcyx.tif"
    >>> tifffile.imwrite(path, np.zeros((5, 2, 8, 8), np.uint16), imagej=True,
    ...                  metadata={"axes": "ZCYX", "spacing": 2.0, "unit": "um"},
    ...                  resolution=(4.0, 4.0))
    >>> image = read_image(path)
    >>> image.axes, image.data.shape, image.scale, image.channel_axis
    ('ZCYX', (5, 2, 8, 8), (2.0, 1.0, 0.25, 0.25), 1)
    >>> from napari_kmeans import segment
    >>> seg = segment(image.data, 1, channel_axis=image.channel_axis, spacing=image.spacing())
    >>> seg.labels.shape, image.labels_axes
    ((5, 8, 8), 'ZYX')
    """
    path = Path(path)
    if is_zarr_store(path):
        return read_zarr(path, pixel_budget(max_pixels))
    data = read_image_file(path, max_pixels)
    return file_axes(data, decode_image(data, path), path)


def read_image_file(path: str | os.PathLike[str], max_pixels: int | None = None) -> bytes:
    """Return the bytes of an image file, checked as :func:`load_image` promises.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    max_pixels : int or None
        The pixel budget, see :func:`pixel_budget`.

    Returns
    -------
    bytes
        The whole file, not empty.

    Raises
    ------
    ImageLoadError
        If the path is missing, a directory or not a regular file, the file is empty, or
        its header claims more pixels than the budget.

    Examples
    --------
    >>> read_image_file("no_such_image.png")
    Traceback (most recent call last):
    ...
    napari_kmeans.io.decode.ImageLoadError: cannot load image 'no_such_image.png': no such file
    """
    budget = pixel_budget(max_pixels)
    path = Path(path)
    try:
        with open_regular_file(path) as file:
            size = os.fstat(file.fileno()).st_size
            pixels = header_pixels(FileView(file.fileno(), size), budget)  # the header only
            check_budget(path, pixels, budget, "its header")
            data = file.read()
    except FileNotFoundError:
        raise ImageLoadError(f"cannot load image '{path}': no such file") from None
    except IsADirectoryError:
        raise ImageLoadError(f"cannot load image '{path}': it is a directory, not a file") from None
    except OSError as error:
        raise ImageLoadError(f"cannot load image '{path}': {error.strerror or error}") from None
    if not data:
        raise ImageLoadError(f"cannot load image '{path}': the file is empty")

    return data


def encode_params(extension: str) -> list[int]:
    """Return OpenCV's encoder flags for ``extension``: TIFFs are Deflate-compressed.

    OpenCV's default TIFF compression is LZW, which ``tifffile`` (and so napari's own reader)
    decodes only with the optional ``imagecodecs`` package; Deflate needs only zlib.

    Parameters
    ----------
    extension : str
        The file's extension, dot included (any case).

    Returns
    -------
    list of int
        Flags for ``cv2.imencode``; empty for OpenCV's defaults.

    Examples
    --------
    >>> encode_params(".tif") == [cv2.IMWRITE_TIFF_COMPRESSION, 8]
    True
    >>> encode_params(".png")
    []
    """
    if extension.lower() in (".tif", ".tiff"):
        return [cv2.IMWRITE_TIFF_COMPRESSION, 8]  # 8: Adobe Deflate
    return []


def save_image(path: str | os.PathLike[str], image: np.ndarray, *, overwrite: bool = True) -> None:
    """Write a grey, RGB or RGBA array to an image file chosen by the path's extension.

    The array is encoded in memory by ``cv2.imencode`` and written by Python, so non-ASCII
    paths work. The file is written under a temporary name in the same folder and renamed
    when complete, so an error or Ctrl-C never leaves a partial file (nor destroys an older
    one). The folder must already exist (it is not created).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its extension picks the format (``.png``, ``.tif``/``.tiff``,
        ``.jpg``/``.jpeg``, ``.bmp``, ``.webp``, ``.jp2``, ``.pgm``, ``.ppm``, and ``.exr``
        when this OpenCV has it).
    image : numpy.ndarray
        ``(height, width)`` grey, or ``(height, width, 1 | 3 | 4)`` grey/RGB/RGBA, in RGB(A)
        order. ``uint8`` fits every format; ``uint16`` needs PNG, TIFF, JPEG 2000 or PGM/PPM;
        ``float32`` needs TIFF (or EXR). Either byte order. The array is not modified.
    overwrite : bool
        Whether an existing file at ``path`` may be replaced (False: ``FileExistsError``).

    Raises
    ------
    ValueError
        If the extension is not writable, or the format cannot hold the array's dtype or
        channel count (the message names the path and the formats that can).
    OSError
        If the file cannot be written (for instance, its folder does not exist), or exists
        and ``overwrite`` is False (``FileExistsError``).

    Examples
    --------
    >>> import numpy as np
    >>> save_image("ramp.png", np.arange(12, dtype=np.uint16).reshape(3, 4))  # doctest: +SKIP
    """
    path = Path(path)
    image = np.asarray(image)
    extension = path.suffix.lower()
    if extension not in _WRITABLE:
        raise ValueError(
            f"cannot save image '{path}': extension {extension or '(none)'!r} is not writable; "
            f"use one of {', '.join(_WRITABLE)}"
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f"cannot save image '{path}': shape {image.shape} is not (height, width) grey or "
            "(height, width, 1 | 3 | 4) grey/RGB/RGBA"
        )
    writable = _WRITABLE[extension]
    dtype = image.dtype.name
    if dtype not in writable.dtypes:
        holders = [ext for ext, fmt in _WRITABLE.items() if dtype in fmt.dtypes]
        advice = (
            f"formats that can: {', '.join(holders)}"
            if holders
            else "no format can; convert it to uint8, uint16 or float32"
        )
        raise ValueError(
            f"cannot save image '{path}': {extension} cannot hold {dtype} pixels; {advice}"
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in writable.channels:
        holders = [
            ext
            for ext, fmt in _WRITABLE.items()
            if channels in fmt.channels and dtype in fmt.dtypes
        ]
        raise ValueError(
            f"cannot save image '{path}': {extension} cannot hold {channels}-channel images; "
            f"formats that can (for {dtype}): {', '.join(holders)}"
        )

    native = image.dtype.newbyteorder("=")  # OpenCV reads memory in this machine's order
    if channels in (3, 4):  # a copy, which the swap works on in place
        bgr = swap_red_blue_in_place(np.array(image, dtype=native, order="C"))
    else:
        bgr = np.ascontiguousarray(image, dtype=native)
    try:
        ok, encoded = cv2.imencode(extension, bgr, encode_params(extension))
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1]
        raise ValueError(f"cannot save image '{path}': OpenCV failed: {reason}") from error
    if not ok:
        raise ValueError(f"cannot save image '{path}': OpenCV could not encode it as {extension}")
    write_bytes(path, encoded.tobytes(), overwrite=overwrite)
