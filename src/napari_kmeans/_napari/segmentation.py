"""Layers in, layers out: the napari side of a segmentation.

The widget and :func:`segment_layer` share these steps, so both give the same layers:

1. :func:`prepare` turns the chosen layers into one array (plus mask) and checks them;
2. :meth:`SegmentationJob.run` calls :func:`napari_kmeans.segment` (in a worker thread for
   the widget);
3. :func:`show` turns the result into a Labels layer and recoloured Image layer(s), replacing
   the data of the layers of an earlier run.

:func:`apply_model` takes the same steps with a saved or earlier model's ``predict`` in place
of ``segment``.

No input layer is modified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from napari.layers import Image, Labels, Layer, Shapes
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.transforms import Affine

from ..api import Segmentation, segment
from ..cross_check import CrossCheck, cross_check

METADATA_KEY = "napari_kmeans"
_TRANSPARENT = (0.0, 0.0, 0.0, 0.0)

LayerRef = str | Layer


class SegmentationCancelled(Exception):
    """Raised inside the iteration callback to stop a running segmentation."""


@dataclass(frozen=True, eq=False)
class SegmentationJob:
    """Everything :func:`napari_kmeans.segment` needs, taken from the layers.

    ``image`` is the layer's data (several single-channel layers stacked on a last channel
    axis); ``mask`` is a boolean array of the spatial shape or None.
    """

    name: str
    sources: tuple[Image, ...]
    image: np.ndarray
    channel_axis: str | int | None
    mask: np.ndarray | None
    options: dict
    cross_check: bool

    def run(
        self, callback: Callable[[int, float], object] | None = None
    ) -> tuple[Segmentation, CrossCheck | None]:
        seg = segment(
            self.image,
            channel_axis=self.channel_axis,
            mask=self.mask,
            callback=callback,
            **self.options,
        )
        if not self.cross_check:
            return seg, None
        seed = seg.params["seed"] if isinstance(seg.params["seed"], int) else 0
        return seg, cross_check(self.image, seg, seed=seed)


def _layer(viewer, ref: LayerRef) -> Layer:
    if isinstance(ref, Layer):
        return ref
    if ref not in viewer.layers:
        names = ", ".join(repr(layer.name) for layer in viewer.layers) or "none"
        raise ValueError(f"there is no layer named {ref!r} in the viewer (layers: {names})")
    return viewer.layers[ref]


def _is_lazy(data) -> bool:
    return hasattr(data, "__dask_graph__")


def _layer_data(layer: Layer):
    """The layer's array: NumPy, or a dask array kept lazy so the outputs stay lazy too."""
    # Multiscale layers are segmented at full resolution.
    data = layer.data[0] if layer.multiscale else layer.data
    return data if _is_lazy(data) else np.asarray(data)


def _image_layers(viewer, layers: LayerRef | Sequence[LayerRef]) -> tuple[Image, ...]:
    refs = [layers] if isinstance(layers, str | Layer) else list(layers)
    if not refs:
        raise ValueError("no image layer chosen: choose the image layer to segment")
    sources = tuple(_layer(viewer, ref) for ref in refs)
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


def _data_to_world(layer: Layer) -> np.ndarray:
    """Homogeneous matrix from the layer's data coordinates to world coordinates."""
    own = Affine(
        scale=layer.scale,
        translate=layer.translate,
        rotate=layer.rotate,
        shear=layer.shear,
        ndim=layer.ndim,
    )
    return layer.affine.affine_matrix @ own.affine_matrix


def _shapes_mask(shapes: Shapes, image: Image, spatial_shape: tuple[int, ...]) -> np.ndarray:
    if len(shapes.data) == 0:
        raise ValueError(f"mask layer {shapes.name!r} has no shapes: draw at least one")
    if shapes.ndim != len(spatial_shape):
        raise ValueError(
            f"mask layer {shapes.name!r} is {shapes.ndim}-D but image {image.name!r} is "
            f"{len(spatial_shape)}-D: draw the shapes in a {len(spatial_shape)}-D Shapes layer"
        )
    to_image = np.linalg.inv(_data_to_world(image)) @ _data_to_world(shapes)
    on_grid = [
        (np.c_[vertices, np.ones(len(vertices))] @ to_image.T)[:, :-1] for vertices in shapes.data
    ]
    rasteriser = Shapes(on_grid, shape_type=shapes.shape_type, ndim=shapes.ndim)
    return rasteriser.to_masks(spatial_shape).any(axis=0)


def mask_from_layer(layer: Layer, image: Image, spatial_shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask on the image's grid: Labels non-zero, or Shapes rasterised."""
    if isinstance(layer, Labels):
        data = _layer_data(layer)
        if data.shape != tuple(spatial_shape):
            raise ValueError(
                f"mask layer {layer.name!r} has shape {data.shape} but image {image.name!r} has "
                f"shape {tuple(spatial_shape)}: the mask must cover the image pixel for pixel"
            )
        return data != 0
    if isinstance(layer, Shapes):
        return _shapes_mask(layer, image, spatial_shape)
    raise ValueError(
        f"mask layer {layer.name!r} is a {type(layer).__name__} layer: use a Labels or Shapes layer"
    )


def current_slice_mask(viewer, image: Image, spatial_shape: tuple[int, ...]) -> np.ndarray | None:
    """The pixels of the slice the viewer shows now (None when every axis is displayed)."""
    offset = viewer.dims.ndim - image.ndim
    position = image.world_to_data(viewer.dims.point)
    fixed = [axis for axis in range(image.ndim) if axis + offset in viewer.dims.not_displayed]
    if not fixed:
        return None
    index: list[int | slice] = [slice(None)] * image.ndim
    for axis in fixed:
        step = int(np.round(position[axis]))
        if not 0 <= step < spatial_shape[axis]:
            raise ValueError(
                f"the current slice (axis {axis} at {step}) is outside image {image.name!r}: "
                "move the slider onto the image"
            )
        index[axis] = step
    mask = np.zeros(spatial_shape, dtype=bool)
    mask[tuple(index)] = True
    return mask


def prepare(
    viewer,
    layers: LayerRef | Sequence[LayerRef],
    *,
    mask: LayerRef | None = None,
    current_slice: bool = False,
    cross_check: bool = False,
    **options,
) -> SegmentationJob:
    """Read the layers into a :class:`SegmentationJob`; ``options`` go to ``segment``."""
    sources = _image_layers(viewer, layers)
    first = sources[0]
    if len(sources) == 1:
        image = _layer_data(first)
        channel_axis = "rgb" if first.rgb else None  # RGBA: alpha kept, never clustered
    else:
        arrays = [_layer_data(layer) for layer in sources]
        if any(_is_lazy(a) for a in arrays):
            import dask.array as da

            image = da.stack(arrays, axis=-1).rechunk({-1: -1})  # channels in one chunk
        else:
            image = np.stack(arrays, axis=-1)
        channel_axis = image.ndim - 1
    spatial_shape = image.shape if channel_axis is None else image.shape[:-1]
    mask_array = None
    if mask is not None:
        mask_array = mask_from_layer(_layer(viewer, mask), first, spatial_shape)
    if current_slice:
        in_slice = current_slice_mask(viewer, first, spatial_shape)
        if in_slice is not None:
            mask_array = in_slice if mask_array is None else mask_array & in_slice
    return SegmentationJob(
        name=" + ".join(layer.name for layer in sources),
        sources=sources,
        image=image,
        channel_axis=channel_axis,
        mask=mask_array,
        options=options,
        cross_check=cross_check,
    )


def _normalised(values: np.ndarray, layer: Image) -> np.ndarray:
    low, high = layer.contrast_limits
    scaled = (values - low) / ((high - low) or 1.0)
    return np.clip(scaled, 0.0, 1.0) ** layer.gamma


def display_colors(sources: Sequence[Image], palette: np.ndarray) -> np.ndarray:
    """RGBA (k, 4) in [0, 1]: each cluster's mean value as the input layer(s) display it.

    An RGB layer maps its values through its contrast limits; single-channel layers through
    their colormaps, added up as napari's additive blending shows several channels.
    """
    if sources[0].rgb:
        rgb = _normalised(palette[:, :3], sources[0])
    else:
        rgb = sum(
            layer.colormap.map(_normalised(palette[:, channel], layer))[:, :3]
            for channel, layer in enumerate(sources)
        )
    return np.c_[np.clip(rgb, 0.0, 1.0), np.ones(len(palette))]


def labels_colormap(colors: np.ndarray) -> DirectLabelColormap:
    color_dict = {None: _TRANSPARENT, 0: _TRANSPARENT}
    color_dict.update({label: tuple(rgba) for label, rgba in enumerate(colors, start=1)})
    return DirectLabelColormap(color_dict=color_dict)


def _placement(layer: Layer) -> dict:
    return {
        "scale": layer.scale,
        "translate": layer.translate,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine.affine_matrix,
    }


def _display(layer: Image) -> dict:
    settings = {"contrast_limits": layer.contrast_limits, "gamma": layer.gamma}
    if not layer.rgb:
        settings.update(colormap=layer.colormap, blending=layer.blending)
    return settings


def _upsert(viewer, name: str, layer_type: type[Layer], data: np.ndarray, settings: dict) -> Layer:
    """Replace the data of layer ``name`` if it can hold ``data``, else (re)create it."""
    index = len(viewer.layers)
    if name in viewer.layers:
        existing = viewer.layers[name]
        same_kind = isinstance(existing, layer_type) and not existing.multiscale
        if same_kind and existing.data.shape == data.shape and existing.data.dtype == data.dtype:
            existing.data = data
            for key, value in settings.items():
                setattr(existing, key, value)
            return existing
        index = viewer.layers.index(existing)
        viewer.layers.remove(existing)
    layer = layer_type(data, name=name, **settings)
    viewer.layers.insert(index, layer)
    return layer


def output_metadata(job: SegmentationJob, seg: Segmentation, check: CrossCheck | None) -> dict:
    summary = seg.to_dict()
    summary["source_layers"] = [layer.name for layer in job.sources]
    summary["cross_check"] = None if check is None else check.to_dict()
    return {METADATA_KEY: summary}


def show(
    viewer, job: SegmentationJob, seg: Segmentation, check: CrossCheck | None = None
) -> tuple[Labels, list[Image]]:
    """Add (or update) ``<input> k-means labels`` and the recoloured image layer(s)."""
    metadata = output_metadata(job, seg, check)
    first = job.sources[0]
    placement = _placement(first)
    if len(job.sources) == 1:
        recolored = [(first, seg.recolored)]
    else:
        recolored = [(layer, seg.recolored[..., c]) for c, layer in enumerate(job.sources)]
    images = [
        _upsert(
            viewer,
            f"{layer.name} k-means recolored",
            Image,
            data,
            {**_display(layer), **placement, "metadata": metadata},
        )
        for layer, data in recolored
    ]
    colormap = labels_colormap(display_colors(job.sources, seg.palette))
    labels = _upsert(
        viewer,
        f"{job.name} k-means labels",
        Labels,
        seg.labels,
        {"colormap": colormap, **placement, "metadata": metadata},
    )
    return labels, images


def mask_from_clusters(viewer, labels: Labels, clusters: Sequence[int]) -> Labels:
    """Add (or update) a Labels layer holding only the chosen clusters of ``labels``."""
    chosen = sorted({int(c) for c in clusters})
    if not chosen:
        raise ValueError("no cluster selected: select one or more rows of the cluster table")
    data = np.where(np.isin(labels.data, chosen), labels.data, 0).astype(labels.data.dtype)
    stem = labels.name.removesuffix(" labels")
    return _upsert(
        viewer,
        f"{stem} clusters {', '.join(map(str, chosen))}",
        Labels,
        data,
        {"colormap": labels.colormap, **_placement(labels), "metadata": dict(labels.metadata)},
    )


def segment_layer(
    viewer,
    layers: LayerRef | Sequence[LayerRef],
    n_clusters: int = 5,
    *,
    mask: LayerRef | None = None,
    current_slice: bool = False,
    cross_check: bool = False,
    **options,
) -> Segmentation:
    """Segment image layer(s) of a viewer as the "K-means segmentation" widget does.

    Parameters
    ----------
    viewer : napari.Viewer
    layers : an Image layer or its name, or several single-channel ones used as channels.
    n_clusters : number of clusters.
    mask : optional Labels (non-zero = included) or Shapes layer, or its name.
    current_slice : segment only the slice the viewer shows (n-D data).
    cross_check : also run ``cv2.kmeans`` and store the comparison in the layers' metadata.
    **options : ``method``, ``color_space``, ``spatial_weight``, ``seed``, ``n_init``,
        ``max_iter``, ``tol`` as in :func:`napari_kmeans.segment`.

    Returns
    -------
    Segmentation
        Also shown as layers ``<input> k-means labels`` and ``<input> k-means recolored``.

    Examples
    --------
    >>> import napari, napari_kmeans  # doctest: +SKIP
    >>> viewer = napari.Viewer()  # doctest: +SKIP
    >>> viewer.open_sample("napari-kmeans", "synthetic_cells_16bit")  # doctest: +SKIP
    >>> seg = napari_kmeans.segment_layer(viewer, "synthetic_cells_16bit", 4)  # doctest: +SKIP
    """
    job = prepare(
        viewer,
        layers,
        mask=mask,
        current_slice=current_slice,
        cross_check=cross_check,
        n_clusters=n_clusters,
        **options,
    )
    seg, check = job.run()
    show(viewer, job, seg, check)
    return seg


def apply_model(viewer, layers: LayerRef | Sequence[LayerRef], model) -> list[Segmentation]:
    """Label each image layer with ``model`` and show the layers a run on it would make.

    Every layer is labelled by the model's nearest cluster, so a label means the same colour
    in every layer. All layers are checked and labelled before any layer is added: on an
    error (a ValueError naming the layer) the viewer is unchanged.

    Parameters
    ----------
    viewer : napari.Viewer
    layers : an Image layer or its name, or several; each is labelled on its own.
    model : napari_kmeans.KMeansModel
        From ``seg.model`` of an earlier run or :func:`napari_kmeans.load_model`.

    Returns
    -------
    list of Segmentation
        One per layer, shown as ``<layer> k-means labels`` and ``<layer> k-means recolored``.

    Examples
    --------
    >>> model = napari_kmeans.load_model("stains.json")  # doctest: +SKIP
    >>> segs = apply_model(viewer, ["slide 1", "slide 2"], model)  # doctest: +SKIP
    """
    refs = [layers] if isinstance(layers, str | Layer) else list(layers)
    jobs = [prepare(viewer, ref) for ref in refs]
    results = []
    for job in jobs:
        try:
            results.append(model.predict(job.image, mask=job.mask))
        except ValueError as error:
            raise ValueError(f"layer {job.name!r}: {error}") from None
    for job, seg in zip(jobs, results, strict=True):
        show(viewer, job, seg)
    return results
