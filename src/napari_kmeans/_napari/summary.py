"""The cluster table (shown in the widget, exported as CSV) as plain rows."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

from ..api import Segmentation
from ..assess.cross_check import CrossCheck


def cluster_rows(
    seg: Segmentation, channel_names: Sequence[str], check: CrossCheck | None = None
) -> list[dict]:
    """One dict per cluster: label, mean value per channel, pixel count, fraction.

    With a cross-check, every row also carries its figures (prefixed ``opencv_``) so the
    CSV stays one flat table.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_kmeans import segment
    >>> seg = segment(np.array([[0, 0, 0, 9]], np.uint8), n_clusters=2, seed=0)
    >>> cluster_rows(seg, ["grey"])[1]
    {'label': 2, 'mean_grey': 9.0, 'pixels': 1, 'fraction': 0.25}
    """
    total = int(seg.counts.sum())
    extra = {} if check is None else {f"opencv_{k}": v for k, v in check.to_dict().items()}
    rows = []
    for label, (colour, count) in enumerate(zip(seg.palette, seg.counts, strict=True), start=1):
        row = {"label": label}
        means = zip(channel_names, colour, strict=True)
        row.update({f"mean_{name}": float(value) for name, value in means})
        row.update(pixels=int(count), fraction=int(count) / total)
        row.update(extra)
        rows.append(row)
    return rows


def write_csv(path: str | os.PathLike[str], rows: list[dict]) -> None:
    """Write ``rows`` (all with the same keys) as a CSV file with a header line."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def channel_names(source_names: Sequence[str], rgb: bool, n_channels: int) -> list[str]:
    """Column names for the palette: red/green/blue, the layer names, or ``grey``."""
    if rgb:
        return ["red", "green", "blue"][:n_channels]
    if len(source_names) > 1:
        return list(source_names)
    return ["grey"]
