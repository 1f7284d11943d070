"""Layers out: a segmentation as a Labels layer and recoloured Image layer(s).

Each output layer records in its metadata which input layers made it (their unique ids,
so renaming a layer changes nothing) and its role; a re-run on the same inputs finds and
updates its own layers whatever they are called now, and a run on other inputs never
touches them. A Labels layer also records a digest of the labels it was given: when the
data no longer matches (painted by hand), it is replaced only if the caller agrees.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from napari.layers import Image, Labels, Layer
from napari.utils.colormaps import CyclicLabelColormap
from napari.utils.transforms import Affine

from ..api import Segmentation
from ..assess.cross_check import CrossCheck
from ..outputs.label_colors import MAX_COLORS, distinct_colors
from .inputs import METADATA_KEY, Inputs, is_lazy
from .summary import channel_names, cluster_rows

_TRANSPARENT = (0.0, 0.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True, eq=False)
class RunResult:
    """What a run shows: the segmentation, its cross-check and the arrays of its layers.

    Attributes
    ----------
    seg : the segmentation (its ``palette`` and ``centers`` are the model's).
    check : the cross-check, or None.
    labels : the labels, finest level first (one unless multiscale); NumPy or dask arrays
        that napari reads without running the model.
    recolored : the recoloured image, level by level like ``labels``.
    means : ``(k, C)`` this image's mean value per label (the table and CSV).
    counts : ``(k,)`` this image's pixels per label.
    """

    seg: Segmentation
    check: CrossCheck | None
    labels: list
    recolored: list
    means: np.ndarray
    counts: np.ndarray

    @classmethod
    def in_memory(cls, seg: Segmentation, check: CrossCheck | None = None) -> RunResult:
        """Wrap the result of ``segment`` on NumPy data: its own arrays and palette."""
        return cls(seg, check, [seg.labels], [seg.recolored], seg.palette, np.asarray(seg.counts))

    @property
    def table_seg(self) -> Segmentation:
        """``seg`` with this image's means and counts (what the table shows)."""
        means = np.where(np.isfinite(self.means), self.means, self.seg.palette)
        return dataclasses.replace(self.seg, palette=means, counts=self.counts)


LABEL_COLORS = ("distinct", "cluster")
LABELS, RECOLORED, PREVIEW = "labels", "recolored", "preview"


def labels_digest(data) -> str | None:
    """Return a digest of label data, to notice later edits (None for lazy data)."""
    if is_lazy(data):
        return None
    array = np.ascontiguousarray(data)
    return hashlib.blake2b(array.view(np.uint8).reshape(-1), digest_size=16).hexdigest()


def was_edited(layer: Labels) -> bool:
    """Tell whether ``layer``'s labels differ from what this plugin last wrote into it."""
    recorded = layer.metadata.get(METADATA_KEY, {}).get("labels_digest")
    return recorded is not None and recorded != labels_digest(layer.data)


def find_output(viewer, key: Sequence[str], role: str) -> Layer | None:
    """Return the layer made for input set ``key`` in ``role``, if still in the viewer."""
    for layer in viewer.layers:
        meta = layer.metadata.get(METADATA_KEY)
        if isinstance(meta, dict) and meta.get("inputs") == list(key) and meta.get("role") == role:
            return layer
    return None


def _normalised(values: np.ndarray, layer: Image) -> np.ndarray:
    low, high = layer.contrast_limits
    scaled = (values - low) / ((high - low) or 1.0)
    return np.clip(scaled, 0.0, 1.0) ** layer.gamma


def labels_name(source_names: Sequence[str], role: str = LABELS) -> str:
    """Name of the Labels layer of a run on layers called ``source_names`` (or a preview).

    Examples
    --------
    >>> labels_name(["nuclei", "membrane"])
    'nuclei + membrane k-means labels'
    """
    return f"{' + '.join(source_names)} k-means {'preview' if role == PREVIEW else 'labels'}"


def display_colors(sources: Sequence[Image], palette: np.ndarray) -> np.ndarray:
    """RGBA (k, 4) in [0, 1]: each cluster's mean value as the input layer(s) display it.

    An RGB layer maps its values through its contrast limits; single-channel layers through
    their colormaps, added up as napari's additive blending shows several channels; one
    layer holding channels on an axis through its colormap of the channels' mean.
    """
    if sources[0].rgb:
        rgb = _normalised(palette[:, :3], sources[0])
    elif len(sources) == 1:
        rgb = sources[0].colormap.map(_normalised(palette.mean(axis=1), sources[0]))[:, :3]
    else:
        rgb = sum(
            layer.colormap.map(_normalised(palette[:, channel], layer))[:, :3]
            for channel, layer in enumerate(sources)
        )
    return np.c_[np.clip(rgb, 0.0, 1.0), np.ones(len(palette))]


def labels_colormap(colors: np.ndarray, label_colors: str) -> CyclicLabelColormap:
    """Colours of the Labels layer: distinct colours, or each cluster's own colour.

    Label ``l`` gets colour ``l`` of the list (cycling past its end, so labels painted by
    hand are coloured too): distinct colours
    (:func:`~napari_kmeans.outputs.label_colors.distinct_colors`, ``MAX_COLORS - 1`` of
    them, or k) or the clusters' ``colors``. A cyclic colormap, not a direct one: napari
    compiles a numba dictionary for a direct colormap on first use, seconds with the GIL
    held, which would freeze the GUI.
    """
    if label_colors not in LABEL_COLORS:
        raise ValueError(f"label_colors={label_colors!r} is not allowed: use one of {LABEL_COLORS}")
    if label_colors == "distinct":
        distinct = distinct_colors(max(MAX_COLORS - 1, len(colors)))
        rgba = np.c_[distinct, np.ones(len(distinct))]
    else:
        rgba = np.asarray(colors, dtype=float)
    return CyclicLabelColormap(colors=np.r_[[_TRANSPARENT], rgba], background_value=0)


def channel_names_of(inputs: Inputs, n_channels: int) -> list[str]:
    """Name the channels: red/green/blue, the layers' names, channel_<i> or grey."""
    if (
        len(inputs.sources) == 1
        and inputs.layer_channel_axis is not None
        and not inputs.sources[0].rgb
    ):
        return [f"channel_{c}" for c in range(n_channels)]
    return channel_names(
        [layer.name for layer in inputs.sources], inputs.sources[0].rgb, n_channels
    )


def features_table(
    seg: Segmentation, names: Sequence[str], background: int | None = None
) -> pd.DataFrame:
    """Make the Labels layer's ``features``: label, pixels, fraction, mean per channel.

    The ``index`` column holds the label value (napari's lookup); a background cluster
    (label 0 in the layer) has no row.
    """
    rows = [row for row in cluster_rows(seg, names) if row["label"] != background]
    table = pd.DataFrame(rows)
    table.insert(0, "index", table["label"])
    return table


def _placement(layer: Layer, inputs: Inputs | None = None) -> dict:
    """Place data on ``layer``'s world axes as the layer is placed (same axes and units).

    With ``inputs``, the data is the labels of a run on axes of their own: a previewed
    slice starts at its offset, and a channel axis of the layer is kept with length 1,
    stretched over the layer's channels, so the labels follow every other slider (a labels
    pixel shown at Z = z is the segmentation of that z, whatever channel is shown).
    """
    ndim = layer.ndim
    stretch, shift = np.ones(ndim), np.zeros(ndim)
    if inputs is not None:
        if inputs.slice is not None:
            shift[list(inputs.spatial_axes)] = inputs.slice.offset
        axis = inputs.layer_channel_axis
        if axis is not None and not layer.rgb:
            n = layer.data.shape[axis] if not layer.multiscale else layer.data[0].shape[axis]
            stretch[axis], shift[axis] = n, (n - 1) / 2
    own = Affine(scale=layer.scale, rotate=layer.rotate, shear=layer.shear, ndim=ndim)
    linear = own.affine_matrix[:-1, :-1]
    return {
        "scale": np.asarray(layer.scale) * stretch,
        "translate": np.asarray(layer.translate, dtype=float) + linear @ shift,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine.affine_matrix,
        "units": layer.units,
        "axis_labels": layer.axis_labels,
    }


def on_layer_axes(labels, inputs: Inputs):
    """Give labels the input layer's axes: length 1 on a slice's fixed axes and channels.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> layer = SimpleNamespace(rgb=False)
    >>> inputs = SimpleNamespace(slice=None, layer_channel_axis=1, sources=[layer])
    >>> on_layer_axes(np.zeros((4, 5, 6)), inputs).shape
    (4, 1, 5, 6)
    """
    expand = da_expand_dims if is_lazy(labels) else np.expand_dims
    if inputs.slice is not None:
        fixed = [a for a, i in enumerate(inputs.slice.index) if isinstance(i, int)]
        labels = expand(labels, tuple(fixed))
    own_axis = len(inputs.sources) == 1 and not inputs.sources[0].rgb
    if inputs.layer_channel_axis is not None and own_axis:
        labels = expand(labels, inputs.layer_channel_axis)
    return labels


def da_expand_dims(array, axis):
    """``numpy.expand_dims`` for a dask array."""
    import dask.array as da

    return da.expand_dims(array, axis)


def _display(layer: Image) -> dict:
    settings = {"contrast_limits": layer.contrast_limits, "gamma": layer.gamma}
    if not layer.rgb:
        settings.update(colormap=layer.colormap, blending=layer.blending)
    return settings


def _fits(layer: Layer, layer_type: type[Layer], data) -> bool:
    return (
        isinstance(layer, layer_type)
        and not isinstance(data, list)
        and not layer.multiscale
        and layer.data.shape == data.shape
        and layer.data.dtype == data.dtype
    )


def put(viewer, existing, name, layer_type, data, settings) -> Layer:
    """Replace ``existing``'s data if it can hold ``data``, else add a layer in its place."""
    if existing is not None and _fits(existing, layer_type, data):
        existing.data = data
        for key, value in settings.items():
            if key != "rgb":  # fixed when the layer is made
                setattr(existing, key, value)
        return existing
    layer = layer_type(data, name=name, **settings)
    if existing is None:
        viewer.layers.append(layer)
    else:
        index = viewer.layers.index(existing)
        viewer.layers.remove(existing)
        viewer.layers.insert(index, layer)
    viewer.layers.selection.active = layer  # as napari's add_* methods do
    return layer


def output_metadata(inputs: Inputs, seg: Segmentation, check: CrossCheck | None, role: str) -> dict:
    summary = seg.to_dict()
    summary.update(
        source_layers=[layer.name for layer in inputs.sources],
        mask_layer=None if inputs.mask_layer is None else inputs.mask_layer.name,
        layer_channel_axis=inputs.layer_channel_axis,
        cross_check=None if check is None else check.to_dict(),
        inputs=inputs.key,
        role=role,
        model=seg.model,  # the KMeansModel object (merge, save, apply follow it)
    )
    return {METADATA_KEY: summary}


def inputs_present(viewer, inputs: Inputs) -> bool:
    """Tell whether every input layer (and the mask layer) is still in the viewer."""
    layers = [*inputs.sources, *([] if inputs.mask_layer is None else [inputs.mask_layer])]
    return all(layer in viewer.layers for layer in layers)


def shown_labels(labels, n_clusters: int, background: int | None):
    """Return the labels as the layer shows them: cluster ``background`` sent to 0."""
    if not background:
        return labels
    if not 1 <= background <= n_clusters:
        raise ValueError(
            f"background={background!r} is not allowed: use a label from 1 to {n_clusters} or None"
        )
    if is_lazy(labels):
        import dask.array as da

        return da.where(labels == background, 0, labels).astype(labels.dtype)
    return np.where(labels == background, 0, labels).astype(labels.dtype)


def _levels(levels: list):
    """One array, or the list of levels of a multiscale layer."""
    return levels[0] if len(levels) == 1 else list(levels)


def show(
    viewer,
    inputs: Inputs,
    result: RunResult,
    *,
    label_colors: str = "distinct",
    background: int | None = None,
    replace_edited: Callable[[Labels], bool] = lambda layer: False,
    applied_model: dict | None = None,
) -> Labels | None:
    """Add (or update) the labels and recoloured layer(s) of a run; None if an input is gone.

    The layers sit on the input's world axes (:func:`_placement`). A preview
    (``inputs.slice``) makes one Labels layer of its own and leaves the full result alone.
    A Labels layer painted since this plugin wrote it is replaced only when
    ``replace_edited(layer)`` is true; otherwise the new labels go to a new layer.
    ``applied_model`` (``{"path": file or None, "fitted_on": name}``) records that a
    model's ``predict`` made the result ("Apply model"), for Copy Python. The table
    (``features``) holds this image's means per label; the model's palette and centres
    stay in the metadata.
    """
    if not inputs_present(viewer, inputs):
        return None
    seg = result.seg
    first = inputs.sources[0]
    role = LABELS if inputs.slice is None else PREVIEW
    metadata = output_metadata(inputs, seg, result.check, role)
    metadata[METADATA_KEY].update(applied_model=applied_model, label_colors=label_colors)
    levels = [
        on_layer_axes(shown_labels(level, seg.n_clusters, background), inputs)
        for level in result.labels
    ]
    data = _levels(levels)
    if inputs.slice is None:
        _show_recolored(viewer, inputs, result, metadata)
    name = labels_name([layer.name for layer in inputs.sources], role)
    metadata[METADATA_KEY]["labels_digest"] = labels_digest(data) if len(levels) == 1 else None
    existing = find_output(viewer, inputs.key, role)
    if existing is not None and was_edited(existing) and not replace_edited(existing):
        kept = dict(existing.metadata[METADATA_KEY], role=f"{role} edited by hand")
        existing.metadata = {**existing.metadata, METADATA_KEY: kept}
        existing = None
    table_seg = result.table_seg
    colors = display_colors(inputs.sources, table_seg.palette)
    metadata[METADATA_KEY]["display_colors"] = colors.tolist()
    colormap = labels_colormap(colors, label_colors)
    names = channel_names_of(inputs, seg.palette.shape[1])
    settings = {
        "colormap": colormap,
        **_placement(first, inputs),
        "metadata": metadata,
        "features": features_table(table_seg, names, background),
    }
    return put(viewer, existing, name, Labels, data, settings)


def _show_recolored(viewer, inputs: Inputs, result: RunResult, metadata: dict) -> list[Image]:
    placement = _placement(inputs.sources[0])
    recolored = result.recolored
    if len(inputs.sources) == 1:
        parts = [(inputs.sources[0], _levels(recolored), f"{inputs.name} k-means recolored")]
    else:
        parts = [
            (
                layer,
                _levels([level[..., c] for level in recolored]),
                f"{inputs.name} k-means recolored: {layer.name}",
            )
            for c, layer in enumerate(inputs.sources)
        ]
    shown = []
    for c, (layer, data, name) in enumerate(parts):
        role = RECOLORED if len(parts) == 1 else f"{RECOLORED} {c}"
        layer_meta = {METADATA_KEY: {**metadata[METADATA_KEY], "role": role}}
        settings = {**_display(layer), **placement, "metadata": layer_meta, "rgb": layer.rgb}
        existing = find_output(viewer, inputs.key, role)
        shown.append(put(viewer, existing, name, Image, data, settings))
    return shown


def recolored_layers(viewer, labels: Labels) -> list[Image]:
    """Return the recoloured Image layer(s) made with ``labels`` (same inputs)."""
    key = labels.metadata[METADATA_KEY]["inputs"]
    return [
        layer
        for layer in viewer.layers
        if isinstance(layer, Image)
        and layer.metadata.get(METADATA_KEY, {}).get("inputs") == key
        and str(layer.metadata[METADATA_KEY].get("role", "")).startswith(RECOLORED)
    ]
