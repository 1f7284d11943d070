"""The ``napari-kmeans`` command."""
