"""dask arrays in, dask arrays out: :func:`segment` for stacks larger than memory.

Fitting reads every chunk and keeps only a reduction of it:

- integer images without spatial features: the exact histogram of pixel values, counted per
  chunk and merged, so the model (and every label) is the one ``segment`` finds in memory;
- otherwise: a reproducible random sample of ``sample_size`` pixels, clustered as usual. The
  counts, palette and inertia are then computed over every pixel in one more pass, eagerly,
  before :func:`segment_dask` returns.

Labels and the recoloured image are lazy dask arrays with the image's spatial chunks,
labelled chunk by chunk with the fitted model (``KMeansModel.label``). Every step is a plain
dask graph run by ``dask.compute``: the local threaded scheduler by default, a
``dask.distributed`` cluster when a ``Client`` is active.

Examples
--------
>>> import dask.array as da
>>> img = da.from_array(np.array([[10, 12, 200, 210]] * 4, np.uint8), chunks=2)
>>> seg = segment_dask(img, n_clusters=2, seed=0)
>>> seg.labels.compute()[0].tolist(), seg.counts.tolist()
([1, 1, 2, 2], [8, 8])
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from numbers import Integral

import dask
import dask.array as da
import numpy as np

from . import api
from . import features as ft
from . import model as model_
from .engine.histogram import histogram
from .engine.lloyd import IterationCallback
from .result import Segmentation, check_image_type, recolor

__all__ = ["segment_dask"]

DEFAULT_SAMPLE_SIZE = 1_000_000
_MERGE_FAN_IN = 8


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where the channels are and how the spatial axes are chunked."""

    axis: int | None  # channel axis of the image (non-negative)
    block_channel_axis: str | int | None  # what ``ft.pixel_table`` needs for one chunk
    n_channels: int  # colour channels, alpha excluded
    spatial_shape: tuple[int, ...]
    spatial_chunks: tuple[tuple[int, ...], ...]

    def offset(self, block_id: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sum(c[:i]) for c, i in zip(self.spatial_chunks, block_id, strict=True))

    def spatial(self, blocks: np.ndarray) -> np.ndarray:
        """The grid of a full-ndim array's chunks without the channel axis (one chunk)."""
        return blocks if self.axis is None else np.take(blocks, 0, axis=self.axis)


def _layout(image: da.Array, channel_axis) -> _Layout:
    axis = ft.resolve_channel_axis(image, channel_axis)
    if axis is None:
        return _Layout(None, None, 1, image.shape, image.chunks)
    if len(image.chunks[axis]) > 1:
        raise ValueError(
            f"channel_axis={channel_axis!r}: the image is chunked along its channel axis "
            f"{axis} (chunks {image.chunks[axis]}); every chunk must hold all channels: "
            f"rechunk first, e.g. image.rechunk({{{axis}: -1}})"
        )
    n_channels = image.shape[axis]
    rgba = isinstance(channel_axis, str) and n_channels == 4
    spatial_shape = image.shape[:axis] + image.shape[axis + 1 :]
    spatial_chunks = image.chunks[:axis] + image.chunks[axis + 1 :]
    # "auto" found a full last axis of 3 or 4 channels: a chunk resolves it the same way
    block_axis = "auto" if isinstance(channel_axis, str) else axis
    return _Layout(axis, block_axis, n_channels - rgba, spatial_shape, spatial_chunks)


def _check_sample_size(sample_size) -> int:
    if isinstance(sample_size, bool) or not isinstance(sample_size, Integral) or sample_size < 1:
        raise ValueError(f"sample_size={sample_size!r} is not allowed: it must be an integer >= 1")
    return int(sample_size)


def _lazy_mask(mask, layout: _Layout) -> da.Array | None:
    """The mask as a boolean dask array chunked like the image's spatial axes."""
    if mask is None:
        return None
    if not isinstance(mask, da.Array):
        mask = np.asarray(mask)
    if mask.shape != layout.spatial_shape:
        raise ValueError(
            f"mask has shape {mask.shape}: it must have the image's spatial shape "
            f"{layout.spatial_shape}"
        )
    if mask.dtype.kind not in "biuf":
        raise ValueError(f"mask has dtype {mask.dtype}: use booleans (True = included)")
    if isinstance(mask, da.Array):
        return mask.rechunk(layout.spatial_chunks) != 0
    # chunk first: a broadcast mask (a 2-D mask over a stack) is never made whole
    return da.from_array(mask, chunks=layout.spatial_chunks) != 0


def _with_channel_axis(spatial: da.Array, layout: _Layout) -> da.Array:
    """A spatial array with a length-1 channel axis, to broadcast against the image's chunks."""
    return spatial if layout.axis is None else da.expand_dims(spatial, layout.axis)


# --------------------------------------------------------------------------- one chunk


def _block_rows(block: np.ndarray, mask_block, layout: _Layout):
    """The included pixels' channel values in a chunk and their flat indices (None: all)."""
    values = ft.pixel_table(block, layout.block_channel_axis).values
    if mask_block is None:
        return values, None
    included = np.flatnonzero(mask_block)
    return values[included], included


def _global_pixels(included, block_shape, offset, spatial_shape) -> np.ndarray:
    """Flat indices in the whole image of a chunk's pixels (``included``: local flat indices)."""
    local = np.arange(int(np.prod(block_shape))) if included is None else included
    coords = np.unravel_index(local, block_shape)
    shifted = tuple(c + o for c, o in zip(coords, offset, strict=True))
    return np.ravel_multi_index(shifted, spatial_shape)


def _squeeze(mask_block, layout: _Layout):
    if mask_block is None or layout.axis is None:
        return mask_block
    return np.take(mask_block, 0, axis=layout.axis)


def _block_histogram(block, mask_block, layout: _Layout):
    values, _ = _block_rows(block, mask_block, layout)
    if len(values) == 0:
        return values, np.zeros(0, np.int64)
    counted = histogram(values)
    return counted.values, counted.counts


def _merge_histograms(parts):
    """One histogram of several: distinct rows of them all, their counts summed."""
    values = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    if len(values) == 0:
        return values, counts
    merged = histogram(values)
    index = merged.take(np.arange(len(merged.values), dtype=np.int32))
    # float64 sums of integer counts are exact below 2**53 pixels
    summed = np.bincount(index, weights=counts, minlength=len(merged.values))
    return merged.values, summed.astype(np.int64)


def _block_sample(block, mask_block, ranks, offset, layout: _Layout):
    """Values and global flat indices of the chunk's included pixels of the given ranks."""
    values, included = _block_rows(block, mask_block, layout)
    chosen = ranks if included is None else included[ranks]
    block_shape = _spatial_shape(block, layout)
    return values[ranks], _global_pixels(chosen, block_shape, offset, layout.spatial_shape)


def _spatial_shape(block: np.ndarray, layout: _Layout) -> tuple[int, ...]:
    shape = block.shape
    return shape if layout.axis is None else shape[: layout.axis] + shape[layout.axis + 1 :]


def _block_labels(block, mask_block=None, *, model, layout: _Layout, block_id=None):
    mask_block = _squeeze(mask_block, layout)
    block_shape = _spatial_shape(block, layout)
    values, included = _block_rows(block, mask_block, layout)
    pixels = None
    if model.recipe.spatial_weight > 0:
        offset = layout.offset(block_id)
        pixels = _global_pixels(included, block_shape, offset, layout.spatial_shape)
    labels = model.label(values, layout.spatial_shape, pixels)
    if included is None:
        return labels.reshape(block_shape)
    flat = np.zeros(int(np.prod(block_shape)), dtype=model.label_dtype)
    flat[included] = labels
    return flat.reshape(block_shape)


def _block_stats(block, mask_block, offset, *, model, layout: _Layout):
    """Per-cluster pixel counts and value sums, the inertia and the non-finite pixels."""
    block_shape = _spatial_shape(block, layout)
    values, included = _block_rows(block, mask_block, layout)
    k = model.n_clusters
    if values.dtype.kind == "f":
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            return None, None, 0.0, int((~finite).sum())
    pixels = None
    if model.recipe.spatial_weight > 0:
        pixels = _global_pixels(included, block_shape, offset, layout.spatial_shape)
    labels, counts, inertia = model.assign(values, layout.spatial_shape, pixels)
    labels = labels.astype(np.intp) - 1
    sums = np.stack(
        [np.bincount(labels, weights=values[:, j], minlength=k) for j in range(values.shape[1])],
        axis=1,
    )
    return counts, sums, inertia, 0


def _block_recolored(block, labels_block, *, palette, layout: _Layout, masked: bool):
    table = ft.pixel_table(block, layout.block_channel_axis)
    return recolor(block, table, labels_block.ravel(), palette, masked)


# --------------------------------------------------------------------------- fitting


def _block_grids(image: da.Array, mask: da.Array | None, layout: _Layout):
    """Delayed chunks of the image and of the mask (None), on the spatial grid."""
    blocks = layout.spatial(image.to_delayed())
    masks = np.full(blocks.shape, None, dtype=object) if mask is None else mask.to_delayed()
    return blocks, masks


def _tree_reduce(parts: list, combine):
    while len(parts) > 1:
        parts = [
            dask.delayed(combine)(parts[i : i + _MERGE_FAN_IN])
            for i in range(0, len(parts), _MERGE_FAN_IN)
        ]
    return parts[0]


def _no_pixel_left() -> ValueError:
    return ValueError("mask excludes every pixel: include at least n_clusters pixels")


def _pooled_histogram(image, mask, layout, spacing, color_space):
    """Distinct values of every included pixel with their counts, as ``model.pixel_rows``."""
    blocks, masks = _block_grids(image, mask, layout)
    parts = [
        dask.delayed(_block_histogram)(b, m, layout)
        for b, m in zip(blocks.ravel(), masks.ravel(), strict=True)
    ]
    ((distinct, counts),) = dask.compute(_tree_reduce(parts, _merge_histograms))
    if len(distinct) == 0:
        raise _no_pixel_left()
    rows, recipe = model_.pixel_rows([(distinct, (), None)], color_space, 0.0, spacing, counts)
    return rows, recipe, int(counts.sum())


def _sample_ranks(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` distinct sorted integers drawn uniformly from ``range(n)``, in O(size) memory."""
    if size >= n:
        return np.arange(n)
    if size > n // 2:  # draw the ones to leave out instead
        return np.setdiff1d(np.arange(n), _sample_ranks(rng, n, n - size))
    chosen = np.unique(rng.integers(0, n, size))
    while len(chosen) < size:
        chosen = np.union1d(chosen, rng.integers(0, n, size - len(chosen)))
    return chosen


def _sample(image, mask, layout, sample_size, rng):
    """A random sample of the included pixels: values and flat indices, in image order."""
    blocks, masks = _block_grids(image, mask, layout)
    grid = list(np.ndindex(blocks.shape))
    if mask is None:
        sizes = [
            int(np.prod([c[i] for c, i in zip(layout.spatial_chunks, index, strict=True)]))
            for index in grid
        ]
    else:
        sizes = dask.compute(*[dask.delayed(np.count_nonzero)(masks[i]) for i in grid])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    if starts[-1] == 0:
        raise _no_pixel_left()
    ranks = _sample_ranks(rng, int(starts[-1]), sample_size)
    block_of = np.searchsorted(starts, ranks, side="right") - 1
    cuts = np.searchsorted(block_of, np.arange(len(grid) + 1))
    parts = [
        dask.delayed(_block_sample)(
            blocks[index],
            masks[index],
            ranks[cuts[b] : cuts[b + 1]] - starts[b],
            layout.offset(index),
            layout,
        )
        for b, index in enumerate(grid)
        if cuts[b + 1] > cuts[b]
    ]
    sampled = dask.compute(*parts)
    values = np.concatenate([s[0] for s in sampled])
    pixels = np.concatenate([s[1] for s in sampled])
    order = np.argsort(pixels, kind="stable")
    return values[order], pixels[order]


def _all_pixel_statistics(image, mask, layout, model):
    """Counts, palette and inertia of ``model`` over every included pixel (one pass)."""
    blocks, masks = _block_grids(image, mask, layout)
    stats = dask.compute(
        *[
            dask.delayed(partial(_block_stats, model=model, layout=layout))(
                blocks[index], masks[index], layout.offset(index)
            )
            for index in np.ndindex(blocks.shape)
        ]
    )
    bad = sum(s[3] for s in stats)
    if bad:
        raise ValueError(
            f"image contains NaN or infinite values in {bad} pixel(s): every clustered pixel "
            "must be finite (exclude them with mask=)"
        )
    counts = np.sum([s[0] for s in stats], axis=0)
    sums = np.sum([s[1] for s in stats], axis=0)
    inertia = float(sum(s[2] for s in stats))
    filled = counts > 0
    palette = model.palette.copy()
    palette[filled] = sums[filled] / counts[filled, None]
    return dataclasses.replace(
        model, counts=counts.astype(np.int64), palette=palette, inertia=inertia
    )


# --------------------------------------------------------------------------- public


def segment_dask(
    image: da.Array,
    n_clusters: int = 5,
    *,
    method: str = "kmeans++",
    color_space: str = "rgb",
    channel_axis="auto",
    spatial_weight: float = 0.0,
    spacing=None,
    mask=None,
    seed=None,
    n_init="auto",
    max_iter: int = 300,
    tol: float = 1e-5,
    callback: IterationCallback | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> Segmentation:
    """Segment a dask array by k-means; ``labels`` and ``recolored`` stay lazy.

    Parameters
    ----------
    image : dask array, laid out as for :func:`napari_kmeans.segment`; it may be chunked along
        any spatial axis, not along the channel axis.
    n_clusters, method, color_space, channel_axis, spatial_weight, spacing, seed, n_init,
    max_iter, tol, callback : as for :func:`napari_kmeans.segment`.
    mask : NumPy or dask array of the spatial shape (rechunked like the image).
    sample_size : pixels to fit on when the exact histogram cannot be used (float images or
        ``spatial_weight > 0``); every pixel when there are no more than this.

    Returns
    -------
    Segmentation
        ``labels`` (spatial chunks of the image) and ``recolored`` (the image's chunks) are
        dask arrays; everything else is computed. ``counts``, ``palette`` and ``inertia`` are
        over every included pixel; with a sample the model is fitted on the sample and one
        more pass over the image computes them (the labels' order stays the fitted one).
        ``params`` adds ``sample_size`` and ``fitted_pixels`` (pixels the model saw).

    Notes
    -----
    Integer images without spatial features give exactly the in-memory result: the chunks'
    histograms merged are the image's histogram. A sample is drawn with ``seed`` from the
    included pixels counted chunk by chunk, so the same seed and chunks give the same sample.
    Memory holds a few chunks per worker thread, the model and the merged histogram (or
    the sample), never the whole image.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.linspace(0, 1, 32, dtype=np.float32).reshape(4, 8), chunks=4)
    >>> seg = segment_dask(img, n_clusters=2, seed=0)
    >>> seg.labels.chunks, seg.counts.tolist()
    (((4,), (4, 4)), [16, 16])
    """
    started = time.perf_counter()
    check_image_type(image)
    sample_size = _check_sample_size(sample_size)
    layout = _layout(image, channel_axis)
    o = api.check_options(
        n_clusters,
        method,
        color_space,
        spatial_weight,
        spacing,
        seed,
        n_init,
        max_iter,
        tol,
        n_channels=layout.n_channels,
        spatial_ndim=len(layout.spatial_shape),
    )
    lazy_mask = _lazy_mask(mask, layout)

    def fit(rows, recipe):
        return model_.fit_rows(
            rows, recipe, o.n_clusters, o.method, o.n_init, o.max_iter, o.tol, o.rng, callback
        )[0]

    if image.dtype.kind in "ui" and o.spatial_weight == 0:
        rows, recipe, fitted = _pooled_histogram(image, lazy_mask, layout, o.spacing, o.color_space)
        model = fit(rows, recipe)
    else:
        values, pixels = _sample(image, lazy_mask, layout, sample_size, o.rng)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(
                "image contains NaN or infinite values: every clustered pixel must be finite "
                "(exclude them with mask=)"
            )
        rows, recipe = model_.pixel_rows(
            [(values, layout.spatial_shape, pixels)], o.color_space, o.spatial_weight, o.spacing
        )
        model = fit(rows, recipe)
        fitted = len(values)
        model = _all_pixel_statistics(image, lazy_mask, layout, model)

    mask_nd = None if lazy_mask is None else _with_channel_axis(lazy_mask, layout)
    labels = da.map_blocks(
        partial(_block_labels, model=model, layout=layout),
        image,
        *([] if mask_nd is None else [mask_nd]),
        drop_axis=[] if layout.axis is None else [layout.axis],
        chunks=layout.spatial_chunks,
        dtype=model.label_dtype,
        meta=np.empty((0,) * len(layout.spatial_shape), model.label_dtype),
        token="napari-kmeans-labels",
    )
    recolored = da.map_blocks(
        partial(_block_recolored, palette=model.palette, layout=layout, masked=mask is not None),
        image,
        _with_channel_axis(labels, layout),
        dtype=image.dtype,
        meta=np.empty((0,) * image.ndim, image.dtype),
        token="napari-kmeans-recolored",
    )
    params = {
        **o.params(channel_axis, layout.n_channels, image.dtype, 1, fitted),
        "masked": mask is not None,
        "image_shape": list(image.shape),
        "image_dtype": str(image.dtype),
        "sample_size": sample_size,
    }
    model = dataclasses.replace(model, params=params)
    return Segmentation(
        labels=labels,
        palette=model.palette,
        recolored=recolored,
        centers=model.centers,
        counts=model.counts,
        inertia=model.inertia,
        n_iter=model.n_iter,
        params=params,
        seconds=time.perf_counter() - started,
        model=model,
    )
