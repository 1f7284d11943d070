"""The "Suggest k" curves: inertia, silhouette and BIC against k, in a small Qt canvas.

Imported only when Suggest k is first used, so that matplotlib does not slow the widget's
opening.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

_CURVES = (("inertia", "inertia"), ("silhouette", "silhouette"), ("bic", "BIC"))


class KCurves(FigureCanvasQTAgg):
    """One small panel per criterion, the recommended k marked by a dashed line."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4.5, 1.8), layout="constrained")
        super().__init__(self.figure)
        self.setMinimumHeight(150)

    def show_suggestion(self, suggestion) -> None:
        """Draw the curves of a :class:`napari_kmeans.KSuggestion`."""
        self.figure.clear()
        axes = self.figure.subplots(1, len(_CURVES), sharex=True)
        for ax, (attribute, title) in zip(axes, _CURVES, strict=True):
            ax.plot(suggestion.k, getattr(suggestion, attribute), marker="o", markersize=3)
            ax.axvline(suggestion.recommended, color="tab:red", linestyle="--", linewidth=1)
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("k", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.yaxis.get_offset_text().set_fontsize(7)
        self.draw_idle()
