"""The "Suggest k" curves: inertia, silhouette and coherence against k, drawn with QPainter.

No plotting library: the curves are a few lines and dots, drawn in the colours of napari's
current theme, under a header button that folds them away.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

# the third is what the recommendation rests on: how solid the least solid cluster's regions are
CURVES = (("inertia", "inertia"), ("silhouette", "silhouette"), ("coherence", "solid regions"))
FALLBACK_THEME = {"text": "#f0f1f2", "line": "#4560c4", "mark": "#e3b617", "grid": "#61696e"}


def theme_colors(theme_name: str | None) -> dict[str, str]:
    """Text, curve, recommended-k and grid colours of a napari theme."""
    if theme_name is None:
        return dict(FALLBACK_THEME)
    from napari.utils.theme import get_theme

    theme = get_theme(theme_name)
    return {
        "text": str(theme.text.as_hex()),
        "line": str(theme.current.as_hex()),
        "mark": str(theme.warning.as_hex()),
        "grid": str(theme.highlight.as_hex()),
    }


class KCurves(QWidget):
    """Three small panels, the recommended k marked by a dashed line."""

    def __init__(self, colors: dict[str, str] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.colors = dict(FALLBACK_THEME if colors is None else colors)
        self.suggestion = None
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self):  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        hint.setHeight(130)
        return hint

    def show_suggestion(self, suggestion) -> None:
        """Draw the curves of a :class:`napari_kmeans.KSuggestion`."""
        self.suggestion = suggestion
        self.update()

    def panels(self) -> list[tuple[str, QRectF]]:
        """Each curve's title and the rectangle it is drawn in."""
        width = self.width() / len(CURVES)
        return [
            (title, QRectF(i * width + 6, 16, width - 12, self.height() - 32))
            for i, (_, title) in enumerate(CURVES)
        ]

    def points(self, attribute: str, rect: QRectF) -> list[QPointF]:
        """Where the finite values of one curve are drawn in ``rect``."""
        s = self.suggestion
        pairs = [
            (k, v) for k, v in zip(s.k, getattr(s, attribute), strict=True) if math.isfinite(v)
        ]
        if not pairs:
            return []
        ks = [k for k, _ in pairs]
        values = [v for _, v in pairs]
        k_span = (max(ks) - min(ks)) or 1
        low, high = min(values), max(values)
        v_span = (high - low) or 1.0
        return [
            QPointF(
                rect.left() + (k - min(ks)) / k_span * rect.width(),
                rect.bottom() - (v - low) / v_span * rect.height(),
            )
            for k, v in pairs
        ]

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.suggestion is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text, line, mark, grid = (QColor(self.colors[c]) for c in ("text", "line", "mark", "grid"))
        s = self.suggestion
        for (attribute, _), (title, rect) in zip(CURVES, self.panels(), strict=True):
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(grid, 1))
            painter.drawRect(rect)
            painter.setPen(text)
            painter.drawText(
                QRectF(rect.left(), 0, rect.width(), 15), Qt.AlignmentFlag.AlignCenter, title
            )
            ks = list(s.k)
            axis = f"k = {min(ks)}…{max(ks)}"
            painter.drawText(
                QRectF(rect.left(), rect.bottom() + 1, rect.width(), 15),
                Qt.AlignmentFlag.AlignCenter,
                axis,
            )
            if len(ks) > 1:
                x = rect.left() + (s.recommended - min(ks)) / (max(ks) - min(ks)) * rect.width()
                painter.setPen(QPen(mark, 1, Qt.PenStyle.DashLine))
                painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            points = self.points(attribute, rect)
            painter.setPen(QPen(line, 1.5))
            for a, b in zip(points, points[1:], strict=False):
                painter.drawLine(a, b)
            painter.setBrush(line)
            for p in points:
                painter.drawEllipse(p, 2.5, 2.5)
        painter.end()


class KSuggestionPanel(QWidget):
    """A header button ("Suggest k: …") that folds the curves and the reason away."""

    def __init__(self, colors: dict[str, str] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.header = QToolButton()
        self.header.setCheckable(True)
        self.header.setChecked(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setArrowType(Qt.ArrowType.DownArrow)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.header.toggled.connect(self.set_unfolded)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.curves = KCurves(colors)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.reason)
        layout.addWidget(self.curves)
        self.hide()

    def set_unfolded(self, unfolded: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if unfolded else Qt.ArrowType.RightArrow)
        self.reason.setVisible(unfolded)
        self.curves.setVisible(unfolded)

    def show_suggestion(self, suggestion) -> None:
        """Show a suggestion's curves and reason, unfolded."""
        others = [k for k in suggestion.candidates if k != suggestion.recommended]
        also = f" (or {others[0]})" if others else ""
        self.header.setText(f"Suggest k: k = {suggestion.recommended}{also}")
        self.reason.setText(suggestion.reason)
        self.curves.show_suggestion(suggestion)
        self.header.setChecked(True)
        self.set_unfolded(True)
        self.show()
