"""Sample images (File > Open Sample > napari-kmeans), shipped in the package's sample_data/.

Each is contributed through a command, as npe2's ``uri`` form is not package-relative. The
images are real files inside the package (copies of the repository's top-level
``sample_data/``), so wheels, sdists and editable installs all find them.

Examples
--------
>>> (data, settings, kind), = synthetic_cells()
>>> data.shape, data.dtype.name, settings["name"], kind
((384, 512), 'uint16', 'synthetic_cells_16bit', 'image')
"""

from __future__ import annotations

from importlib.resources import as_file, files

from ..io.images import load_image
from .reader import LayerData, image_layer_data


def _sample(filename: str) -> list[LayerData]:
    with as_file(files("napari_kmeans") / "sample_data" / filename) as path:
        return [image_layer_data(load_image(path), path)]


def astronaut() -> list[LayerData]:
    """Colour photo, 512 x 512 8-bit RGB."""
    return _sample("astronaut.png")


def chelsea() -> list[LayerData]:
    """Colour photo of a cat, 300 x 451 8-bit RGB."""
    return _sample("chelsea.png")


def ihc_slide() -> list[LayerData]:
    """Immunohistochemistry slide (DAB + haematoxylin), 512 x 512 8-bit RGB."""
    return _sample("ihc_slide.png")


def synthetic_cells() -> list[LayerData]:
    """Synthetic fluorescent nuclei, 384 x 512 16-bit grey."""
    return _sample("synthetic_cells_16bit.png")
