"""Versions of the libraries a result depends on, for ``Segmentation.params``."""

from __future__ import annotations

from functools import cache


@cache
def library_versions() -> dict[str, str]:
    """``{"napari_kmeans": ..., "numpy": ..., "opencv": ...}``.

    Examples
    --------
    >>> sorted(library_versions())
    ['napari_kmeans', 'numpy', 'opencv']
    """
    from importlib.metadata import PackageNotFoundError, version

    import cv2
    import numpy

    try:
        ours = version("napari-kmeans")
    except PackageNotFoundError:
        ours = "0+unknown"
    return {"napari_kmeans": ours, "numpy": numpy.__version__, "opencv": cv2.__version__}
