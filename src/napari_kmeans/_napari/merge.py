"""Merge clusters of a result: several labels become one, everywhere it shows.

The layer's model is merged by :meth:`napari_kmeans.KMeansModel.merge` (pooled centre and
palette, labels numbered darkest first again), and the Labels layer's data and
``features``, the recorded model, palette and counts, and the recoloured layer(s) follow
it; so do Save model, Apply model and Copy Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from napari.layers import Labels

from ..outputs.segmentation import Segmentation
from .inputs import METADATA_KEY, LayerRef, find_layer, is_lazy
from .outputs import (
    LABELS,
    RECOLORED,
    display_colors,
    features_table,
    labels_colormap,
    labels_digest,
    recolored_layers,
)


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
        moved[np.take(where, 0, axis)] = _cast(mean, data.dtype)  # labels: channel axis of 1
    else:
        data[where] = _cast(mean, data.dtype)[0]
    layer.data = data


def _merged_colors(viewer, meta: dict, model, relabel: np.ndarray, palette) -> np.ndarray:
    """Display colours of the merged clusters, as the input layer(s) show them."""
    sources = [
        next((layer for layer in viewer.layers if str(layer.unique_id) == key), None)
        for key in meta["inputs"]
    ]
    if all(layer is not None for layer in sources):
        return display_colors(sources, palette)
    # the inputs are gone: pool the old colours as the palette was pooled
    old = np.asarray(meta["display_colors"], dtype=float)
    weights = np.maximum(model.counts.astype(float), 1e-12)
    index = relabel[1:].astype(np.intp) - 1
    sums = np.stack([np.bincount(index, weights * c, len(palette)) for c in old.T], axis=1)
    return sums / np.bincount(index, weights, len(palette))[:, None]


def merge_clusters(viewer, labels: LayerRef, clusters: Sequence[int]) -> Labels:
    """Merge the chosen clusters of ``labels`` (a k-means labels layer) into one.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer holding the layer and its recoloured layer(s).
    labels : napari.layers.Labels or str
        A labels layer made by the plugin (it records its model), or its name.
    clusters : sequence of int
        Two or more labels of the layer.

    Returns
    -------
    napari.layers.Labels
        The same layer, relabelled (darkest cluster first) with its ``features``, metadata
        (``model``, ``palette``, ``counts``, ``params["merged"]``, ``layer_merges``: the
        labels merged in this layer, for Copy Python) and recoloured layer(s) updated.

    Examples
    --------
    >>> napari_kmeans.merge_layer_clusters(viewer, "cells k-means labels", [2, 3])  # doctest: +SKIP
    """
    labels = find_layer(viewer, labels)
    chosen = sorted({int(c) for c in clusters})
    if len(chosen) < 2:
        raise ValueError("select two or more rows of the cluster table to merge them")
    if is_lazy(labels.data):
        raise ValueError("merging needs labels in memory; this labels layer is a dask array")
    meta = dict(labels.metadata.get(METADATA_KEY) or {})
    model = meta.get("model")
    if not isinstance(labels, Labels) or model is None:
        raise ValueError(f"layer {labels.name!r} records no k-means model to merge")
    shown = set(labels.features["label"].astype(int).tolist())
    missing = sorted(set(chosen) - shown)
    if missing:
        raise ValueError(f"labels {missing} are not clusters of this layer: select table rows")
    merged, relabel = model.merge([chosen])
    # this layer's own counts and inertia (an applied model's image is not the fitted one)
    own = dataclasses.replace(
        model, counts=np.asarray(meta["counts"], np.int64), inertia=float(meta["inertia"])
    )
    here = own.merge([chosen])[0]
    data = np.asarray(labels.data)
    new_data = relabel[data].astype(data.dtype)
    background = sorted(set(range(1, model.n_clusters + 1)) - shown)
    seg = Segmentation(
        labels=new_data,
        palette=merged.palette,
        recolored=None,
        centers=merged.centers,
        counts=here.counts,
        inertia=here.inertia,
        n_iter=merged.n_iter,
        params={**meta["params"], **merged.params},
        model=merged,
    )
    colors = _merged_colors(viewer, meta, model, relabel, merged.palette)
    names = [c.removeprefix("mean_") for c in labels.features.columns if c.startswith("mean_")]
    meta.update(
        {key: value for key, value in seg.to_dict().items() if key != "seconds"},
        model=merged,
        layer_merges=[*meta.get("layer_merges", []), chosen],
        display_colors=colors.tolist(),
        labels_digest=labels_digest(new_data),
    )
    new_label = int(relabel[chosen[0]])
    # a preview has no recoloured layer of its own (the full run's are another result)
    recolored = recolored_layers(viewer, labels) if meta.get("role") == LABELS else []
    for layer in recolored:
        role = layer.metadata[METADATA_KEY]["role"]  # "recolored" or "recolored <channel>"
        channel = None if role == RECOLORED else int(role.rsplit(" ", 1)[1])
        _recolor(layer, data, chosen, merged.palette[new_label - 1], channel)
        layer.metadata = {METADATA_KEY: {**layer.metadata[METADATA_KEY], **meta, "role": role}}
    cluster_colors = meta.get("label_colors") == "cluster"
    labels.data = new_data
    labels.features = features_table(
        seg, names, int(relabel[background[0]]) if background else None
    )
    if cluster_colors:
        labels.colormap = labels_colormap(colors, "cluster")
    labels.metadata = {**labels.metadata, METADATA_KEY: meta}
    return labels
