"""An image file's bytes → an RGB(A) array: OpenCV for most, tifffile where OpenCV errs.

:func:`decode_image` picks the decoder from the content: TIFF page by page group (stacked
straight into one array), JPEG as stored (EXIF orientation not applied), anything else as
stored. TIFFs
OpenCV misreads (8-bit unassociated alpha, separate colour planes) go through ``tifffile``.
Every decoded array is checked (pixel type, channels) and turned from OpenCV's BGR(A) into
RGB(A) in place.

Examples
--------
>>> import cv2, numpy as np
>>> bgr = np.zeros((2, 3, 3), np.uint8); bgr[..., 2] = 255  # red, in OpenCV's order
>>> decode_image(cv2.imencode(".png", bgr)[1].tobytes(), "red.png")[0, 0].tolist()
[255, 0, 0]
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import cv2
import numpy as np

from .headers import JPEG_MAGIC, TIFF_MAGICS, TiffPage, tiff_pages

__all__ = ["ImageLoadError", "decode_image", "swap_red_blue_in_place"]

# JPEG has no alpha: grey stays 2-D, depth is kept, EXIF orientation is not applied (napari's
# reader does not apply it either, so masks drawn there land on the same pixels)
_JPEG_AS_STORED = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
_PIXEL_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_SWAP_BLOCK_BYTES = 4 * 2**20  # the red/blue swap holds one channel of this many bytes
_PAGE_GROUP_BYTES = 64 * 2**20  # TIFF pages decoded together while stacking
_PAGE_GROUP_PAGES = 64  # and at most so many


class ImageLoadError(ValueError):
    """An image file could not be loaded; the message names the path and the reason.

    A ``ValueError``, raised by :func:`napari_kmeans.load_image`.

    Examples
    --------
    >>> import napari_kmeans as nk
    >>> try:
    ...     nk.load_image("no_such_image.png")
    ... except nk.ImageLoadError as err:
    ...     print(err)
    cannot load image 'no_such_image.png': no such file
    """


def decode_image(data: bytes, path: str | os.PathLike[str]) -> np.ndarray:
    """Decode the bytes of an image file into an RGB(A) array of a supported pixel type.

    Parameters
    ----------
    data : bytes
        The whole file (not empty).
    path : str or os.PathLike
        The file's name, for messages only.

    Returns
    -------
    numpy.ndarray
        As :func:`napari_kmeans.io.images.load_image` returns it.

    Raises
    ------
    ImageLoadError
        If the data cannot be decoded, or decodes to a pixel type or layout not supported.

    Examples
    --------
    >>> import cv2
    >>> png = cv2.imencode(".png", np.array([[[0, 0, 255]]], np.uint8))[1].tobytes()
    >>> decode_image(png, "red.png").tolist()
    [[[255, 0, 0]]]
    """
    buffer = np.frombuffer(data, np.uint8)
    try:
        if data[:4] in TIFF_MAGICS:
            image = _decode_tiff(buffer, data, Path(path))
        elif data[:3] == JPEG_MAGIC:
            image = cv2.imdecode(buffer, _JPEG_AS_STORED)
        else:
            image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1]
        if "CV_IO_MAX_IMAGE_PIXELS" in reason:  # OpenCV's own limit, 2**30 unless raised
            reason = (
                "the image has more pixels than OpenCV decodes (2**30 unless the environment "
                "variable OPENCV_IO_MAX_IMAGE_PIXELS was set before Python started)"
            )
        raise ImageLoadError(f"cannot load image '{path}': OpenCV failed: {reason}") from error
    if image is None:
        raise ImageLoadError(
            f"cannot load image '{path}': OpenCV cannot decode it (not an image, an "
            "unsupported variant of the format, or truncated or corrupt data)"
        )
    return image if data[:4] in TIFF_MAGICS else swap_red_blue_in_place(_checked(image, Path(path)))


def _decode_tiff(buffer: np.ndarray, data: bytes, path: Path) -> np.ndarray | None:
    """Every page of a TIFF, stacked when there are several, in RGB(A) order."""
    pages = tiff_pages(data) or [TiffPage()]
    if pages[0].first("samples_per_pixel", 1) == 2:
        raise ImageLoadError(
            f"cannot load image '{path}': TIFF with 2 samples per pixel (grey + alpha or two "
            "channels) is not supported, because OpenCV drops the second sample and reduces "
            "it to 8 bits; save it as RGBA, or with one channel per page"
        )
    if any(_opencv_misreads(page) for page in pages):
        return _decode_tiff_with_tifffile(data, path, len(pages))

    if len(pages) == 1 or not pages[0].offset:
        ok, decoded = cv2.imdecodemulti(buffer, cv2.IMREAD_UNCHANGED, None, (0, 1))
        return swap_red_blue_in_place(_checked(decoded[0], path)) if ok and decoded else None
    # OpenCV's libtiff walks the chain of pages from the first at every call, and checks
    # each page against all before it: quadratic. A copy of the file whose header points
    # at the group's first page, and whose chain ends after its last, is read in linear time.
    chained = bytearray(data)
    view = np.frombuffer(chained, np.uint8)
    order = "<" if data[:2] == b"II" else ">"
    pointer = order + ("Q" if data[2:4] in (b"+\x00", b"\x00+") else "I")
    first_at = 8 if pointer[-1] == "Q" else 4

    def decode(start: int, stop: int) -> list[np.ndarray]:
        last = pages[stop - 1].next_at
        (following,) = struct.unpack_from(pointer, chained, last)
        struct.pack_into(pointer, chained, first_at, pages[start].offset)
        struct.pack_into(pointer, chained, last, 0)
        try:
            ok, decoded = cv2.imdecodemulti(view, cv2.IMREAD_UNCHANGED)
        finally:
            struct.pack_into(pointer, chained, last, following)
        return [swap_red_blue_in_place(_checked(page, path)) for page in decoded] if ok else []

    return _stack_pages(decode, len(pages), path)


def _opencv_misreads(page: TiffPage) -> bool:
    """Tell whether OpenCV decodes this page wrongly.

    It does for 8-bit with unassociated alpha (it multiplies the colours by alpha) and for
    colour planes stored separately (16-bit ones come out grey).
    """
    samples = page.first("samples_per_pixel", 1)
    unassociated_alpha = 2 in page.get("extra_samples", ())
    return samples > 1 and (
        page.first("planar_configuration", 1) == 2
        or (unassociated_alpha and page.first("bits_per_sample", 1) == 8)
    )


def _decode_tiff_with_tifffile(data: bytes, path: Path, n_pages: int) -> np.ndarray | None:
    try:
        import tifffile
    except ImportError:
        raise ImageLoadError(
            f"cannot load image '{path}': this TIFF has unassociated alpha or separate colour "
            "planes, which OpenCV decodes wrongly (colours multiplied by alpha, or grey); "
            "install tifffile to read it: pip install tifffile"
        ) from None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:

            def decode(start: int, stop: int) -> list[np.ndarray]:
                arrays = []
                for page in tiff.pages[start:stop]:
                    array = page.asarray()
                    if page.planarconfig == 2 and page.samplesperpixel > 1:
                        array = np.ascontiguousarray(np.moveaxis(array, 0, -1))
                    arrays.append(_checked(array, path))
                return arrays

            return _stack_pages(decode, min(n_pages, len(tiff.pages)), path)
    except ImageLoadError:
        raise
    except Exception as error:  # tifffile raises many kinds for corrupt data
        raise ImageLoadError(
            f"cannot load image '{path}': tifffile cannot decode it ({error})"
        ) from error


def _stack_pages(decode, n_pages: int, path: Path) -> np.ndarray | None:
    """Stack decoded pages into one array, a few at a time (no second copy of the stack).

    ``decode(start, stop)`` returns the pages ``start`` to ``stop - 1`` (fewer when some
    cannot be decoded). Pages come in groups of ``_PAGE_GROUP_BYTES``, at most
    ``_PAGE_GROUP_PAGES`` pages: OpenCV needs about twice a group while decoding it, and
    its time grows with the square of the pages of one call.
    """
    first = decode(0, 1)
    if not first or n_pages == 1:
        return first[0] if first else None
    stack = np.empty((n_pages, *first[0].shape), first[0].dtype)
    stack[0] = first[0]
    group = max(1, min(_PAGE_GROUP_PAGES, _PAGE_GROUP_BYTES // stack[0].nbytes))
    del first
    for start in range(1, n_pages, group):
        stop = min(n_pages, start + group)
        pages = decode(start, stop)
        if len(pages) < stop - start:
            raise ImageLoadError(
                f"cannot load image '{path}': page {start + len(pages) + 1} of {n_pages} "
                "cannot be decoded"
            )
        for index, page in enumerate(pages, start):
            if page.shape != stack.shape[1:] or page.dtype != stack.dtype:
                raise ImageLoadError(
                    f"cannot load image '{path}': its {n_pages} TIFF pages differ in shape or "
                    f"dtype (page 1: {stack.shape[1:]} {stack.dtype}, page {index + 1}: "
                    f"{page.shape} {page.dtype}), so they cannot be stacked"
                )
            stack[index] = page
        del pages
    return stack


def _checked(image: np.ndarray, path: Path) -> np.ndarray:
    if image.ndim not in (2, 3) or image.size == 0:
        raise ImageLoadError(
            f"cannot load image '{path}': it decodes to shape {image.shape}, not an image "
            "(corrupt or truncated data)"
        )
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


def swap_red_blue_in_place(image: np.ndarray) -> np.ndarray:
    """Swap BGR(A) ⇄ RGB(A) in place, a block of rows at a time (the same swap both ways).

    Grey is returned as is. ``image`` must be an array the caller owns.

    Parameters
    ----------
    image : numpy.ndarray
        Grey, BGR(A) or RGB(A) pixels; modified in place.

    Returns
    -------
    numpy.ndarray
        ``image`` itself.

    Examples
    --------
    >>> swap_red_blue_in_place(np.array([[[1, 2, 3, 4]]], np.uint8)).tolist()
    [[[3, 2, 1, 4]]]
    """
    if image.ndim < 3 or image.shape[-1] not in (3, 4):
        return image
    rows = image.reshape(-1, *image.shape[-2:])
    step = max(1, _SWAP_BLOCK_BYTES // max(1, rows[0].nbytes))
    for start in range(0, len(rows), step):
        block = rows[start : start + step]
        red = block[..., 2].copy()
        block[..., 2] = block[..., 0]
        block[..., 0] = red
    return image
