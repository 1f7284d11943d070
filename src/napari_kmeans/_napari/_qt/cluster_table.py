"""The cluster table of the labels layer on screen, and what can be done with its rows.

The table shows a Labels layer's ``features`` (label, colour, mean value, pixels, fraction),
whatever made the layer (the widget, :func:`napari_kmeans.segment_layer`, a merge), so it
always matches the layer the user looks at. Rows can be exported, turned into a mask or
merged into one cluster.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..inputs import METADATA_KEY
from .tasks import guard

HEADERS = ("Label", "Colour", "Mean value", "Pixels", "Fraction")


def table_rows(labels: Labels) -> list[dict]:
    """Return the layer's features as rows (without napari's ``index`` column)."""
    features = labels.features
    if "label" not in features:
        return []
    return [
        {key: value for key, value in row.items() if key != "index"}
        for row in features.to_dict("records")
    ]


class ClusterTable(QTableWidget):
    """Read-only table with one row per cluster; rows can be selected (several at once)."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setHorizontalHeaderLabels(HEADERS)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(HEADERS.index("Mean value"), QHeaderView.ResizeMode.Stretch)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setMinimumHeight(5 * self.verticalHeader().defaultSectionSize())

    def show_layer(self, labels: Labels | None) -> None:
        """Fill the table from a labels layer (empty for None)."""
        rows = [] if labels is None else table_rows(labels)
        self.setRowCount(len(rows))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, row in enumerate(rows):
            means = [v for key, v in row.items() if key.startswith("mean_")]
            swatch = QTableWidgetItem()
            rgba = np.asarray(labels.colormap.map(int(row["label"]))).reshape(-1)[:4]
            swatch.setBackground(QColor.fromRgbF(*(float(c) for c in rgba)))
            cells = (
                QTableWidgetItem(str(int(row["label"]))),
                swatch,
                QTableWidgetItem(", ".join(f"{v:.4g}" for v in means)),
                QTableWidgetItem(str(int(row["pixels"]))),
                QTableWidgetItem(f"{row['fraction']:.2%}"),
            )
            for c, item in enumerate(cells):
                if c != 1:
                    item.setTextAlignment(right)
                self.setItem(r, c, item)

    def selected_labels(self) -> list[int]:
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [int(self.item(r, 0).text()) for r in rows]


def cross_check_text(labels: Labels | None) -> str:
    """Explain the cross-check figures of a labels layer ('' without one)."""
    check = None if labels is None else labels.metadata.get(METADATA_KEY, {}).get("cross_check")
    if not check:
        return ""
    return (
        f"cv2.kmeans cross-check: adjusted Rand index {check['adjusted_rand_index']:.3f} "
        "(1 = the same partition)\n"
        f"inertia ours / OpenCV {check['inertia_ratio']:.4f} (≤ 1: ours fits as well or "
        f"better); largest gap between matched centres {check['max_center_distance']:.3g}\n"
        f"time: {check['ours_seconds']:.3f} s ours, {check['opencv_seconds']:.3f} s OpenCV"
    )


class ResultsPanel(QWidget):
    """The table of the labels layer on screen, its cross-check and the row actions."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.labels: Labels | None = None
        self.title = QLabel()
        self.table = ClusterTable()
        self.check_label = QLabel()
        self.check_label.setWordWrap(True)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Write this table (and the cross-check) to a CSV file")
        self.mask_button = QPushButton("Mask from clusters")
        self.mask_button.setToolTip("A Labels layer holding only the selected clusters")
        self.merge_button = QPushButton("Merge clusters")
        self.merge_button.setToolTip("Give the selected clusters one label (the lowest)")
        self.flip_button = QPushButton("Show original")
        self.flip_button.setCheckable(True)
        self.flip_button.setToolTip("Flip between the input layer(s) and the result")
        buttons = QGridLayout()
        for i, button in enumerate(
            (self.export_button, self.mask_button, self.merge_button, self.flip_button)
        ):
            button.setMinimumSize(button.sizeHint())
            buttons.addWidget(button, i // 2, i % 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.table)
        layout.addWidget(self.check_label)
        layout.addLayout(buttons)
        self.show_layer(None)

    def show_layer(self, labels: Labels | None) -> None:
        """Follow ``labels`` (a Labels layer this plugin made), or show nothing."""
        if self.labels is not None and self.labels is not labels:
            self.labels.events.features.disconnect(self._on_features)
        if labels is not None and labels is not self.labels:
            labels.events.features.connect(self._on_features)  # re-runs from anywhere
        self.labels = labels
        self.title.setText("" if labels is None else f"Clusters of {labels.name!r}")
        self.table.show_layer(labels)
        text = cross_check_text(labels)
        self.check_label.setText(text)
        self.check_label.setVisible(bool(text))
        for button in (self.export_button, self.mask_button, self.merge_button, self.flip_button):
            button.setEnabled(labels is not None)

    def refresh(self) -> None:
        """Show the followed layer again (its features changed)."""
        self.show_layer(self.labels)

    def _on_features(self, event=None) -> None:
        guard("Cluster table", self.refresh)
