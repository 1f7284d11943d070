"""A model's labels computed once into a store, with the image's own statistics.

Lazy labels (:mod:`.labels`) re-run the model whenever they are read: fine for writing a
file once, wrong for a viewer that reads the same slice again and again. Here every chunk
of the image is labelled once and written into a store: a NumPy array in memory, or a Zarr
array on disk (``directory``) for results too large to hold. The same pass adds up each
label's pixel count and channel sums, so the table of a result is the labelled image's own
means, whatever image the model was fitted on.

A result can have several levels (a pyramid): a multiscale image is labelled at each of
its levels; a single large image gets coarser levels by taking every other pixel of the
stored labels in the last two axes (nearest neighbour, as labels must be).

Memory holds a few chunks per dask thread with their features (``n_threads x chunk
pixels x (channels + features) x 8`` bytes) and the ``(k, C)`` sums, never the image: the
peak grows with the chunk size and the number of threads, not with the image.

Examples
--------
>>> import dask.array as da
>>> import napari_kmeans as nk
>>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
>>> image = da.from_array(np.array([[1, 2, 250, 252]] * 2, np.uint8), chunks=(1, 2))
>>> stored = store_labels(model, [image])
>>> stored.levels[0].tolist(), stored.counts.tolist(), stored.means.ravel().tolist()
([[1, 1, 2, 2], [1, 1, 2, 2]], [4, 4], [1.5, 251.0])
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ..engine.distances import label_sums
from ..features import pixels as ft
from ..features.prepare import check_finite_pixels, count_non_finite
from ..outputs.recolor import _cast_like, recolor
from ..progress import LABELLING, ProgressCallback
from .labels import (
    ChunkLayout,
    block_grids,
    block_inputs,
    chunk_layout,
    compute,
    global_pixels,
)
from .labels import lazy_mask as chunked_mask
from .overlap import overlapped, with_overlap

__all__ = [
    "StoredLabels",
    "downsampled",
    "labels_bytes",
    "pyramid_shapes",
    "recolored_from_labels",
    "resample_nearest",
    "store_labels",
    "work_chunks",
]

IN_MEMORY_BYTES = 256 * 2**20  # labels up to this size stay in memory, larger go to Zarr
PYRAMID_SIDE = 2048  # a level whose last two axes exceed this gets a coarser one
CHUNK_PIXELS = 2**23  # spatial pixels per labelling task (bounds each task's memory)


@dataclasses.dataclass(frozen=True, eq=False)
class StoredLabels:
    """Labels of every level, with the finest level's statistics.

    Attributes
    ----------
    levels : list
        Labels, finest first: NumPy arrays, or dask arrays reading a Zarr store.
    counts : numpy.ndarray
        ``(k,)`` pixels per label at the finest level.
    sums : numpy.ndarray
        ``(k, C)`` sum of each label's channel values at the finest level.
    inertia : float
        Sum of the pixels' squared feature distances to their centre (finest level).
    directory : pathlib.Path or None
        The Zarr store on disk, or None in memory.
    """

    levels: list
    counts: np.ndarray
    sums: np.ndarray
    inertia: float
    directory: Path | None = None

    @property
    def means(self) -> np.ndarray:
        """``(k, C)`` mean channel values of each label (NaN for an empty label)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts[:, None]


def pyramid_shapes(shape: Sequence[int], side: int | None = None) -> list[tuple[int, ...]]:
    """Shapes of a pyramid: halve the last two axes until neither exceeds ``side``.

    ``side`` defaults to ``PYRAMID_SIDE``.

    Examples
    --------
    >>> pyramid_shapes((3, 5000, 3000))
    [(3, 5000, 3000), (3, 2500, 1500), (3, 1250, 750)]
    >>> pyramid_shapes((100, 100))
    [(100, 100)]
    """
    side = PYRAMID_SIDE if side is None else side
    shapes = [tuple(int(n) for n in shape)]
    while len(shape) >= 2 and max(shapes[-1][-2:]) > side:
        last = shapes[-1]
        shapes.append((*last[:-2], *(-(-n // 2) for n in last[-2:])))
    return shapes


def resample_nearest(array, shape: Sequence[int]):
    """Sample ``array`` at ``shape`` by nearest neighbour (a mask onto a pyramid level).

    Examples
    --------
    >>> resample_nearest(np.arange(4).reshape(2, 2), (4, 4))[0].tolist()
    [0, 0, 1, 1]
    """
    index = tuple(
        np.minimum(((np.arange(m) + 0.5) * n / m).astype(np.intp), n - 1)
        for n, m in zip(array.shape, shape, strict=True)
    )
    return array[np.ix_(*index)]


def downsampled(labels):
    """Every other pixel of the last two axes (the next pyramid level of labels).

    Examples
    --------
    >>> downsampled(np.arange(9).reshape(3, 3)).tolist()
    [[0, 2], [6, 8]]
    """
    return labels[..., ::2, ::2]


def work_chunks(image: da.Array, channel_axis) -> da.Array:
    """Rechunk a dask image for labelling: channels whole, about ``CHUNK_PIXELS`` per chunk.

    Chunks are equal along each axis (the last may be short), as Zarr stores them. Large
    chunks are split along their first axes; small ones are merged whole along them, so
    that integer pixels are counted into a direct table (linear time) rather than sorted.

    Examples
    --------
    >>> image = da.zeros((8, 100, 100, 3), np.uint8, chunks=(1, 50, 50, 3))
    >>> work_chunks(image, "rgb").chunks[:3]
    ((8,), (100,), (100,))
    """
    channels = ft.channel_layout(image.shape, channel_axis)
    if channels.axis is not None:
        image = image.rechunk({channels.axis: -1})  # every chunk holds all channels
    spatial = [a for a in range(image.ndim) if a != channels.axis]
    sizes = {a: max(image.chunks[a]) for a in spatial}
    pixels = 1
    for axis in reversed(spatial):  # too large: keep the last axes' chunks, split the first
        sizes[axis] = max(1, min(sizes[axis], CHUNK_PIXELS // pixels))
        pixels *= sizes[axis]
    for axis in spatial:  # too small: merge whole chunks along the first axes
        grown = min(image.shape[axis], sizes[axis] * max(1, CHUNK_PIXELS // pixels))
        pixels = pixels // sizes[axis] * grown
        sizes[axis] = grown
    regular = all(
        all(c == sizes[a] for c in image.chunks[a][:-1]) and image.chunks[a][-1] <= sizes[a]
        for a in spatial
    )
    return image if regular else image.rechunk(sizes)


class _Writes:
    """Count the chunk writes in progress, so that a failed pass can wait for them to end.

    dask returns as soon as a task fails (or ``progress`` raises) while other tasks still
    run: without this, they would write chunks after the partial store was removed.
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.active = 0
        self.stopped = False

    def __enter__(self) -> None:
        with self.changed:
            if self.stopped:
                raise RuntimeError("the labelling pass was stopped")
            self.active += 1

    def __exit__(self, *exc) -> None:
        with self.changed:
            self.active -= 1
            self.changed.notify_all()

    def stop(self) -> None:
        """Refuse new writes and wait for those in progress."""
        with self.changed:
            self.stopped = True
            self.changed.wait_for(lambda: self.active == 0)


def _label_block(block, mask_block, index, *, model, layout: ChunkLayout, chunked, target, writes):
    block_shape, values, feature_values, texture, included = block_inputs(
        block, mask_block, layout, chunked, index
    )
    k = model.n_clusters
    bad = count_non_finite(values)
    if bad:
        return np.zeros(k, np.int64), np.zeros((k, values.shape[1])), 0.0, bad
    offset = layout.offset(index)
    pixels = None
    if model.recipe.spatial_weight > 0:
        pixels = global_pixels(included, block_shape, offset, layout.spatial_shape)
    labels, counts, inertia = model.assign(
        feature_values, layout.spatial_shape, pixels, None, texture
    )
    sums = label_sums(values, labels.astype(np.intp) - 1, None, k)[0]
    if included is not None:
        flat = np.zeros(int(np.prod(block_shape)), dtype=labels.dtype)
        flat[included] = labels
        labels = flat
    location = tuple(slice(o, o + n) for o, n in zip(offset, block_shape, strict=True))
    with writes:
        target[location] = labels.reshape(block_shape)
    return counts, sums, inertia, 0


def _new_target(shape, chunks, dtype, path: Path | None):
    if path is None:
        return np.zeros(shape, dtype)
    import zarr

    return zarr.open_array(
        str(path), mode="w-", shape=shape, chunks=chunks, dtype=dtype, fill_value=0
    )


def _label_level(model, image, mask, channel_axis, path, progress, stage):
    """Label one image into a new store at ``path`` (None: memory); return it and its stats."""
    if not isinstance(image, da.Array):
        image = da.from_array(np.asarray(image), chunks="auto")
    model.check_fits(ft.channel_layout(image.shape, channel_axis), image.dtype)
    image = work_chunks(image, channel_axis)
    layout = chunk_layout(image, channel_axis)
    mask = chunked_mask(mask, layout)
    chunks = tuple(max(c) for c in layout.spatial_chunks)
    chunked = None
    if model.recipe.filters.active:  # smoothing, texture: chunks read with their overlap
        image, mask, chunked = with_overlap(image, mask, layout, model.recipe.filters)
        layout = chunked.layout
        image, mask = overlapped(chunked, image, mask)
    # a chunk merged for the overlap only absorbs the short last one: no Zarr chunk is shared
    target = _new_target(layout.spatial_shape, chunks, model.label_dtype, path)
    blocks, masks = block_grids(image, mask, layout)
    writes = _Writes()
    work = partial(
        _label_block, model=model, layout=layout, chunked=chunked, target=target, writes=writes
    )
    tasks = [
        dask.delayed(work)(blocks[index], masks[index], index) for index in np.ndindex(blocks.shape)
    ]
    try:
        stats = compute(tasks, progress, stage)
    except BaseException:
        writes.stop()
        raise
    check_finite_pixels(sum(s[3] for s in stats))
    counts = np.sum([s[0] for s in stats], axis=0).astype(np.int64)
    sums = np.sum([s[1] for s in stats], axis=0)
    inertia = float(sum(s[2] for s in stats))
    return target, counts, sums, inertia


def _read_back(target):
    return target if isinstance(target, np.ndarray) else da.from_zarr(target)


def _store_downsampled(labels, path: Path | None):
    if path is None:
        return np.ascontiguousarray(downsampled(labels))
    coarse = downsampled(labels)
    chunks = tuple(max(c) for c in coarse.chunks)
    target = _new_target(coarse.shape, chunks, coarse.dtype, path)
    da.store(coarse.rechunk(chunks), target, lock=False)
    return da.from_zarr(target)


def store_labels(
    model,
    images: Sequence,
    *,
    mask=None,
    channel_axis=None,
    directory=None,
    progress: ProgressCallback | None = None,
    pyramid: bool = False,
) -> StoredLabels:
    """Label an image (or each level of a multiscale image) once, into a store.

    Parameters
    ----------
    model : KMeansModel
        The model labelling the pixels.
    images : sequence of array
        The image's levels, finest first (one for a plain image): NumPy or dask arrays
        laid out as the model's images.
    mask : array, optional
        Spatial shape of the finest level; non-zero pixels are labelled, the others get
        0. Resampled (nearest) onto coarser levels.
    channel_axis : "auto", "rgb", None or int
        As in :func:`napari_kmeans.segment`; None: the model's own.
    directory : str or os.PathLike, optional
        A new Zarr group to create (levels ``"0"``, ``"1"``, …); None: labels kept in
        memory.
    progress : callable, optional
        ``progress(stage, done, total)``; raise in it to stop (the store is removed).
    pyramid : bool
        For a single image, add coarser levels (:func:`pyramid_shapes`).

    Returns
    -------
    StoredLabels
        The labels of every level and the finest level's counts, sums and inertia.

    Examples
    --------
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> levels = [np.array([[1, 2, 250, 252]] * 2, np.uint8), np.array([[1, 251]], np.uint8)]
    >>> [level.tolist() for level in store_labels(model, levels).levels]
    [[[1, 1, 2, 2], [1, 1, 2, 2]], [[1, 2]]]
    """
    if not images:
        raise ValueError("images is empty: give at least one level")
    axis = model.channel_axis if channel_axis is None else channel_axis
    root = None if directory is None else Path(directory)
    if root is not None:
        root.mkdir(parents=True)  # a new store, never one that exists
    try:
        levels = []
        first = None
        for i, image in enumerate(images):
            level_mask = mask
            if mask is not None and i > 0:
                spatial = ft.channel_layout(image.shape, axis).spatial_shape
                level_mask = resample_nearest(np.asarray(mask), spatial)
            stage = LABELLING if len(images) == 1 else f"{LABELLING} level {i}"
            path = None if root is None else root / str(i)
            target, counts, sums, inertia = _label_level(
                model, image, level_mask, axis, path, progress, stage
            )
            levels.append(_read_back(target))
            if first is None:
                first = (counts, sums, inertia)
        if pyramid and len(images) == 1:
            for i, _ in enumerate(pyramid_shapes(levels[0].shape)[1:], start=1):
                path = None if root is None else root / str(i)
                levels.append(_store_downsampled(levels[-1], path))
    except BaseException:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return StoredLabels(levels, *first, directory=root)


def labels_bytes(model, images: Sequence) -> int:
    """Bytes the finest level's labels take (to choose memory or disk).

    Examples
    --------
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> labels_bytes(model, [np.zeros((4, 5), np.uint8)])
    20
    """
    spatial = ft.channel_layout(images[0].shape, model.channel_axis).spatial_shape
    return int(np.prod(spatial)) * model.label_dtype.itemsize


def _lookup(labels_block, *, colours, axis):
    rows = colours[labels_block]  # channels last
    return rows[..., 0] if axis is None else np.moveaxis(rows, -1, axis)


def _block_recolored(block, labels_block, *, palette, channels: ft.ChannelLayout, masked):
    labels_block = (
        labels_block if channels.axis is None else np.take(labels_block, 0, channels.axis)
    )
    return recolor(block, channels.table(block), labels_block.ravel(), palette, masked)


def recolored_from_labels(labels, palette: np.ndarray, image, *, channel_axis, masked: bool):
    """Return the recoloured image of stored labels: each pixel's palette colour.

    Only the labels are read, unless the image has alpha or a mask excluded pixels (those
    keep their values): then the image is read too, never the model run again. NumPy
    labels give a NumPy array, dask labels a lazy one.

    Parameters
    ----------
    labels : numpy.ndarray or dask.array.Array
        Stored labels (0 where excluded) of ``image``.
    palette : numpy.ndarray
        ``(k, C)`` colour of each label.
    image : array
        The labelled image (its shape and dtype; its values for alpha and a mask).
    channel_axis : "auto", "rgb", None or int
        The image's channel axis, as for :func:`napari_kmeans.segment`.
    masked : bool
        Whether a mask excluded pixels.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Same shape and dtype as ``image``.

    Examples
    --------
    >>> image = np.array([[1, 250], [2, 3]], np.uint8)
    >>> recolored_from_labels(
    ...     np.array([[1, 2], [1, 0]], np.uint8), np.array([[2.0], [250.0]]), image,
    ...     channel_axis=None, masked=True,
    ... ).tolist()
    [[2, 250], [2, 3]]
    """
    channels = ft.channel_layout(image.shape, channel_axis)
    lazy = isinstance(labels, da.Array)
    if masked or channels.alpha:
        if not lazy:
            image = np.asarray(image)
            return recolor(image, channels.table(image), labels.ravel(), palette, masked)
        image = da.asarray(image)
        if channels.axis is not None:
            image = image.rechunk({channels.axis: -1})
            labels = da.expand_dims(labels, channels.axis)
        spatial = [c for a, c in enumerate(image.chunks) if a != channels.axis]
        labels = labels.rechunk(
            [(1,) if a == channels.axis else spatial.pop(0) for a in range(image.ndim)]
        )
        return da.map_blocks(
            partial(_block_recolored, palette=palette, channels=channels, masked=masked),
            image,
            labels,
            dtype=image.dtype,
            meta=np.empty((0,) * image.ndim, image.dtype),
        )
    colours = _cast_like(
        np.concatenate([np.zeros((1, channels.n_channels)), palette]), np.dtype(image.dtype)
    )
    if not lazy:
        return _lookup(labels, colours=colours, axis=channels.axis)
    if channels.axis is None:
        return labels.map_blocks(partial(_lookup, colours=colours, axis=None), dtype=colours.dtype)
    return labels.map_blocks(
        partial(_lookup, colours=colours, axis=channels.axis),
        new_axis=channels.axis,
        chunks=(
            *labels.chunks[: channels.axis],
            (channels.n_channels,),
            *labels.chunks[channels.axis :],
        ),
        dtype=colours.dtype,
    )
