"""npe2 reader for the image formats napari's built-in reader leaves out or reads worse.

napari's own reader (imageio, Pillow, tifffile) opens PNG, JPEG, TIFF, BMP, WebP, JPEG 2000
and Sun raster ``.ras`` exactly as OpenCV does. A plugin that claims those too makes napari
ask "Choose reader" for every ordinary file, so this reader claims only these:

- Netpbm ``.pbm``, ``.pgm``, ``.ppm``, ``.pnm``: napari reads 16-bit PGM as ``int32``, 16-bit
  PPM/PNM as 8 bits and a bitmap as RGB; here ``uint16`` and grey are kept. napari does not
  claim ``.pnm`` at all.
- ``.pfm`` (portable float map) and Radiance ``.hdr``: ``float32`` here, 8 bits in napari.
- ``.sr`` (Sun raster) and ``.dib`` (Windows bitmap): napari does not claim these extensions.

A file is read only if its first bytes carry the signature its extension promises: this reader
never decodes a TIFF, whose ImageJ/OME axes and scale napari's TIFF reader keeps.

Examples
--------
>>> get_reader("photo.png") is None  # napari's built-in reader opens PNG files
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io.images import load_image

PathOrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
LayerData = tuple[np.ndarray, dict, str]

_NETPBM = (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")

#: Claimed extension -> accepted file signatures. napari.yaml's reader patterns list the same
#: extensions (a test checks they agree).
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    ".pbm": _NETPBM,
    ".pgm": _NETPBM,
    ".ppm": _NETPBM,
    ".pnm": _NETPBM,
    ".pfm": (b"PF", b"Pf"),
    ".hdr": (b"#?",),
    ".sr": (b"\x59\xa6\x6a\x95",),
    ".dib": (b"BM",),
}


def _paths(path: PathOrPaths) -> list[Path]:
    return [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]


def _is_claimed(path: Path) -> bool:
    signatures = SIGNATURES.get(path.suffix.lower())
    if signatures is None or not path.is_file():
        return False
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError:
        return False
    return head.startswith(signatures)


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """Return :func:`read_images` if every path is a file this reader claims, else None.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        What napari asks about: one file, or several to open together.

    Returns
    -------
    callable or None
        :func:`read_images`, or None so that napari tries its other readers.

    Examples
    --------
    >>> get_reader(["scan.tif", "scan.pgm"]) is None  # not files here; TIFF is never claimed
    True
    """
    paths = _paths(path)
    if paths and all(_is_claimed(p) for p in paths):
        return read_images
    return None


def image_layer_data(image: np.ndarray, path: Path) -> LayerData:
    """Turn an image into an Image layer tuple named after its file.

    Parameters
    ----------
    image : numpy.ndarray
        As :func:`napari_kmeans.load_image` returns it (RGB(A) order).
    path : pathlib.Path
        The file it came from: the layer is named after its stem.

    Returns
    -------
    tuple
        ``(data, {"name", "rgb", "metadata"}, "image")``; ``rgb`` when the last axis holds 3
        or 4 colour channels.

    Examples
    --------
    >>> data, settings, kind = image_layer_data(np.zeros((2, 3, 3), np.uint8), Path("a/b.ppm"))
    >>> settings["name"], settings["rgb"], kind
    ('b', True, 'image')
    """
    rgb = image.ndim >= 3 and image.shape[-1] in (3, 4)
    return image, {"name": path.stem, "rgb": rgb, "metadata": {"path": str(path)}}, "image"


def read_images(path: PathOrPaths) -> list[LayerData]:
    """Read each file as one Image layer, in RGB(A) order with its pixel type kept.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        Files :func:`get_reader` accepted.

    Returns
    -------
    list of tuple
        One :func:`image_layer_data` tuple per file.

    Raises
    ------
    napari_kmeans.ImageLoadError
        If OpenCV cannot decode a file; the message names it and the reason (napari shows it).
    """
    return [image_layer_data(load_image(file), file) for file in _paths(path)]
