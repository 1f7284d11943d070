"""Read and write images with OpenCV, in RGB(A) channel order.

Files are read and written as bytes by Python and decoded/encoded in memory by OpenCV
(``cv2.imdecode`` / ``cv2.imencode``), so paths with non-ASCII characters work on every
platform. Arrays are always RGB or RGBA, never OpenCV's BGR.

Decisions worth knowing:

- Pixel types kept as stored: ``uint8``, ``uint16`` and ``float32``. Anything else (for
  instance an ``int32`` or ``float64`` TIFF) raises :class:`ImageLoadError` rather than being
  converted behind the user's back.
- JPEG EXIF orientation is applied, as photo viewers do. OpenCV only rotates when it is *not*
  asked for ``IMREAD_UNCHANGED``; JPEG has no alpha channel, so JPEGs are decoded with
  ``IMREAD_ANYCOLOR | IMREAD_ANYDEPTH`` (grey stays 2-D, depth is kept, OpenCV rotates) and
  every other format with ``IMREAD_UNCHANGED`` (alpha and depth kept).
- Grey + alpha PNGs come back as RGBA with the grey value in R, G and B (OpenCV's own
  choice, kept because the rest of the package understands RGB(A) only). TIFFs with two samples
  per pixel are refused: OpenCV would silently drop the second sample and reduce to 8 bits.
- Multi-page TIFFs are read whole, as a ``(pages, height, width[, channels])`` stack.

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
import struct
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

__all__ = ["SUPPORTED_EXTENSIONS", "ImageLoadError", "load_image", "save_image"]

_PIXEL_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic TIFF and BigTIFF
_TIFF_SAMPLES_PER_PIXEL = 277


class ImageLoadError(ValueError):
    """An image file could not be loaded; the message names the path and the reason."""


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


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Load an image file as an RGB(A) array, keeping its pixel type.

    Parameters
    ----------
    path : str or os.PathLike
        Any file OpenCV can decode (see :data:`SUPPORTED_EXTENSIONS`); the format is
        recognised from the content, not the extension.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` for grey, ``(height, width, 3)`` RGB or ``(height, width, 4)``
        RGBA, of dtype ``uint8``, ``uint16`` or ``float32``. A multi-page TIFF gives a stack
        ``(pages, height, width[, channels])``; a single-page one gives the page itself.

    Raises
    ------
    ImageLoadError
        If the path is missing or a directory, the file is empty, truncated or not an image,
        or holds a pixel type or layout listed as unsupported in the module notes.

    Examples
    --------
    >>> image = load_image("sample_data/astronaut.png")  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    ((512, 512, 3), dtype('uint8'))
    """
    path = Path(path)
    if path.is_dir():
        raise ImageLoadError(f"cannot load image '{path}': it is a directory, not a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError(f"cannot load image '{path}': no such file") from None
    except OSError as error:
        raise ImageLoadError(f"cannot load image '{path}': {error.strerror or error}") from error
    if not data:
        raise ImageLoadError(f"cannot load image '{path}': the file is empty")

    buffer = np.frombuffer(data, np.uint8)
    try:
        if data[:4] in _TIFF_MAGICS:
            pages = _decode_tiff_pages(buffer, data, path)
        elif data[:3] == _JPEG_MAGIC:
            pages = [cv2.imdecode(buffer, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)]
        else:
            pages = [cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)]
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1]
        raise ImageLoadError(f"cannot load image '{path}': OpenCV failed: {reason}") from error
    if not pages or pages[0] is None:
        raise ImageLoadError(
            f"cannot load image '{path}': OpenCV cannot decode it (not an image, an "
            "unsupported variant of the format, or truncated or corrupt data)"
        )

    pages = [_swap_red_blue(_checked(page, path)) for page in pages]
    if len(pages) == 1:
        return pages[0]
    layouts = {(page.shape, page.dtype.name) for page in pages}
    if len(layouts) > 1:
        raise ImageLoadError(
            f"cannot load image '{path}': its {len(pages)} TIFF pages differ in shape or "
            f"dtype ({sorted(layouts)}), so they cannot be stacked"
        )
    return np.stack(pages)


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a grey, RGB or RGBA array to an image file chosen by the path's extension.

    The array is encoded in memory by ``cv2.imencode`` and written by Python, so non-ASCII
    paths work. The folder must already exist (it is not created).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its extension picks the format (``.png``, ``.tif``/``.tiff``,
        ``.jpg``/``.jpeg``, ``.bmp``, ``.webp``, ``.jp2``, ``.pgm``, ``.ppm``, and ``.exr``
        when this OpenCV has it).
    image : numpy.ndarray
        ``(height, width)`` grey, or ``(height, width, 1 | 3 | 4)`` grey/RGB/RGBA, in RGB(A)
        order. ``uint8`` fits every format; ``uint16`` needs PNG, TIFF, JPEG 2000 or PGM/PPM;
        ``float32`` needs TIFF (or EXR). The array is not modified.

    Raises
    ------
    ValueError
        If the extension is not writable, or the format cannot hold the array's dtype or
        channel count (the message names the path and the formats that can).
    OSError
        If the file cannot be written (for instance, its folder does not exist).

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

    bgr = _swap_red_blue(np.ascontiguousarray(image))
    try:
        ok, encoded = cv2.imencode(extension, bgr)
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1]
        raise ValueError(f"cannot save image '{path}': OpenCV failed: {reason}") from error
    if not ok:
        raise ValueError(f"cannot save image '{path}': OpenCV could not encode it as {extension}")
    path.write_bytes(encoded.tobytes())


def _decode_tiff_pages(buffer: np.ndarray, data: bytes, path: Path) -> list[np.ndarray]:
    if _tiff_samples_per_pixel(data) == 2:
        raise ImageLoadError(
            f"cannot load image '{path}': TIFF with 2 samples per pixel (grey + alpha or two "
            "channels) is not supported, because OpenCV drops the second sample and reduces "
            "it to 8 bits; save it as RGBA, or with one channel per page"
        )
    ok, pages = cv2.imdecodemulti(buffer, cv2.IMREAD_UNCHANGED)
    return list(pages) if ok else []


def _tiff_samples_per_pixel(data: bytes) -> int:
    """SamplesPerPixel of the first page of a classic TIFF (1 when absent or not found)."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        version, first_page = struct.unpack_from(order + "HI", data, 2)
        if version != 42:  # BigTIFF: left to OpenCV
            return 1
        (n_entries,) = struct.unpack_from(order + "H", data, first_page)
        for index in range(n_entries):
            tag, kind, _, value = struct.unpack_from(
                order + "HHI4s", data, first_page + 2 + 12 * index
            )
            if tag == _TIFF_SAMPLES_PER_PIXEL:
                return struct.unpack_from(order + ("H" if kind == 3 else "I"), value)[0]
    except struct.error:  # truncated header: OpenCV reports it
        return 1
    return 1


def _checked(image: np.ndarray, path: Path) -> np.ndarray:
    if image.dtype not in _PIXEL_TYPES:
        raise ImageLoadError(
            f"cannot load image '{path}': pixel type {image.dtype.name} is not supported "
            "(uint8, uint16 and float32 are); convert the file first, e.g. with tifffile"
        )
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ImageLoadError(
            f"cannot load image '{path}': {image.shape[2]} channels per pixel are not "
            "supported (1, 3 or 4 are)"
        )
    return image


def _swap_red_blue(image: np.ndarray) -> np.ndarray:
    """BGR(A) ⇄ RGB(A): the same channel swap in both directions; grey is returned as is."""
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image
