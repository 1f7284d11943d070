"""npe2 reader: images OpenCV decodes, through :func:`napari_kmeans.load_image`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io import SUPPORTED_EXTENSIONS, ImageLoadError, load_image

PathOrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
LayerData = tuple[np.ndarray, dict, str]


def _paths(path: PathOrPaths) -> list[Path]:
    return [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """The reader for files whose extension this OpenCV decodes, or None to let napari try
    other readers."""
    paths = _paths(path)
    if paths and all(p.suffix.lower() in SUPPORTED_EXTENSIONS and p.is_file() for p in paths):
        return read_images
    return None


def image_layer_data(image: np.ndarray, path: Path) -> LayerData:
    """An Image layer tuple: RGB(A) when the last axis holds 3 or 4 colour channels."""
    rgb = image.ndim >= 3 and image.shape[-1] in (3, 4)
    return image, {"name": path.stem, "rgb": rgb, "metadata": {"path": str(path)}}, "image"


def read_images(path: PathOrPaths) -> list[LayerData]:
    """One Image layer per file; an empty list (napari tries other readers) if OpenCV cannot
    decode one of them."""
    layers = []
    for file in _paths(path):
        try:
            image = load_image(file)
        except ImageLoadError:
            return []
        layers.append(image_layer_data(image, file))
    return layers
