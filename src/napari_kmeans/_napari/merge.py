"""Merge clusters of a result: several labels become one, everywhere it shows.

The merged cluster takes the lowest of the chosen labels; its pixel count is the sum, its
mean value the pixel-weighted mean of the merged clusters. The Labels layer's data and
``features``, the recorded palette and counts, and the recoloured layer(s) are updated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from napari.layers import Labels

from .inputs import METADATA_KEY, is_lazy
from .outputs import LABELS, RECOLORED, labels_digest, recolored_layers


def _merged_table(features, chosen: list[int]):
    means = [c for c in features.columns if c.startswith("mean_")]
    rows = features[features["label"].isin(chosen)]
    if len(rows) != len(chosen):
        missing = sorted(set(chosen) - set(rows["label"]))
        raise ValueError(f"labels {missing} are not clusters of this layer: select table rows")
    pixels = rows["pixels"].to_numpy(dtype=float)
    merged_mean = (rows[means].to_numpy(dtype=float) * pixels[:, None]).sum(0) / pixels.sum()
    table = features[~features["label"].isin(chosen[1:])].copy()
    target = table["label"] == chosen[0]
    table.loc[target, "pixels"] = int(pixels.sum())
    table.loc[target, "fraction"] = float(rows["fraction"].sum())
    table.loc[target, means] = merged_mean
    return table.reset_index(drop=True), merged_mean


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _recolor(layer, labels: np.ndarray, chosen: list[int], mean: np.ndarray, channel) -> None:
    """Paint the merged pixels of one recoloured layer with the merged mean."""
    data = np.array(layer.data)  # a copy: the layer's array may be shared
    where = np.isin(labels, chosen)
    meta = layer.metadata[METADATA_KEY]
    axis = meta.get("layer_channel_axis")
    if layer.rgb:
        data[..., : len(mean)][where] = _cast(mean, data.dtype)
    elif channel is not None:
        data[where] = _cast(mean[channel : channel + 1], data.dtype)[0]
    elif axis is not None:
        moved = np.moveaxis(data, axis, -1)
        moved[where] = _cast(mean, data.dtype)
    else:
        data[where] = _cast(mean, data.dtype)[0]
    layer.data = data


def merge_clusters(viewer, labels: Labels, clusters: Sequence[int]) -> Labels:
    """Give the chosen clusters of ``labels`` one label (the lowest) and one mean colour."""
    chosen = sorted({int(c) for c in clusters})
    if len(chosen) < 2:
        raise ValueError("select two or more rows of the cluster table to merge them")
    if is_lazy(labels.data):
        raise ValueError("merging needs labels in memory; this labels layer is a dask array")
    table, mean = _merged_table(labels.features, chosen)
    data = np.asarray(labels.data)
    merged = np.where(np.isin(data, chosen[1:]), chosen[0], data).astype(data.dtype)
    meta = dict(labels.metadata[METADATA_KEY])
    palette = np.asarray(meta["palette"], dtype=float)
    counts = np.asarray(meta["counts"])
    palette[chosen[0] - 1] = mean
    counts[chosen[0] - 1] = counts[np.asarray(chosen) - 1].sum()
    counts[np.asarray(chosen[1:]) - 1] = 0
    meta.update(
        palette=palette.tolist(),
        counts=counts.tolist(),
        merged=[*meta.get("merged", []), chosen],
        labels_digest=labels_digest(merged),
    )
    # a preview has no recoloured layer of its own (the full run's are another result)
    recolored = recolored_layers(viewer, labels) if meta.get("role") == LABELS else []
    for layer in recolored:
        role = layer.metadata[METADATA_KEY]["role"]  # "recolored" or "recolored <channel>"
        channel = None if role == RECOLORED else int(role.rsplit(" ", 1)[1])
        _recolor(layer, data, chosen, mean, channel)
        layer.metadata = {
            METADATA_KEY: {
                **layer.metadata[METADATA_KEY],
                **meta,
                "role": layer.metadata[METADATA_KEY]["role"],
            }
        }
    labels.data = merged
    labels.features = table
    labels.metadata = {**labels.metadata, METADATA_KEY: meta}
    return labels
