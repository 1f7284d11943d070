"""Reading and writing files: images and their headers, model files, safe writes."""

from .images import ImageLoadError, load_image, save_image

__all__ = ["ImageLoadError", "load_image", "save_image"]
