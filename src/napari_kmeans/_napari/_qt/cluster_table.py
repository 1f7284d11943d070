"""Table of clusters: label, colour swatch, mean value, pixel count, fraction."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

HEADERS = ("Label", "Colour", "Mean value", "Pixels", "Fraction")


class ClusterTable(QTableWidget):
    """Read-only table with one row per cluster; rows can be selected (several at once)."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setHorizontalHeaderLabels(HEADERS)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)

    def show_clusters(self, rows: list[dict], colors: np.ndarray) -> None:
        """Fill the table from :func:`~napari_kmeans._napari.summary.cluster_rows` and the
        clusters' display colours (RGBA in [0, 1])."""
        self.setRowCount(len(rows))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, (row, rgba) in enumerate(zip(rows, colors, strict=True)):
            means = [v for key, v in row.items() if key.startswith("mean_")]
            swatch = QTableWidgetItem()
            swatch.setBackground(QColor.fromRgbF(*(float(c) for c in rgba)))
            cells = (
                QTableWidgetItem(str(row["label"])),
                swatch,
                QTableWidgetItem(", ".join(f"{v:.4g}" for v in means)),
                QTableWidgetItem(str(row["pixels"])),
                QTableWidgetItem(f"{row['fraction']:.2%}"),
            )
            for c, item in enumerate(cells):
                if c != 1:
                    item.setTextAlignment(right)
                self.setItem(r, c, item)

    def selected_labels(self) -> list[int]:
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [int(self.item(r, 0).text()) for r in rows]
