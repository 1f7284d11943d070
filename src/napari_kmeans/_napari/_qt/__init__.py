"""Qt widgets of the napari plugin."""
