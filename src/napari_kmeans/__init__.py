"""napari-kmeans: segment images by k-means++ clustering of their pixels.

The core (everything importable from this package) never imports napari or Qt.

Examples
--------
>>> import numpy as np
>>> import napari_kmeans as nk
>>> img = np.zeros((4, 4, 3), np.uint8); img[:, 2:] = 200
>>> seg = nk.segment(img, n_clusters=2, seed=0)
>>> seg.labels[0].tolist()
[1, 1, 2, 2]
"""

from .api import Segmentation, fit, segment
from .assess.choose_k import KSuggestion, suggest_k
from .assess.cross_check import CrossCheck, cross_check
from .engine import KMeansResult, get_num_threads, kmeans, set_num_threads, warm_up
from .io.axes import AxesImage
from .io.images import ImageLoadError, load_image, read_image, save_image
from .io.model_file import ModelFileError, load_model
from .model.kmeans_model import KMeansModel
from .versions import library_versions

__version__ = library_versions()["napari_kmeans"]


def __getattr__(name: str):
    # the layer functions need napari: imported on first use, so the core stays light
    if name == "segment_layer":
        from ._napari.segmentation import segment_layer

        return segment_layer
    if name == "apply_model_to_layers":
        from ._napari.segmentation import apply_model

        return apply_model
    if name == "merge_layer_clusters":
        from ._napari.merge import merge_clusters

        return merge_clusters
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "apply_model_to_layers",
    "AxesImage",
    "CrossCheck",
    "ImageLoadError",
    "KMeansModel",
    "KMeansResult",
    "KSuggestion",
    "ModelFileError",
    "Segmentation",
    "__version__",
    "cross_check",
    "fit",
    "get_num_threads",
    "kmeans",
    "load_image",
    "load_model",
    "merge_layer_clusters",
    "read_image",
    "save_image",
    "segment",
    "segment_layer",
    "set_num_threads",
    "suggest_k",
    "warm_up",
]
