"""Layers in: the chosen image layer(s), mask and slice as the arrays ``segment`` takes.

The layer decides what a channel axis is: an RGB(A) layer (``layer.rgb``) has its colour on
the last axis (alpha kept apart by the core's alpha rule); any other single layer has no
channel axis unless the caller names one; several single-channel layers are stacked as
channels. The shape of the data is never used to guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from napari.layers import Image, Labels, Layer, Shapes
from napari.utils.transforms import Affine

METADATA_KEY = "napari_kmeans"

LayerRef = str | Layer


def find_layer(viewer, ref: LayerRef) -> Layer:
    """Return the layer ``ref`` (a layer, or the name of one in ``viewer``)."""
    if isinstance(ref, Layer):
        return ref
    if ref not in viewer.layers:
        names = ", ".join(repr(layer.name) for layer in viewer.layers) or "none"
        raise ValueError(f"there is no layer named {ref!r} in the viewer (layers: {names})")
    return viewer.layers[ref]


def is_output(layer: Layer) -> bool:
    """Tell whether this plugin made ``layer`` (such layers are not offered as inputs)."""
    return METADATA_KEY in layer.metadata


def is_lazy(data) -> bool:
    return hasattr(data, "__dask_graph__")


def _array(data):
    """NumPy data as NumPy; dask kept lazy; anything else lazy (e.g. Zarr) wrapped in dask."""
    if is_lazy(data) or isinstance(data, np.ndarray):
        return data
    if hasattr(data, "chunks") and hasattr(data, "dtype"):  # Zarr and the like: stay on disk
        import dask.array as da

        return da.from_array(data, chunks=data.chunks)
    return np.asarray(data)


def layer_levels(layer: Layer) -> tuple:
    """Return the layer's arrays, finest first (one unless the layer is multiscale)."""
    return tuple(_array(level) for level in (layer.data if layer.multiscale else [layer.data]))


def layer_data(layer: Layer):
    """Return the layer's full-resolution array: NumPy, or lazy (dask) for lazy data."""
    return layer_levels(layer)[0]


def image_layers(viewer, layers: LayerRef | Sequence[LayerRef]) -> tuple[Image, ...]:
    """Return the Image layers ``layers`` names, checked to be usable together."""
    refs = [layers] if isinstance(layers, str | Layer) else list(layers)
    if not refs:
        raise ValueError("no image layer chosen: choose the image layer to segment")
    sources = tuple(find_layer(viewer, ref) for ref in refs)
    for layer in sources:
        if not isinstance(layer, Image):
            raise ValueError(
                f"layer {layer.name!r} is a {type(layer).__name__} layer: choose an Image layer"
            )
    if len(sources) > 1:
        first = sources[0]
        for layer in sources:
            if layer.rgb:
                raise ValueError(
                    f"layer {layer.name!r} is RGB: layers used together as channels must each "
                    "have one channel (segment an RGB layer on its own)"
                )
            if layer.data.shape != first.data.shape:
                raise ValueError(
                    f"layers {first.name!r} {tuple(first.data.shape)} and {layer.name!r} "
                    f"{tuple(layer.data.shape)} differ in shape: layers used together as "
                    "channels must have the same shape"
                )
    return sources


def data_to_world(layer: Layer, axes: Sequence[int] | None = None) -> np.ndarray:
    """Homogeneous matrix from the layer's data coordinates to world coordinates.

    With ``axes``, only those layer axes (the spatial ones when a layer holds channels on an
    axis of its own).
    """
    own = Affine(
        scale=layer.scale,
        translate=layer.translate,
        rotate=layer.rotate,
        shear=layer.shear,
        ndim=layer.ndim,
    )
    matrix = layer.affine.affine_matrix @ own.affine_matrix
    if axes is None:
        return matrix
    keep = [*axes, layer.ndim]
    return matrix[np.ix_(keep, keep)]


def _shapes_mask(shapes: Shapes, image: Image, axes, spatial_shape) -> np.ndarray:
    if len(shapes.data) == 0:
        raise ValueError(f"mask layer {shapes.name!r} has no shapes: draw at least one")
    if shapes.ndim != len(spatial_shape):
        raise ValueError(
            f"mask layer {shapes.name!r} is {shapes.ndim}-D but image {image.name!r} is "
            f"{len(spatial_shape)}-D: draw the shapes in a {len(spatial_shape)}-D Shapes layer"
        )
    to_image = np.linalg.inv(data_to_world(image, axes)) @ data_to_world(shapes)
    on_grid = [
        (np.c_[vertices, np.ones(len(vertices))] @ to_image.T)[:, :-1] for vertices in shapes.data
    ]
    rasteriser = Shapes(on_grid, shape_type=shapes.shape_type, ndim=shapes.ndim)
    return rasteriser.to_masks(spatial_shape).any(axis=0)


def mask_from_layer(
    layer: Layer, image: Image, spatial_shape: tuple[int, ...], axes: Sequence[int] | None = None
) -> np.ndarray:
    """Boolean mask on the image's grid: Labels non-zero, or Shapes rasterised.

    ``axes`` are the image layer's spatial axes (all of them by default).
    """
    axes = list(range(image.ndim)) if axes is None else list(axes)
    if isinstance(layer, Labels):
        data = layer_data(layer)
        if data.shape != tuple(spatial_shape):
            raise ValueError(
                f"mask layer {layer.name!r} has shape {data.shape} but image {image.name!r} has "
                f"shape {tuple(spatial_shape)}: the mask must cover the image pixel for pixel"
            )
        return data != 0
    if isinstance(layer, Shapes):
        return _shapes_mask(layer, image, axes, spatial_shape)
    raise ValueError(
        f"mask layer {layer.name!r} is a {type(layer).__name__} layer: use a Labels or Shapes layer"
    )


@dataclass(frozen=True)
class Slice:
    """The slice the viewer shows: an index over the spatial axes and where it starts."""

    index: tuple[int | slice, ...]  # one entry per spatial axis
    offset: tuple[int, ...]  # data offset of the slice's first pixel, per spatial axis


def current_slice(viewer, image: Image, axes: Sequence[int], spatial_shape) -> Slice | None:
    """Return the slice of ``image`` on screen (None when every spatial axis is shown)."""
    offset = viewer.dims.ndim - image.ndim
    position = image.world_to_data(viewer.dims.point)
    index: list[int | slice] = []
    start = []
    for i, axis in enumerate(axes):
        if axis + offset not in viewer.dims.not_displayed:
            index.append(slice(None))
            start.append(0)
            continue
        step = int(np.round(position[axis]))
        if not 0 <= step < spatial_shape[i]:
            raise ValueError(
                f"the current slice (axis {axis} at {step}) is outside image {image.name!r}: "
                "move the slider onto the image"
            )
        index.append(step)
        start.append(step)
    if all(isinstance(entry, slice) for entry in index):
        return None
    return Slice(tuple(index), tuple(start))


@dataclass(frozen=True, eq=False)
class Inputs:
    """The arrays of one run and where they came from.

    Attributes
    ----------
    sources : the image layer(s), in channel order.
    image : the data ``segment`` gets (several layers stacked on a last channel axis; only
        the current slice for a preview).
    channel_axis : what ``segment`` gets as ``channel_axis`` ("rgb" for RGB(A) layers, so
        alpha follows the core's rule; an int or None otherwise).
    layer_channel_axis : the source layer's channel axis (None for one-channel data and for
        several layers; ``rgb`` layers: the last data axis).
    spatial_axes : the source layer's axes the labels span, in order.
    mask : boolean array over the image's spatial shape (the slice for a preview), or None.
    mask_layer : the mask layer, or None.
    slice : the previewed slice, or None for the whole image.
    """

    sources: tuple[Image, ...]
    image: object
    channel_axis: int | str | None
    layer_channel_axis: int | None
    spatial_axes: tuple[int, ...]
    mask: np.ndarray | None
    mask_layer: Layer | None
    slice: Slice | None
    levels: tuple = ()  # a multiscale layer's levels, finest first (laid out as ``image``)

    @property
    def stored(self) -> bool:
        """Whether the labels go through a store: lazy or multiscale data (see .segmentation)."""
        return is_lazy(self.image) or len(self.levels) > 1

    @property
    def name(self) -> str:
        return " + ".join(layer.name for layer in self.sources)

    @property
    def key(self) -> list[str]:
        """Identity of the input set: the layers' unique ids (renaming keeps it)."""
        return [str(layer.unique_id) for layer in self.sources]


def _channel_axis(layer: Image, data, channel_axis) -> int | None:
    if layer.rgb:
        return data.ndim - 1
    if channel_axis is None or (isinstance(channel_axis, str) and channel_axis == "auto"):
        return None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, Integral):
        raise ValueError(
            f"channel_axis={channel_axis!r} is not allowed: use 'auto', None or an axis of "
            f"layer {layer.name!r}"
        )
    if data.ndim < 2 or not -data.ndim <= channel_axis < data.ndim:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for layer {layer.name!r} of shape "
            f"{tuple(data.shape)}: use an axis from 0 to {data.ndim - 1} that leaves a "
            "spatial axis"
        )
    return int(channel_axis) % data.ndim


def read_inputs(
    viewer,
    layers: LayerRef | Sequence[LayerRef],
    *,
    mask: LayerRef | None = None,
    channel_axis="auto",
    preview_slice: bool = False,
) -> Inputs:
    """Read the chosen layers, mask and (for a preview) the current slice into arrays.

    ``channel_axis`` applies to a single non-RGB layer: "auto" or None (no channels) or the
    data axis holding channels.
    """
    sources = image_layers(viewer, layers)
    first = sources[0]
    levels: tuple = ()
    if len(sources) == 1:
        levels = layer_levels(first)
        image = levels[0]
        layer_axis = _channel_axis(first, image, channel_axis)
        core_axis = "rgb" if first.rgb else layer_axis  # RGBA: alpha kept, never clustered
        axis = layer_axis
        if axis is not None:  # every chunk must hold all channels
            levels = tuple(lv.rechunk({axis: -1}) if is_lazy(lv) else lv for lv in levels)
            image = levels[0]
    else:
        arrays = [layer_data(layer) for layer in sources]
        if any(is_lazy(a) for a in arrays):
            import dask.array as da

            image = da.stack(arrays, axis=-1).rechunk({-1: -1})  # channels in one chunk
        else:
            image = np.stack(arrays, axis=-1)
        layer_axis = None
        axis = core_axis = image.ndim - 1
    spatial_axes = tuple(a for a in range(first.ndim) if a != axis)
    spatial_shape = tuple(n for a, n in enumerate(image.shape) if a != axis)
    mask_layer = None if mask is None else find_layer(viewer, mask)
    mask_array = None
    if mask_layer is not None:
        mask_array = mask_from_layer(mask_layer, first, spatial_shape, spatial_axes)
    shown = current_slice(viewer, first, spatial_axes, spatial_shape) if preview_slice else None
    if shown is not None:
        full_index = list(shown.index)
        if axis is not None:
            full_index.insert(axis, slice(None))
        image = image[tuple(full_index)]
        mask_array = None if mask_array is None else mask_array[shown.index]
        if isinstance(core_axis, int):
            core_axis = core_axis - sum(isinstance(i, int) for i in full_index[:core_axis])
    return Inputs(
        sources=sources,
        image=image,
        channel_axis=core_axis,
        layer_channel_axis=layer_axis,
        spatial_axes=spatial_axes,
        mask=mask_array,
        mask_layer=mask_layer,
        slice=shown,
        levels=levels if shown is None and len(levels) > 1 else (),
    )
