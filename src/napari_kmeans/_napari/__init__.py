"""napari plugin: widget, reader and sample data (imported by napari, never by the core)."""
