"""``napari-kmeans gui [IMAGE ...]``: napari with the images open and the widget docked."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..io.images import load_image
from .reader import image_layer_data


def open_viewer(paths: Sequence[str | os.PathLike[str]] = ()):
    """Open a napari viewer showing ``paths`` with the "K-means segmentation" widget docked.

    Every image is loaded before the window opens, so a bad path raises
    :class:`napari_kmeans.ImageLoadError` without a window flashing up.

    Returns
    -------
    (napari.Viewer, KMeansWidget)
    """
    images = [image_layer_data(load_image(path), Path(path)) for path in paths]
    import napari

    from ._qt.widget import KMeansWidget

    viewer = napari.Viewer()
    for data, settings, _ in images:
        viewer.add_image(data, **settings)
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget, name="K-means segmentation", area="right")
    return viewer, widget


def launch(paths: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Open napari with ``paths`` and the widget docked; return when the window closes."""
    import napari

    open_viewer(paths)
    napari.run()
