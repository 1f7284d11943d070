"""Model actions: save the last run's model, load one, apply it to layers, copy the Python.

"Apply model to…" runs in the widget's worker (:mod:`.tasks`); every layer is labelled
before any is shown, so an error leaves the viewer unchanged.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QApplication,
    QFileDialog,
    QGridLayout,
    QMenu,
    QPushButton,
    QWidget,
)

from ...features.pixels import channel_layout
from ...io.model_file import load_model
from .. import outputs
from .. import segmentation as sg
from ..inputs import is_output
from ..snippet import python_snippet
from .tasks import slot


def can_label(model, layer: Image) -> bool:
    """Tell whether ``model`` can label ``layer``: the model's own check (channels, dims, dtype)."""
    shape = layer.data[0].shape if layer.multiscale else layer.data.shape
    axis = "rgb" if layer.rgb else sg.model_channel_axis(model)
    if not layer.rgb and axis == "auto":
        axis = None  # a grey layer: no channel axis, whatever its last axis
    try:
        model.check_fits(channel_layout(shape, axis), np.dtype(layer.dtype))
    except ValueError:
        return False
    return True


class ModelActions(QWidget):
    """Save model…, Load model…, Apply model to…, Copy Python, for a :class:`KMeansWidget`."""

    def __init__(self, host) -> None:
        super().__init__()
        self.host = host
        self.model = None  # the last run's model, or a loaded one
        self.model_source = ""  # what the model was fitted on (for file names)
        self.model_layers: tuple = ()  # the layers it was fitted on (not offered to apply)
        self.model_path: str | None = None  # the file it was loaded from or saved to
        self.save_button = QPushButton("Save model…")
        self.save_button.setToolTip("Save the model of the last run, to label other images")
        self.load_button = QPushButton("Load model…")
        self.load_button.setToolTip("Load a saved k-means model to apply to layers")
        self.apply_button = QPushButton("Apply model to…")
        self.apply_button.setToolTip("Label other layers with the same clusters")
        self.apply_menu = QMenu(self.apply_button)
        self.apply_button.setMenu(self.apply_menu)
        self.copy_button = QPushButton("Copy Python")
        self.copy_button.setToolTip(
            "Copy code that repeats the run of the labels layer shown in the table "
            "(paste it in napari's console)"
        )
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for i, button in enumerate(
            (self.save_button, self.load_button, self.apply_button, self.copy_button)
        ):
            button.setMinimumSize(button.sizeHint())
            layout.addWidget(button, i // 2, i % 2)
        self.save_button.clicked.connect(slot(self.save_model))
        self.load_button.clicked.connect(slot(self.load))
        self.copy_button.clicked.connect(slot(self.copy_python))
        self.apply_menu.aboutToShow.connect(slot(self.fill_apply_menu))
        self.set_model(None, "")

    def set_model(self, model, source: str, layers=(), path: str | None = None) -> None:
        """Use ``model`` (fitted on ``layers``, named ``source``, in file ``path``)."""
        self.model, self.model_source, self.model_layers = model, source, tuple(layers)
        self.model_path = path
        self.save_button.setEnabled(model is not None)
        self.apply_button.setEnabled(model is not None)

    def save_model(self, path: str | None = None) -> str | None:
        """Save the model to ``path`` (asks for one when None); returns the path."""
        if self.model is None:
            show_info("Run a k-means segmentation first: there is no model to save.")
            return None
        if path is None:
            path = self.host.ask_path(
                "Save k-means model", f"{self.model_source} model.json", "k-means model (*.json)"
            )
            if not path:
                return None
        try:
            self.model.save(path)
        except OSError as error:
            show_error(f"Could not save the k-means model to {path}: {error.strerror}")
            return None
        self.model_path = str(path)
        return path

    def load(self, path: str | None = None):
        """Load a model file (asks for one when None) to apply; returns the model."""
        if path is None:
            path = QFileDialog.getOpenFileName(
                self, "Load k-means model", "", "k-means model (*.json)"
            )[0]
            if not path:
                return None
        try:
            model = load_model(path)
        except (OSError, ValueError) as error:
            show_error(f"Could not load the k-means model {path}: {error}")
            return None
        self.set_model(model, str(path), path=str(path))
        show_info(f"Loaded the k-means model {path}: apply it with 'Apply model to…'.")
        return model

    def apply_targets(self) -> list[Image]:
        """Image layers the model can label (as ``check_fits`` says), except outputs."""
        if self.model is None:
            return []
        return [
            layer
            for layer in self.host.viewer.layers
            if isinstance(layer, Image) and not is_output(layer) and can_label(self.model, layer)
        ]

    def fill_apply_menu(self) -> None:
        """Fill the "Apply model to…" menu: each layer of the same kind, then all of them."""
        self.apply_menu.clear()
        targets = [t for t in self.apply_targets() if t not in self.model_layers]
        if not targets:
            self.apply_menu.addAction("No other image layer of the same kind").setEnabled(False)
            return
        for layer in targets:
            self._add_apply_action(layer.name, [layer])
        self.apply_menu.addSeparator()
        self._add_apply_action(f"Every image layer of the same kind ({len(targets)})", targets)

    def _add_apply_action(self, text: str, layers: list[Image]) -> None:
        action = self.apply_menu.addAction(text)
        action.triggered.connect(slot(self.apply_model, layers))

    def apply_model(self, layers):
        """Label ``layers`` with the model in the worker; returns the worker (or None)."""
        if self.model is None:
            show_info("Run a k-means segmentation first: there is no model to apply.")
            return None
        viewer, model, applied = self.host.viewer, self.model, {"path": self.model_path}
        try:
            inputs = sg.prepare_apply(viewer, layers, model)
        except ValueError as error:
            show_error(f"Applying the k-means model failed: {error}")
            return None

        def shown(results) -> None:
            for item, result in zip(inputs, results, strict=True):
                outputs.show(
                    viewer,
                    item,
                    result,
                    **self.host.controls.display_options(),
                    applied_model=applied,
                )

        return self.host.tasks.start(
            "Applying the k-means model",
            lambda progress: sg.predict_all(inputs, model, progress),
            shown,
        )

    def copy_python(self) -> str | None:
        """Put the code repeating the table's labels layer on the clipboard.

        A run, or an "Apply model" (loading the model from its file when it has one).
        """
        labels = self.host.results.labels
        if labels is None:
            show_info("Run a k-means segmentation first: there is no run to copy.")
            return None
        text = python_snippet(labels.metadata, self.host.controls.display_options())
        QApplication.clipboard().setText(text)
        show_info("Copied the Python of this run: paste it in napari's console.")
        return text
