"""dask arrays in, dask arrays out: :func:`segment` for stacks larger than memory.

Fitting reads every chunk and keeps only a reduction of it:

- integer images without spatial features: the exact histogram of pixel values, counted per
  chunk and merged, so the model (and every label) is the one ``segment`` finds in memory;
- otherwise: a reproducible random sample of ``sample_size`` pixels, clustered as usual. The
  counts, palette and inertia are then computed over every pixel in one more pass, eagerly,
  before ``segment`` returns.

Labels and the recoloured image are lazy dask arrays with the image's spatial chunks,
labelled chunk by chunk with the fitted model (``KMeansModel.label``). Every step is a plain
dask graph run by ``dask.compute``: the local threaded scheduler by default, a
``dask.distributed`` cluster when a ``Client`` is active.

Examples
--------
>>> import dask.array as da
>>> img = da.from_array(np.array([[10, 12, 200, 210]] * 4, np.uint8), chunks=2)
>>> import napari_kmeans as nk
>>> seg = nk.segment(img, n_clusters=2, seed=0)
>>> seg.labels.compute()[0].tolist(), seg.counts.tolist()
([1, 1, 2, 2], [8, 8])
"""

from __future__ import annotations

import dataclasses
import time

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from ..engine.histogram import histogram
from ..features.filtering import Filters
from ..features.prepare import check_finite_pixels, check_poolable, count_non_finite
from ..features.recipe import compressible
from ..features.smooth import resolve
from ..model import fitting
from ..model.kmeans_model import KMeansModel, dark_to_bright
from ..options import Options
from ..outputs.segmentation import Segmentation
from ..progress import LABELLING, READING
from .labels import (
    ChunkLayout,
    block_grids,
    block_inputs,
    check_finite,
    check_lazy_cleanup,
    chunk_layout,
    compute,
    global_pixels,
    image_statistics,
    lazy_mask,
    lazy_segmentation,
)
from .overlap import ChunkFilters, overlapped, with_overlap

__all__ = ["dask_segmentation", "fit_dask"]

_MERGE_FAN_IN = 8


def _block_histogram(block, mask_block, layout: ChunkLayout, chunked, index):
    """Distinct (filtered) values of a chunk's included pixels, with their counts."""
    values = block_inputs(block, mask_block, layout, chunked, index)[2]
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


def _block_sample(block, mask_block, ranks, offset, layout: ChunkLayout, chunked, index):
    """Return global flat indices, values, filtered values, texture of ranked pixels."""
    block_shape, values, feature_values, texture, included = block_inputs(
        block, mask_block, layout, chunked, index
    )
    chosen = ranks if included is None else included[ranks]
    pixels = global_pixels(chosen, block_shape, offset, layout.spatial_shape)
    texture = None if texture is None else texture[ranks]
    return pixels, values[ranks], feature_values[ranks], texture


# --------------------------------------------------------------------------- fitting


def _tree_reduce(parts: list, combine):
    while len(parts) > 1:
        parts = [
            dask.delayed(combine)(parts[i : i + _MERGE_FAN_IN])
            for i in range(0, len(parts), _MERGE_FAN_IN)
        ]
    return parts[0]


def _no_pixel_left() -> ValueError:
    return ValueError("mask excludes every pixel: include at least n_clusters pixels")


@dataclasses.dataclass(frozen=True)
class _Source:
    """One dask image to fit on: the array, its chunk layout and its lazy mask (or None).

    With the recipe's filters (``chunked``), the image and mask are re-chunked for their
    reach and :meth:`grid` gives the chunks with their overlap.
    """

    image: da.Array
    layout: ChunkLayout
    mask: da.Array | None
    chunked: ChunkFilters | None = None

    def grid(self):
        """Delayed chunks of the image and of the mask, with their spatial indices."""
        image, mask = self.image, self.mask
        if self.chunked is not None:
            image, mask = overlapped(self.chunked, image, mask)
        blocks, masks = block_grids(image, mask, self.layout)
        return [(blocks[i], masks[i], i) for i in np.ndindex(blocks.shape)]

    def filtered(self, filters: Filters) -> _Source:
        """Return this source re-chunked for ``filters`` (itself when nothing filters)."""
        if not filters.active:
            return self
        image, mask, chunked = with_overlap(self.image, self.mask, self.layout, filters)
        return _Source(image, chunked.layout, mask, chunked)


def _pooled_histogram(sources: list[_Source], options: Options):
    """Distinct values of every included pixel of every image with their counts."""
    parts = [
        dask.delayed(_block_histogram)(block, mask, source.layout, source.chunked, index)
        for source in sources
        for block, mask, index in source.grid()
    ]
    ((distinct, counts),) = compute(
        [_tree_reduce(parts, _merge_histograms)], options.progress, READING
    )
    if len(distinct) == 0:
        raise _no_pixel_left()
    rows, recipe = fitting.pixel_rows(
        [(distinct, (), None)],
        options.color_space,
        0.0,
        options.spacing,
        counts,
        standardize=options.standardize is True,  # decided by for_image
        smooth=sources[0].chunked.filters.smooth if sources[0].chunked else None,
    )
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


def _block_size(source: _Source, index) -> int | Delayed:
    if source.mask is None:
        chunks = source.layout.spatial_chunks
        return int(np.prod([c[i] for c, i in zip(chunks, index, strict=True)]))
    return dask.delayed(np.count_nonzero)(source.mask.blocks[index])


def _sample(sources: list[_Source], sample_size: int, rng, progress):
    """Draw a random sample of the included pixels of all images, drawn as one population.

    Returns one ``(feature values, spatial_shape, flat indices)`` part per image (pixels in
    image order), as ``fitting.pixel_rows`` takes them, the original values of all sampled
    pixels and the texture columns of each part (None without texture).
    """
    grid = [
        (s, block, mask, index)
        for s, source in enumerate(sources)
        for block, mask, index in source.grid()
    ]
    sizes = [_block_size(sources[s], index) for s, _, _, index in grid]
    lazy = [i for i, size in enumerate(sizes) if not isinstance(size, int)]
    if lazy:
        counted = compute([sizes[i] for i in lazy], progress, READING)
        for i, size in zip(lazy, counted, strict=True):
            sizes[i] = int(size)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    if starts[-1] == 0:
        raise _no_pixel_left()
    ranks = _sample_ranks(rng, int(starts[-1]), sample_size)
    block_of = np.searchsorted(starts, ranks, side="right") - 1
    cuts = np.searchsorted(block_of, np.arange(len(grid) + 1))
    chosen = [b for b in range(len(grid)) if cuts[b + 1] > cuts[b]]
    tasks = [
        dask.delayed(_block_sample)(
            grid[b][1],
            grid[b][2],
            ranks[cuts[b] : cuts[b + 1]] - starts[b],
            sources[grid[b][0]].layout.offset(grid[b][3]),
            sources[grid[b][0]].layout,
            sources[grid[b][0]].chunked,
            grid[b][3],
        )
        for b in chosen
    ]
    sampled = compute(tasks, progress, READING)
    parts, originals, textures = [], [], []
    for s, source in enumerate(sources):
        mine = [taken for b, taken in zip(chosen, sampled, strict=True) if grid[b][0] == s]
        if not mine:
            continue
        pixels = np.concatenate([t[0] for t in mine])
        order = np.argsort(pixels, kind="stable")
        values, features = (np.concatenate([t[i] for t in mine])[order] for i in (1, 2))
        parts.append((features, source.layout.spatial_shape, pixels[order]))
        originals.append(values)
        if mine[0][3] is not None:
            textures.append(np.concatenate([t[3] for t in mine])[order])
    return parts, np.concatenate(originals), textures or None


def _all_pixel_statistics(sources: list[_Source], model: KMeansModel, progress) -> KMeansModel:
    """Compute counts, palette and inertia of ``model`` over every included pixel (one pass)."""
    tasks = []
    for s in sources:
        image, mask = (
            (s.image, s.mask) if s.chunked is None else overlapped(s.chunked, s.image, s.mask)
        )
        tasks += image_statistics(image, mask, s.layout, model, s.chunked)
    stats = compute(tasks, progress, LABELLING)
    check_finite(stats)
    counts = np.sum([s[0] for s in stats], axis=0)
    sums = np.sum([s[1] for s in stats], axis=0)
    inertia = float(sum(s[2] for s in stats))
    filled = counts > 0
    palette = model.palette.copy()
    palette[filled] = sums[filled] / counts[filled, None]
    return dataclasses.replace(
        model, counts=counts.astype(np.int64), palette=palette, inertia=inertia
    )


def _sources(images: list[da.Array], masks: list, options: Options) -> list[_Source]:
    """Check the images (same dtype and channels) and lay out each with its mask."""
    layouts = [chunk_layout(image, options.channel_axis) for image in images]
    check_poolable(
        [
            (image.dtype, layout.channels.n_channels)
            for image, layout in zip(images, layouts, strict=True)
        ]
    )
    return [
        _Source(image, layout, lazy_mask(mask, layout))
        for image, layout, mask in zip(images, layouts, masks, strict=True)
    ]


def _fit(images: list[da.Array], options: Options, masks: list):
    """Fit dask images (statistics over every pixel); also return their sources."""
    sample_size = options.sample_size
    sources = _sources(images, masks, options)
    o = options.for_image(sources[0].layout.channels)
    dtype = images[0].dtype
    n_channels = sources[0].layout.channels.n_channels
    # "auto" reads the first image's noise (the same lines as in memory)
    smoothing = resolve(o.smooth, images[0], sources[0].layout.axis, o.spacing)
    filters = Filters(smoothing, o.texture, o.spacing)
    sources = [source.filtered(filters) for source in sources]
    if compressible(dtype, o.color_space, o.spatial_weight, o.texture):
        rows, recipe, fitted = _pooled_histogram(sources, o)
        model = fitting.fit_rows(rows, recipe, o, n_channels, dtype)[0]
        if smoothing is not None:  # the palette is of the original pixels
            model = _ranked(_all_pixel_statistics(sources, model, o.progress))
    else:
        parts, originals, textures = _sample(sources, sample_size, o.rng, o.progress)
        check_finite_pixels(count_non_finite(originals))
        rows, recipe = fitting.pixel_rows(
            parts,
            o.color_space,
            o.spatial_weight,
            o.spacing,
            standardize=o.standardize is True,  # decided by for_image
            smooth=smoothing,
            texture=o.texture,
            textures=textures,
            originals=originals if smoothing is not None else None,
        )
        model = fitting.fit_rows(rows, recipe, o, n_channels, dtype)[0]
        fitted = len(rows.values)
        model = _all_pixel_statistics(sources, model, o.progress)
        if filters.active:
            model = _ranked(model)
    params = {
        **o.params(sources[0].layout.channels, dtype, len(images), fitted),
        "masked": any(s.mask is not None for s in sources),
        **({"image_shape": list(images[0].shape)} if len(images) == 1 else {}),
        "image_dtype": str(dtype),
        "sample_size": sample_size,
        "smoothing": None if smoothing is None else smoothing.to_dict(),
    }
    return dataclasses.replace(model, params=params, cleanup=o.cleanup), sources


def _ranked(model: KMeansModel) -> KMeansModel:
    """Order the model's clusters darkest first by their palette over every pixel."""
    order = np.argsort(dark_to_bright(model.palette, model.counts, model.centers))
    return dataclasses.replace(
        model,
        centers=model.centers[order],
        palette=model.palette[order],
        counts=model.counts[order],
    )


def fit_dask(images: list[da.Array], options: Options, masks: list) -> KMeansModel:
    """Fit the model ``segment`` fits on a dask array, on the pooled pixels of ``images``.

    Integer images without spatial features are pooled exactly through their histograms;
    otherwise one sample of ``sample_size`` pixels is drawn from all of them.

    Parameters
    ----------
    images : list of dask.array.Array
        Images of the same dtype and number of channels.
    options : Options
        The checked options.
    masks : list
        One mask (NumPy or dask array, or None) per image.

    Returns
    -------
    KMeansModel
        The fitted model, its ``params`` recording the fit.

    Examples
    --------
    >>> import dask.array as da
    >>> from napari_kmeans.options import make_options
    >>> img = da.from_array(np.array([[0, 10, 200, 210]], np.uint8), chunks=2)
    >>> fit_dask([img], make_options(2, seed=0), [None]).palette.ravel().tolist()
    [5.0, 205.0]
    """
    return _fit(images, options, masks)[0]


def dask_segmentation(image: da.Array, options: Options, mask) -> Segmentation:
    """Segment a dask array with checked ``options`` (what ``segment`` does for one).

    Parameters
    ----------
    image : dask.array.Array
        The image.
    options : Options
        The checked options.
    mask : numpy.ndarray, dask.array.Array or None
        Spatial shape; non-zero pixels are clustered.

    Returns
    -------
    Segmentation
        ``labels`` (spatial chunks of the image) and ``recolored`` (the image's chunks) are
        dask arrays; ``counts``, ``palette`` and ``inertia`` are over every included pixel
        (with a sample, one more pass computes them; the labels' order stays the fitted
        one); ``params`` adds ``sample_size`` and ``fitted_pixels``.

    Examples
    --------
    >>> import dask.array as da
    >>> from napari_kmeans.options import make_options
    >>> img = da.from_array(np.array([[0, 10, 200, 210]], np.uint8), chunks=2)
    >>> seg = dask_segmentation(img, make_options(2, seed=0), None)
    >>> seg.labels.compute().tolist()
    [[1, 1, 2, 2]]
    """
    started = time.perf_counter()
    check_lazy_cleanup(options.cleanup)
    model, (source,) = _fit([image], options, [mask])
    return lazy_segmentation(
        model,
        source.image,
        source.layout,
        source.mask,
        model.counts,
        model.inertia,
        model.params,
        started,
        source.chunked,
        image.chunks,
    )


# --------------------------------------------------------------------------- public
