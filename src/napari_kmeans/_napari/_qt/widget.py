"""The "K-means segmentation" dock widget.

It only translates and arranges: the parameter controls (:mod:`.controls`), one worker
helper with its progress bar (:mod:`.tasks`) running every long action, the Suggest k panel
(:mod:`.k_plot`), the table of the labels layer on screen (:mod:`.cluster_table`) and the
model actions (:mod:`.model_actions`), all in a scroll area so that it fits small screens.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QEvent, Qt, QTimer
from qtpy.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ...assess.choose_k import suggest_k
from ...engine.compiled import start_warm_up
from .. import merge, outputs
from .. import segmentation as sg
from ..inputs import METADATA_KEY
from ..summary import write_csv
from .cluster_table import ResultsPanel, table_rows
from .controls import Controls
from .k_plot import KSuggestionPanel, theme_colors
from .model_actions import ModelActions
from .tasks import TaskRunner, guard, slot

LIVE_DELAY_MS = 400  # live preview: wait this long after the last change


def _button(text: str, tooltip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.setMinimumSize(button.sizeHint())
    return button


class KMeansWidget(QWidget):
    """Segment image layer(s) by k-means; see the plugin's README section for a tour."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.segmentation = None
        self.suggestion = None
        self.controls = Controls(napari_viewer)
        self.suggest_button = _button("Suggest k", "Score k = 2..12 and suggest one (Cancel stops)")
        self.run_button = _button("Run", "Segment the chosen layer(s) (Enter)")
        self.tasks = TaskRunner()
        self.tasks.listeners.append(self._busy)
        self.k_panel = KSuggestionPanel(theme_colors(getattr(napari_viewer, "theme", None)))
        self.use_k_button = _button("Use k", "Set clusters to the suggested k")
        self.use_k_button.hide()
        self.results = ResultsPanel()
        self.models = ModelActions(self)
        self.live_timer = QTimer(self)
        self.live_timer.setSingleShot(True)
        self.live_timer.setInterval(LIVE_DELAY_MS)
        self.live_timer.timeout.connect(slot(self.run, True))

        buttons = QHBoxLayout()
        buttons.addWidget(self.suggest_button)
        buttons.addWidget(self.run_button)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self.controls)
        layout.addLayout(buttons)
        for part in (self.tasks, self.k_panel, self.use_k_button):
            layout.addWidget(part)
        layout.addWidget(self.results, stretch=1)
        layout.addWidget(self.models)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

        self.run_button.clicked.connect(slot(self.run))
        self.suggest_button.clicked.connect(slot(self.suggest))
        self.use_k_button.clicked.connect(slot(self.use_suggested_k))
        self.results.export_button.clicked.connect(slot(self.export_csv))
        self.results.mask_button.clicked.connect(slot(self.mask_from_selection))
        self.results.merge_button.clicked.connect(slot(self.merge_selection))
        self.results.flip_button.toggled.connect(lambda shown: guard("Flip", self.flip, shown))
        self.controls.label_colors.changed.connect(slot(self._restyle))
        for control in (*self.controls.main, *self.controls.advanced):
            control.changed.connect(slot(self._schedule_live))
        napari_viewer.layers.selection.events.active.connect(slot(self._follow_active))
        if hasattr(napari_viewer, "events") and hasattr(napari_viewer.events, "theme"):
            napari_viewer.events.theme.connect(slot(self._follow_theme))
        self.reset_choices()
        start_warm_up()  # compile the engine while the user picks a layer

    # --- napari and Qt hooks ----------------------------------------------------------------

    def reset_choices(self, *_args) -> None:
        """Refresh the layer lists (napari calls this when layers change)."""
        guard("K-means widget", self._reset_choices)

    def _reset_choices(self) -> None:
        self.controls.reset_choices()
        if self.results.labels is not None and self.results.labels not in self.viewer.layers:
            self.results.show_layer(None)

    def event(self, event) -> bool:
        """Drop the running task when the widget is taken out of its dock (closed)."""
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.tasks.close_all()
        return super().event(event)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.tasks.close_all()
        super().closeEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.run()
            return
        super().keyPressEvent(event)

    def _busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.suggest_button.setEnabled(not busy)

    def _follow_active(self) -> None:
        active = self.viewer.layers.selection.active
        meta = None if active is None else active.metadata.get(METADATA_KEY)
        if isinstance(active, Labels) and isinstance(meta, dict):
            if meta.get("role") in (outputs.LABELS, outputs.PREVIEW):
                self.results.show_layer(active)

    def _follow_theme(self) -> None:
        self.k_panel.curves.colors = theme_colors(self.viewer.theme)
        self.k_panel.curves.update()

    def ask_path(self, title: str, suggested: str, file_filter: str) -> str:
        """Ask for a file name to save to ('' when the user cancels)."""
        return QFileDialog.getSaveFileName(self, title, suggested, file_filter)[0]

    def ask_replace(self, layer: Labels) -> bool:
        """Whether to overwrite labels painted by hand since the last run."""
        answer = QMessageBox.question(
            self,
            "Replace painted labels?",
            f"Layer {layer.name!r} was edited since the last run. Replace its labels with the "
            "new result? (No: the new labels go to a new layer.)",
        )
        return answer == QMessageBox.StandardButton.Yes

    # --- running ----------------------------------------------------------------------------

    def _job(self, **extra) -> sg.SegmentationJob | None:
        """Read the chosen layers (None, with a hint, when there is no image to use)."""
        if not self.controls.images.value:
            show_info("K-means segmentation: open or choose an image layer first.")
            return None
        inputs = self.controls.input_options()
        return sg.prepare(self.viewer, inputs.pop("layers"), **inputs, **extra)

    def run(self, live: bool = False):
        """Start a segmentation in the worker; returns the worker (None if refused)."""
        try:
            job = self._job(cross_check=self.controls.cross_check.value, **self.controls.options())
        except (ValueError, TypeError) as error:
            show_error(f"K-means segmentation: {error}")
            return None
        if job is None:
            return None
        return self.tasks.start(
            f"K-means on {job.name}",
            job.run,
            lambda result: self._show(job, *result),
            replace=live,
        )

    def _show(self, job: sg.SegmentationJob, seg, check) -> None:
        labels = outputs.show(
            self.viewer,
            job.inputs,
            seg,
            check,
            **self.controls.display_options(),
            replace_edited=self.ask_replace,
        )
        if labels is None:
            show_info(f"The input of the k-means run on {job.name!r} was removed: nothing added.")
            return
        self.segmentation = seg
        self.models.set_model(seg.model, job.name, job.inputs.sources)
        self.results.show_layer(labels)

    def _schedule_live(self) -> None:
        if self.controls.live_allowed and self.controls.live.value:
            self.live_timer.start()

    def _restyle(self) -> None:
        """Recolour the labels layer on screen with the chosen label colours."""
        labels = self.results.labels
        if labels is None:
            return
        colors = np.asarray(labels.metadata[METADATA_KEY]["display_colors"], dtype=float)
        labels.colormap = outputs.labels_colormap(colors, self.controls.label_colors.value)
        self.results.show_layer(labels)

    # --- Suggest k --------------------------------------------------------------------------

    def suggest(self):
        """Compute the k-suggestion curves in the worker; returns the worker (or None)."""
        try:
            job = self._job()
        except (ValueError, TypeError) as error:
            show_error(f"Suggest k: {error}")
            return None
        if job is None:
            return None
        inputs = job.inputs
        options = self.controls.options()
        seed = self.controls.seed.value

        def work(progress):
            return suggest_k(
                inputs.image,
                seed=seed,
                color_space=options["color_space"],
                channel_axis=inputs.channel_axis,
                mask=inputs.mask,
                standardize=options["standardize"],
                progress=progress,
            )

        return self.tasks.start(f"Suggest k for {job.name}", work, self._show_suggestion)

    def _show_suggestion(self, suggestion) -> None:
        self.suggestion = suggestion
        self.k_panel.show_suggestion(suggestion)
        usable = suggestion.recommended >= self.controls.n_clusters.min
        self.use_k_button.setText(f"Use k = {suggestion.recommended}")
        self.use_k_button.setMinimumSize(self.use_k_button.sizeHint())
        self.use_k_button.setVisible(usable)
        if not usable:
            show_info(f"Suggest k: {suggestion.reason}")

    def use_suggested_k(self) -> None:
        if self.suggestion is not None:
            self.controls.n_clusters.value = self.suggestion.recommended

    # --- the table's actions ----------------------------------------------------------------

    def export_csv(self, path: str | None = None) -> str | None:
        """Write the table of the labels layer on screen to ``path``; returns the path."""
        labels = self.results.labels
        if labels is None:
            show_info("Run a k-means segmentation first: there is no cluster table to export.")
            return None
        if path is None:
            path = self.ask_path("Export cluster table", f"{labels.name}.csv", "CSV (*.csv)")
            if not path:
                return None
        check = labels.metadata[METADATA_KEY].get("cross_check") or {}
        extra = {f"opencv_{key}": value for key, value in check.items()}
        try:
            write_csv(path, [{**row, **extra} for row in table_rows(labels)])
        except OSError as error:
            show_error(f"Could not write the cluster table to {path}: {error.strerror}")
            return None
        return path

    def mask_from_selection(self) -> Labels | None:
        """Add a Labels layer of the clusters selected in the table."""
        labels = self.results.labels
        if labels is None or labels not in self.viewer.layers:
            show_info("Run a k-means segmentation first: its labels layer is gone.")
            return None
        try:
            return sg.mask_from_clusters(self.viewer, labels, self.results.table.selected_labels())
        except ValueError as error:
            show_info(str(error).capitalize())
            return None

    def merge_selection(self) -> Labels | None:
        """Merge the clusters selected in the table into one label (the lowest)."""
        labels = self.results.labels
        if labels is None or labels not in self.viewer.layers:
            show_info("Run a k-means segmentation first: its labels layer is gone.")
            return None
        try:
            merge.merge_clusters(self.viewer, labels, self.results.table.selected_labels())
        except ValueError as error:
            show_info(str(error).capitalize())
            return None
        # Save model and Apply model now use the merged model of this layer
        meta = labels.metadata[METADATA_KEY]
        sources = [layer for layer in self.viewer.layers if str(layer.unique_id) in meta["inputs"]]
        self.models.set_model(meta["model"], " + ".join(meta["source_layers"]), sources)
        self.results.show_layer(labels)
        return labels

    def flip(self, show_original: bool) -> None:
        """Show the input layer(s) and hide the result, or the other way round."""
        labels = self.results.labels
        if labels is None:
            return
        key = labels.metadata[METADATA_KEY]["inputs"]
        sources = [layer for layer in self.viewer.layers if str(layer.unique_id) in key]
        results = [labels, *outputs.recolored_layers(self.viewer, labels)]
        for layer in sources:
            layer.visible = True
        for layer in results:
            layer.visible = not show_original
        self.results.flip_button.setText("Show result" if show_original else "Show original")
