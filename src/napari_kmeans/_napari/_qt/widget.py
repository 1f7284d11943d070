"""The "K-means segmentation" dock widget.

It only translates: controls -> :func:`~napari_kmeans._napari.segmentation.prepare`, a worker
thread runs the job, :func:`~napari_kmeans._napari.segmentation.show` makes the layers. The
last run's model can be saved or applied to other layers
(:func:`~napari_kmeans._napari.segmentation.apply_model`); "Suggest k" runs
:func:`napari_kmeans.suggest_k` in a worker thread and plots its curves (``k_plot``).
"""

from __future__ import annotations

import inspect
import threading
import time

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    PushButton,
    Select,
    SpinBox,
)
from napari.layers import Image, Labels, Shapes
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import ensure_main_thread

from ...api import segment
from ...choose_k import suggest_k
from ...engine import AUTO_STARTS
from .. import segmentation as sg
from ..summary import channel_names, cluster_rows, write_csv
from .cluster_table import ClusterTable

_METHODS = {"k-means++": "kmeans++", "optimal 1-D (exact)": "optimal"}
_COLOR_SPACES = {"RGB": "rgb", "CIELAB": "lab", "grey (luma)": "gray"}
_PROGRESS_INTERVAL = 0.05  # seconds between progress bar updates from the worker
_DEFAULTS = {
    name: parameter.default for name, parameter in inspect.signature(segment).parameters.items()
}


class KMeansWidget(QWidget):
    """Segment image layer(s) by k-means; see the plugin's README section for a tour."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.job: sg.SegmentationJob | None = None
        self.segmentation = None
        self.check = None
        self.labels_layer: Labels | None = None
        self.worker = None
        self._cancel = threading.Event()
        self._pbar: progress | None = None
        self.suggestion = None
        self.k_plot = None  # the curves' canvas, made when Suggest k is first used
        self._suggest_worker = None

        self.images = Select(
            label="image layer(s)",
            choices=self._image_choices,
            tooltip="One image, or several single-channel images used together as channels",
        )
        self.images.native.setMaximumHeight(90)
        self.n_clusters = SpinBox(label="clusters", value=_DEFAULTS["n_clusters"], min=2, max=255)
        self.method = ComboBox(label="method", choices=list(_METHODS.items()))
        self.color_space = ComboBox(label="colour space", choices=list(_COLOR_SPACES.items()))
        self.spatial_weight = FloatSpinBox(
            label="spatial weight",
            value=0.0,
            min=0.0,
            max=10.0,
            step=0.05,
            tooltip="0: colour only; 1: the image extent weighs as much as the colour range",
        )
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.restarts = SpinBox(
            label="restarts (0 = auto)",
            value=0,
            min=0,
            max=100,
            tooltip="k-means++ runs from different seeds; the one with the lowest inertia is "
            "kept. 0 = auto: three starts, as napari_kmeans.segment's default",
        )
        self.max_iter = SpinBox(
            label="max iterations", value=_DEFAULTS["max_iter"], min=1, max=100_000
        )
        self.tol = LineEdit(label="tolerance", value=f"{_DEFAULTS['tol']:g}")
        self.mask = ComboBox(
            label="mask",
            choices=self._mask_choices,
            nullable=True,
            tooltip="Labels (non-zero = included) or Shapes layer; empty for the whole image",
        )
        self.current_slice = CheckBox(text="current slice only (preview)")
        self.cross_check = CheckBox(text="cross-check with cv2.kmeans")
        self.suggest_button = PushButton(
            text="Suggest k",
            tooltip="Inertia, silhouette and BIC for k = 2..12; sets clusters to the suggestion",
        )
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.controls = Container(
            widgets=[
                self.images,
                self.n_clusters,
                self.method,
                self.color_space,
                self.spatial_weight,
                self.seed,
                self.restarts,
                self.max_iter,
                self.tol,
                self.mask,
                self.current_slice,
                self.cross_check,
                Container(
                    widgets=[self.suggest_button, self.run_button, self.cancel_button],
                    layout="horizontal",
                    labels=False,
                ),
            ]
        )

        self.table = ClusterTable()
        self.check_label = QLabel()
        self.check_label.setMinimumHeight(3 * self.check_label.fontMetrics().lineSpacing() + 4)
        self.export_button = QPushButton("Export CSV…")
        self.mask_button = QPushButton("Mask from clusters")
        self.save_button = QPushButton("Save model…")
        self.apply_button = QPushButton("Apply model to…")
        self.apply_menu = QMenu(self.apply_button)
        self.apply_button.setMenu(self.apply_menu)
        result_buttons = (self.export_button, self.mask_button, self.save_button, self.apply_button)
        for button in result_buttons:
            button.setEnabled(False)
        self.k_label = QLabel()
        self.k_label.setWordWrap(True)
        self.k_label.hide()
        self.k_plot_layout = QVBoxLayout()
        self.k_plot_layout.addWidget(self.k_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.controls.native)
        layout.addLayout(self.k_plot_layout)
        layout.addWidget(self.table, stretch=1)
        layout.addWidget(self.check_label)
        for pair in (result_buttons[:2], result_buttons[2:]):
            row = QHBoxLayout()
            for button in pair:
                row.addWidget(button)
            layout.addLayout(row)

        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.mask_button.clicked.connect(self.mask_from_selection)
        self.save_button.clicked.connect(lambda: self.save_model())
        self.apply_menu.aboutToShow.connect(self._fill_apply_menu)
        self.suggest_button.clicked.connect(self.suggest)
        for control in (self.images, self.color_space, self.spatial_weight):
            control.changed.connect(self._update_choices)
        self.reset_choices()

    # --- choices that follow the viewer's layers and the chosen input -----------------------

    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _mask_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Labels | Shapes) and layer is not self.labels_layer
        ]

    def reset_choices(self, *_args) -> None:
        """Refresh the layer lists (napari calls this when layers change)."""
        self.controls.reset_choices()
        if not self.images.value and self.images.choices:
            active = self.viewer.layers.selection.active
            self.images.value = [active if isinstance(active, Image) else self.images.choices[0]]
        self._update_choices()

    def _update_choices(self, *_args) -> None:
        """Offer only the options that apply to the chosen input."""
        layers = self.images.value
        rgb = len(layers) == 1 and layers[0].rgb
        n_channels = (layers[0].data.shape[-1] if rgb else len(layers)) if layers else 1
        self._choose_color_space = n_channels > 1
        self.color_space.visible = self._choose_color_space
        spaces = {"RGB": "rgb"} if not rgb else dict(_COLOR_SPACES)
        if rgb and n_channels != 3:
            spaces.pop("CIELAB")
        if rgb and n_channels == 4:
            spaces = {"RGB": "rgb", "grey (luma)": "gray"}
        if self.color_space.choices != tuple(spaces.values()):
            self.color_space.choices = list(spaces.items())
        one_feature = n_channels == 1 or self.color_space.value == "gray"
        methods = (
            dict(_METHODS)
            if one_feature and self.spatial_weight.value == 0
            else {"k-means++": "kmeans++"}
        )
        if self.method.choices != tuple(methods.values()):
            self.method.choices = list(methods.items())
        spatial_ndim = layers[0].ndim if layers else 2
        self._choose_slice = spatial_ndim > 2
        self.current_slice.visible = self._choose_slice

    # --- running ----------------------------------------------------------------------------

    def _options(self) -> dict:
        text = self.tol.value.strip()
        try:
            tol = float(text)
        except ValueError:
            raise ValueError(
                f"tolerance {text!r} is not a number: use a small number such as 1e-4"
            ) from None
        return {
            "n_clusters": self.n_clusters.value,
            "method": self.method.value,
            "color_space": self.color_space.value if self._choose_color_space else "rgb",
            "spatial_weight": self.spatial_weight.value,
            "seed": self.seed.value,
            "n_init": self.restarts.value or "auto",
            "max_iter": self.max_iter.value,
            "tol": tol,
        }

    def run(self):
        """Start a segmentation in a worker thread; returns the worker (None if refused)."""
        if self.worker is not None:
            show_info("A k-means segmentation is already running: wait for it or cancel it.")
            return None
        try:
            options = self._options()
            job = sg.prepare(
                self.viewer,
                self.images.value,
                mask=self.mask.value,
                current_slice=self._choose_slice and self.current_slice.value,
                cross_check=self.cross_check.value,
                **options,
            )
        except ValueError as error:
            show_error(f"K-means segmentation: {error}")
            return None
        self._cancel.clear()
        # Lloyd stops when it converges: max_iter per restart is an upper bound.
        runs = AUTO_STARTS if options["n_init"] == "auto" else options["n_init"]
        total = 0 if options["method"] == "optimal" else runs * options["max_iter"]
        self._pbar = progress(total=total, desc=f"K-means on {job.name}")
        self.worker = create_worker(self._work, job, _start_thread=False)
        self.worker.returned.connect(self._finish)
        self.worker.finished.connect(self._cleanup)
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.worker.start()
        return self.worker

    def cancel(self) -> None:
        """Ask the running segmentation to stop (it does at its next iteration)."""
        self._cancel.set()

    def _work(self, job: sg.SegmentationJob):
        """Worker thread: run the job; expected failures come back as values, not raised,
        so napari shows a plain notification rather than a traceback."""
        state = {"restart": 0, "last_iteration": 0, "last_report": 0.0}
        max_iter = job.options["max_iter"]

        def callback(iteration: int, inertia: float) -> None:
            if self._cancel.is_set():
                raise sg.SegmentationCancelled
            if iteration <= state["last_iteration"]:
                state["restart"] += 1
            state["last_iteration"] = iteration
            now = time.monotonic()
            if now - state["last_report"] >= _PROGRESS_INTERVAL:
                state["last_report"] = now
                self._report(state["restart"] * max_iter + iteration, iteration, inertia)

        try:
            return job, *job.run(callback)
        except sg.SegmentationCancelled:
            return job, "cancelled", None
        except (ValueError, MemoryError) as error:
            return job, error, None

    @ensure_main_thread
    def _report(self, done: int, iteration: int, inertia: float) -> None:
        pbar = self._pbar  # set_description lets Qt process events: the run may end meanwhile
        if pbar is None:
            return
        pbar.set_description(f"K-means: iteration {iteration}, inertia {inertia:.5g}")
        if pbar is self._pbar:
            pbar.update(max(0, done - pbar.n))

    def _finish(self, outcome) -> None:
        job, seg, check = outcome
        if isinstance(seg, str):
            show_info(f"K-means segmentation of {job.name!r} cancelled: no layer was changed.")
            return
        if isinstance(seg, Exception):
            show_error(f"K-means segmentation of {job.name!r} failed: {seg}")
            return
        self.job, self.segmentation, self.check = job, seg, check
        self.labels_layer, _ = sg.show(self.viewer, job, seg, check)
        self._show_table()

    def _cleanup(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
        self._pbar = None
        self.worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False

    # --- the cluster table ------------------------------------------------------------------

    def _rows(self) -> list[dict]:
        job = self.job
        names = channel_names(
            [layer.name for layer in job.sources],
            job.sources[0].rgb,
            self.segmentation.palette.shape[1],
        )
        return cluster_rows(self.segmentation, names, self.check)

    def _show_table(self) -> None:
        colors = sg.display_colors(self.job.sources, self.segmentation.palette)
        self.table.show_clusters(self._rows(), colors)
        if self.check is None:
            self.check_label.setText("")
        else:
            c = self.check
            self.check_label.setText(
                f"cv2.kmeans cross-check: adjusted Rand index {c.adjusted_rand_index:.3f}\n"
                f"inertia ours / OpenCV {c.inertia_ratio:.4f}; max centre gap "
                f"{c.max_center_distance:.3g}\n"
                f"time: {c.ours_seconds:.3f} s ours, {c.opencv_seconds:.3f} s OpenCV"
            )
        for button in (self.export_button, self.mask_button, self.save_button, self.apply_button):
            button.setEnabled(True)

    def _ask_save_path(self, title: str, suggested: str, file_filter: str) -> str:
        """A file name from the save dialog ('' when the user cancels)."""
        return QFileDialog.getSaveFileName(self, title, suggested, file_filter)[0]

    def export_csv(self, path: str | None = None) -> str | None:
        """Write the cluster table to ``path`` (asks for one when None); returns the path."""
        if self.segmentation is None:
            show_info("Run a k-means segmentation first: there is no cluster table to export.")
            return None
        if path is None:
            path = self._ask_save_path(
                "Export cluster table", f"{self.job.name} clusters.csv", "CSV (*.csv)"
            )
            if not path:
                return None
        try:
            write_csv(path, self._rows())
        except OSError as error:
            show_error(f"Could not write the cluster table to {path}: {error.strerror}")
            return None
        return path

    def mask_from_selection(self) -> Labels | None:
        """Add a Labels layer of the clusters selected in the table."""
        if self.labels_layer is None or self.labels_layer not in self.viewer.layers:
            show_info("Run a k-means segmentation first: its labels layer is gone.")
            return None
        try:
            clusters = self.table.selected_labels()
            return sg.mask_from_clusters(self.viewer, self.labels_layer, clusters)
        except ValueError as error:
            show_info(str(error).capitalize())
            return None

    # --- the model of the last run ----------------------------------------------------------

    def save_model(self, path: str | None = None) -> str | None:
        """Save the last run's model to ``path`` (asks for one when None); returns the path."""
        if self.segmentation is None:
            show_info("Run a k-means segmentation first: there is no model to save.")
            return None
        if path is None:
            path = self._ask_save_path(
                "Save k-means model", f"{self.job.name} model.json", "k-means model (*.json)"
            )
            if not path:
                return None
        try:
            self.segmentation.model.save(path)
        except OSError as error:
            show_error(f"Could not save the k-means model to {path}: {error.strerror}")
            return None
        return path

    def apply_targets(self) -> list[Image]:
        """Image layers of the last run's kind (channels, dtype), except its input and outputs."""
        if self.job is None or len(self.job.sources) != 1:
            return []
        source = self.job.sources[0]
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and layer is not source
            and sg.METADATA_KEY not in layer.metadata
            and _kind(layer) == _kind(source)
        ]

    def apply_model(self, layers) -> list | None:
        """Label image layer(s) with the last run's model; returns their segmentations."""
        if self.segmentation is None:
            show_info("Run a k-means segmentation first: there is no model to apply.")
            return None
        try:
            return sg.apply_model(self.viewer, layers, self.segmentation.model)
        except ValueError as error:
            show_error(f"Applying the k-means model failed: {error}")
            return None

    def _fill_apply_menu(self) -> None:
        """The "Apply model to…" menu: each layer of the same kind, then all of them."""
        self.apply_menu.clear()
        targets = self.apply_targets()
        if not targets:
            self.apply_menu.addAction("No other image layer of the same kind").setEnabled(False)
            return
        for layer in targets:
            self._add_apply_action(layer.name, [layer])
        self.apply_menu.addSeparator()
        self._add_apply_action(f"Every image layer of the same kind ({len(targets)})", targets)

    def _add_apply_action(self, text: str, layers: list[Image]) -> None:
        action = self.apply_menu.addAction(text)
        action.triggered.connect(lambda _checked=False: self.apply_model(layers))

    # --- suggesting k -----------------------------------------------------------------------

    def suggest(self):
        """Compute the k-suggestion curves in a worker thread; returns the worker (or None)."""
        if self._suggest_worker is not None:
            show_info("Suggest k is already running: wait for it.")
            return None
        try:
            job = sg.prepare(
                self.viewer,
                self.images.value,
                mask=self.mask.value,
                current_slice=self._choose_slice and self.current_slice.value,
            )
        except ValueError as error:
            show_error(f"Suggest k: {error}")
            return None
        color_space = self.color_space.value if self._choose_color_space else "rgb"
        worker = create_worker(
            self._suggest_work, job, color_space, self.seed.value, _start_thread=False
        )
        worker.returned.connect(self._show_suggestion)
        worker.finished.connect(self._suggest_cleanup)
        self._suggest_worker = worker
        self.suggest_button.enabled = False
        worker.start()
        return worker

    @staticmethod
    def _suggest_work(job: sg.SegmentationJob, color_space: str, seed: int):
        """Worker thread; failures come back as values (a notification, not a traceback)."""
        try:
            return job, suggest_k(
                job.image,
                seed=seed,
                color_space=color_space,
                channel_axis=job.channel_axis,
                mask=job.mask,
            )
        except (ValueError, MemoryError) as error:
            return job, error

    def _show_suggestion(self, outcome) -> None:
        job, suggestion = outcome
        if isinstance(suggestion, Exception):
            show_error(f"Suggest k for {job.name!r} failed: {suggestion}")
            return
        if self.k_plot is None:
            from .k_plot import KCurves  # matplotlib: only once Suggest k is used

            self.k_plot = KCurves()
            self.k_plot_layout.addWidget(self.k_plot)
        self.suggestion = suggestion
        self.k_plot.show_suggestion(suggestion)
        self.k_label.setText(f"Suggested k = {suggestion.recommended}: {suggestion.reason}")
        self.k_label.show()
        if suggestion.recommended < self.n_clusters.min:  # one value: nothing to segment
            show_info(f"Suggest k for {job.name!r}: {suggestion.reason}")
            return
        self.n_clusters.value = suggestion.recommended

    def _suggest_cleanup(self) -> None:
        self._suggest_worker = None
        self.suggest_button.enabled = True


def _kind(layer: Image) -> tuple[int, np.dtype]:
    """What a model needs to label a layer: its channel count and dtype."""
    return (layer.data.shape[-1] if layer.rgb else 1), np.dtype(layer.dtype)
