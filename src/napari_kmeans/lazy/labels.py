"""A fitted model applied to a dask array chunk by chunk: lazy labels, lazy recoloured image.

Used by :meth:`KMeansModel.predict <napari_kmeans.model.kmeans_model.KMeansModel.predict>` on a dask
array and by :func:`napari_kmeans.lazy.segment.segment_dask`. Nothing here imports the model module
(the model is passed in), so the model can hand dask arrays over without an import cycle.

Examples
--------
>>> import dask.array as da
>>> import napari_kmeans as nk
>>> model = nk.fit(np.array([[10, 12, 200, 210]], np.uint8), n_clusters=2, seed=0)
>>> seg = model.predict(da.from_array(np.array([[11, 205]] * 4, np.uint8), chunks=2))
>>> type(seg.labels).__name__, seg.labels.compute()[0].tolist(), seg.counts.compute().tolist()
('Array', [1, 2], [4, 4])
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from ..engine.distances import label_sums
from ..features import pixels as ft
from ..features.prepare import check_finite_pixels, check_image_type, count_non_finite
from ..outputs.cleanup import Cleanup, clean_labels, halo
from ..outputs.recolor import recolor
from ..outputs.segmentation import Segmentation
from ..progress import ProgressCallback, report
from .overlap import overlapped, with_overlap


@dataclasses.dataclass(frozen=True)
class ChunkLayout:
    """Where a dask image keeps its channels and how its spatial axes are chunked.

    Attributes
    ----------
    channels : ChannelLayout
        The image's channel layout.
    spatial_chunks : tuple of tuple of int
        The chunks of the spatial axes (dask's ``chunks`` without the channel axis).

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> layout.spatial_chunks, layout.axis, layout.spatial_shape
    (((1, 1), (1, 1)), None, (2, 2))
    """

    channels: ft.ChannelLayout
    spatial_chunks: tuple[tuple[int, ...], ...]

    @property
    def axis(self) -> int | None:
        """The channel axis (non-negative), or None."""
        return self.channels.axis

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the image without its channel axis."""
        return self.channels.spatial_shape

    def offset(self, block_id: tuple[int, ...]) -> tuple[int, ...]:
        """Return the spatial index of the first pixel of the chunk at ``block_id``.

        Parameters
        ----------
        block_id : tuple of int
            Index of the chunk on the spatial grid.

        Returns
        -------
        tuple of int
            Index of the chunk's first pixel in the image.

        Examples
        --------
        >>> import dask.array as da
        >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
        >>> layout = chunk_layout(img, "auto")
        >>> layout.offset((1, 1))
        (1, 1)
        """
        return tuple(sum(c[:i]) for c, i in zip(self.spatial_chunks, block_id, strict=True))

    def spatial(self, blocks: np.ndarray) -> np.ndarray:
        """Return the grid of a full-ndim array's chunks without the channel axis (one chunk).

        Parameters
        ----------
        blocks : numpy.ndarray
            Object array of the image's chunks (``image.to_delayed()``).

        Returns
        -------
        numpy.ndarray
            The same grid on the spatial axes only.

        Examples
        --------
        >>> import dask.array as da
        >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
        >>> layout = chunk_layout(img, "auto")
        >>> layout.spatial(img.to_delayed()).shape
        (2, 2)
        """
        return blocks if self.axis is None else np.take(blocks, 0, axis=self.axis)

    def block_shape(self, block: np.ndarray) -> tuple[int, ...]:
        """Return the spatial shape of one chunk of the image.

        Parameters
        ----------
        block : numpy.ndarray
            One chunk, channels included.

        Returns
        -------
        tuple of int
            Its shape without the channel axis.

        Examples
        --------
        >>> import dask.array as da
        >>> layout = chunk_layout(da.zeros((4, 6, 3), np.uint8, chunks=(2, 3, 3)), "auto")
        >>> layout.block_shape(np.zeros((2, 3, 3)))
        (2, 3)
        """
        shape = block.shape
        return shape if self.axis is None else shape[: self.axis] + shape[self.axis + 1 :]


def chunk_layout(image: da.Array, channel_axis) -> ChunkLayout:
    """Return the layout of a dask image; every chunk must hold all channels.

    Parameters
    ----------
    image : dask.array.Array
        The image.
    channel_axis : "auto", "rgb", None or int
        As in :func:`napari_kmeans.segment`.

    Returns
    -------
    ChunkLayout
        Channel layout and spatial chunks.

    Raises
    ------
    ValueError
        For an unsupported dtype, a bad channel axis or chunks that split the channels.

    Examples
    --------
    >>> import dask.array as da
    >>> chunk_layout(da.zeros((4, 6, 3), np.uint8, chunks=(2, 3, 1)), "auto")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: channel_axis='auto': the image is chunked along its channel axis 2 ...
    """
    check_image_type(image)
    channels = ft.channel_layout(image.shape, channel_axis)
    axis = channels.axis
    if axis is None:
        return ChunkLayout(channels, image.chunks)
    if len(image.chunks[axis]) > 1:
        raise ValueError(
            f"channel_axis={channel_axis!r}: the image is chunked along its channel axis "
            f"{axis} (chunks {image.chunks[axis]}); every chunk must hold all channels: "
            f"rechunk first, e.g. image.rechunk({{{axis}: -1}})"
        )
    return ChunkLayout(channels, image.chunks[:axis] + image.chunks[axis + 1 :])


def lazy_mask(mask, layout: ChunkLayout) -> da.Array | None:
    """Return the mask as a boolean dask array chunked like the image's spatial axes.

    Parameters
    ----------
    mask : array_like, dask.array.Array or None
        Spatial shape; non-zero pixels are included.
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).

    Returns
    -------
    dask.array.Array or None
        The boolean mask, None when ``mask`` is None.

    Raises
    ------
    ValueError
        When the mask's shape or dtype does not fit.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> lazy_mask([[1, 0], [0, 1]], layout).chunks
    ((1, 1), (1, 1))
    """
    if mask is None:
        return None
    if not isinstance(mask, da.Array):
        mask = np.asarray(mask)
    ft.check_mask(mask, layout.spatial_shape)
    if isinstance(mask, da.Array):
        return mask.rechunk(layout.spatial_chunks) != 0
    # chunk first: a broadcast mask (a 2-D mask over a stack) is never made whole
    return da.from_array(mask, chunks=layout.spatial_chunks) != 0


def _with_channel_axis(spatial: da.Array, layout: ChunkLayout) -> da.Array:
    """Add a length-1 channel axis, to broadcast against the image's chunks."""
    return spatial if layout.axis is None else da.expand_dims(spatial, layout.axis)


def block_grids(image: da.Array, mask: da.Array | None, layout: ChunkLayout):
    """Return the delayed chunks of the image and of the mask (None), on the spatial grid.

    Parameters
    ----------
    image : dask.array.Array
        The image.
    mask : dask.array.Array or None
        Its mask, from :func:`lazy_mask`.
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).

    Returns
    -------
    blocks : numpy.ndarray
        Object array of the image's delayed chunks.
    masks : numpy.ndarray
        Object array of the mask's delayed chunks, or of None.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> blocks, masks = block_grids(img, None, layout)
    >>> blocks.shape, masks[0, 0] is None
    ((2, 2), True)
    """
    blocks = layout.spatial(image.to_delayed())
    masks = np.full(blocks.shape, None, dtype=object) if mask is None else mask.to_delayed()
    return blocks, masks


# --------------------------------------------------------------------------- one chunk


def block_rows(block: np.ndarray, mask_block, layout: ChunkLayout):
    """Return the included pixels' channel values in a chunk and flat indices (None: all).

    Parameters
    ----------
    block : numpy.ndarray
        One chunk of the image.
    mask_block : numpy.ndarray or None
        The same chunk of the mask (spatial axes only).
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).

    Returns
    -------
    values : numpy.ndarray
        ``(m, C)`` channel values of the included pixels.
    included : numpy.ndarray or None
        Their flat indices in the chunk; None for all.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> values, included = block_rows(np.array([[3, 4]]), np.array([[0, 1]]), layout)
    >>> values.tolist(), included.tolist()
    ([[4]], [1])
    """
    values = layout.channels.table(block).values
    if mask_block is None:
        return values, None
    included = np.flatnonzero(mask_block)
    return values[included], included


def global_pixels(included, block_shape, offset, spatial_shape) -> np.ndarray:
    """Return the flat indices in the whole image of a chunk's pixels.

    Parameters
    ----------
    included : numpy.ndarray or None
        Local flat indices of the pixels in the chunk; None: all.
    block_shape : tuple of int
        Spatial shape of the chunk.
    offset : tuple of int
        Index of its first pixel in the image.
    spatial_shape : tuple of int
        Spatial shape of the image.

    Returns
    -------
    numpy.ndarray
        Flat indices in the image.

    Examples
    --------
    >>> global_pixels(None, (1, 2), (1, 2), (3, 4)).tolist()
    [6, 7]
    """
    local = np.arange(int(np.prod(block_shape))) if included is None else included
    coords = np.unravel_index(local, block_shape)
    shifted = tuple(c + o for c, o in zip(coords, offset, strict=True))
    return np.ravel_multi_index(shifted, spatial_shape)


def _squeeze(mask_block, layout: ChunkLayout):
    if mask_block is None or layout.axis is None:
        return mask_block
    return np.take(mask_block, 0, axis=layout.axis)


def block_inputs(block, mask_block, layout: ChunkLayout, chunked, index):
    """Return a chunk's spatial shape, its pixels' values, feature values, texture, indices.

    With ``chunked`` (:class:`~napari_kmeans.lazy.overlap.ChunkFilters`) the block is read
    with its overlap: it is filtered and its core kept; otherwise the feature values are the
    values.

    Parameters
    ----------
    block : numpy.ndarray
        The chunk (with its overlap when ``chunked`` is given).
    mask_block : numpy.ndarray or None
        The same pixels of the mask (spatial axes only).
    layout : ChunkLayout
        The image's layout.
    chunked : ChunkFilters or None
        The recipe's filters for overlapped chunks.
    index : tuple of int
        The chunk's index on the spatial grid.

    Returns
    -------
    block_shape : tuple of int
        Spatial shape of the chunk's own pixels.
    values : numpy.ndarray
        ``(m, C)`` original values of the included pixels.
    feature_values : numpy.ndarray
        ``(m, C)`` their filtered values (``values`` when nothing filters).
    texture : numpy.ndarray or None
        ``(m, t)`` raw texture columns, or None.
    included : numpy.ndarray or None
        Flat indices of the included pixels in the chunk; None for all.

    Examples
    --------
    >>> import dask.array as da
    >>> layout = chunk_layout(da.zeros((2, 2), np.uint8, chunks=1), "auto")
    >>> shape, values, feats, texture, included = block_inputs(
    ...     np.array([[3, 4]]), None, layout, None, (0, 0)
    ... )
    >>> shape, feats is values, texture, included
    ((1, 2), True, None, None)
    """
    if chunked is None:
        values, included = block_rows(block, mask_block, layout)
        return layout.block_shape(block), values, values, None, included
    core, core_mask, smoothed, texture = chunked.split(block, mask_block, index)
    values, included = block_rows(core, core_mask, layout)
    feature_values = values
    if smoothed is not block:
        feature_values = block_rows(smoothed, core_mask, layout)[0]
    if texture is not None and included is not None:
        texture = texture[included]
    return layout.block_shape(core), values, feature_values, texture, included


def _block_labels(
    block, mask_block=None, *, model, layout: ChunkLayout, chunked=None, block_id=None
):
    mask_block = _squeeze(mask_block, layout)
    index = block_id  # of the labels: spatial
    block_shape, _, values, texture, included = block_inputs(
        block, mask_block, layout, chunked, index
    )
    pixels = None
    if model.recipe.spatial_weight > 0:
        offset = layout.offset(index)
        pixels = global_pixels(included, block_shape, offset, layout.spatial_shape)
    labels = model.assign(values, layout.spatial_shape, pixels, None, texture)[0]
    if included is None:
        return labels.reshape(block_shape)
    flat = np.zeros(int(np.prod(block_shape)), dtype=model.label_dtype)
    flat[included] = labels
    return flat.reshape(block_shape)


def block_stats(block, mask_block, offset, *, model, layout: ChunkLayout, chunked=None, index=()):
    """Return a chunk's per-cluster pixel counts and value sums, inertia and non-finite pixels.

    Parameters
    ----------
    block : numpy.ndarray
        One chunk of the image.
    mask_block : numpy.ndarray or None
        The same chunk of the mask (spatial axes only).
    offset : tuple of int
        Index of the chunk's first pixel in the image.
    model : KMeansModel
        The model labelling the pixels.
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).
    chunked : ChunkFilters, optional
        The recipe's filters, the block then read with its overlap.
    index : tuple of int
        The chunk's index on the spatial grid (with ``chunked``).

    Returns
    -------
    counts : numpy.ndarray or None
        ``(k,)`` pixels per cluster; None when some pixel is not finite.
    sums : numpy.ndarray or None
        ``(k, C)`` sums of the channel values per cluster; None likewise.
    inertia : float
        Sum of the pixels' squared feature distances to their centre.
    n_bad : int
        Pixels with a NaN or infinite value (then nothing else is computed).

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> counts, sums, inertia, n_bad = block_stats(
    ...     np.array([[0, 250]], np.uint8), None, (0, 0), model=model, layout=layout
    ... )
    >>> counts.tolist(), sums.tolist(), inertia, n_bad
    ([1, 1], [[0.0], [250.0]], 2050.0, 0)
    """
    block_shape, values, feature_values, texture, included = block_inputs(
        block, mask_block, layout, chunked, index
    )
    k = model.n_clusters
    bad = count_non_finite(values)
    if bad:
        return None, None, 0.0, bad
    pixels = None
    if model.recipe.spatial_weight > 0:
        pixels = global_pixels(included, block_shape, offset, layout.spatial_shape)
    labels, counts, inertia = model.assign(
        feature_values, layout.spatial_shape, pixels, None, texture
    )
    labels = labels.astype(np.intp) - 1
    return counts, label_sums(values, labels, None, k)[0], inertia, 0


def image_statistics(image, mask, layout: ChunkLayout, model, chunked=None) -> list[Delayed]:
    """Return the delayed :func:`block_stats` of every chunk.

    Parameters
    ----------
    image : dask.array.Array
        The image.
    mask : dask.array.Array or None
        Its mask, from :func:`lazy_mask`.
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).
    model : KMeansModel
        The model labelling the pixels.
    chunked : ChunkFilters, optional
        The recipe's filters; ``image`` and ``mask`` are then the overlapped arrays.

    Returns
    -------
    list of dask.delayed.Delayed
        One per chunk.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> stats = image_statistics(img, None, layout, model)
    >>> sum(s.compute()[0] for s in stats).tolist()
    [2, 2]
    """
    blocks, masks = block_grids(image, mask, layout)
    stats = partial(block_stats, model=model, layout=layout, chunked=chunked)
    return [
        dask.delayed(stats)(blocks[index], masks[index], layout.offset(index), index=index)
        for index in np.ndindex(blocks.shape)
    ]


def compute(tasks: list, progress: ProgressCallback | None, stage: str) -> tuple:
    """Run ``dask.compute(*tasks)``, reporting finished tasks to ``progress``.

    Reports come from dask's local schedulers (a distributed ``Client`` runs without them);
    an exception raised in ``progress`` stops the computation.

    Parameters
    ----------
    tasks : list
        Dask collections or delayed objects.
    progress : callable or None
        ``progress(stage, done, total)``; raise in it to stop.
    stage : str
        The stage name to report.

    Returns
    -------
    tuple
        The computed results, one per task.

    Examples
    --------
    >>> import dask.array as da
    >>> seen = []
    >>> compute([da.ones(4, chunks=2).sum()], lambda *a: seen.append(a), "sum")
    (np.float64(4.0),)
    >>> seen[-1][0], seen[-1][1] == seen[-1][2]
    ('sum', True)
    """
    if progress is None:
        return dask.compute(*tasks)
    from dask.callbacks import Callback

    state = {"done": 0, "total": 0}

    def start(dsk) -> None:
        state["total"] = len(dsk)
        report(progress, stage, 0, state["total"])

    def posttask(*_args) -> None:
        state["done"] += 1
        report(progress, stage, state["done"], state["total"])

    with Callback(start=start, posttask=posttask):
        return dask.compute(*tasks)


def check_finite(stats) -> None:
    """Raise ValueError when some chunk's statistics found NaN or infinite pixels.

    Parameters
    ----------
    stats : sequence of tuple
        :func:`block_stats` of the chunks.

    Raises
    ------
    ValueError
        Counting the pixels that are not finite.

    Examples
    --------
    >>> check_finite([(None, None, 0.0, 2)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image contains NaN or infinite values in 2 pixel(s): ...
    """
    check_finite_pixels(sum(s[3] for s in stats))


def _total_counts(*stats) -> np.ndarray:
    check_finite(stats)
    return np.sum([s[0] for s in stats], axis=0).astype(np.int64)


def _total_inertia(*stats) -> np.ndarray:
    check_finite(stats)
    return np.array(float(sum(s[2] for s in stats)))


def _block_recolored(block, labels_block, *, palette, layout: ChunkLayout, masked: bool):
    table = layout.channels.table(block)
    return recolor(block, table, labels_block.ravel(), palette, masked)


# --------------------------------------------------------------------------- clean-up


def check_lazy_cleanup(cleanup: Cleanup) -> None:
    """Refuse what a dask array cannot be cleaned with: ``min_size`` (components span chunks).

    Parameters
    ----------
    cleanup : Cleanup
        The model's clean-up.

    Raises
    ------
    ValueError
        When ``min_size`` is set.

    Examples
    --------
    >>> check_lazy_cleanup(Cleanup(("majority", 1)))
    >>> check_lazy_cleanup(Cleanup(min_size=20))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: min_size=20 is not available for dask arrays: ...
    """
    if cleanup.min_size is not None:
        raise ValueError(
            f"min_size={cleanup.min_size!r} is not available for dask arrays: a connected "
            "component can span any number of chunks, so no chunk can tell its size. Segment "
            "a NumPy array (np.asarray(image)) or drop min_size (regularize works on dask)"
        )


def _block_values(block, grid: np.ndarray, offset, *, model, layout: ChunkLayout):
    """Return the included pixels' values of a chunk, their grid indices and features."""
    flat = grid.reshape(-1)
    values = layout.channels.table(block).values
    included = None if flat.all() else np.flatnonzero(flat)
    if included is not None:
        values = values[included]
    pixels = None
    if model.recipe.spatial_weight > 0:
        pixels = global_pixels(included, grid.shape, offset, layout.spatial_shape)
    data = model.pixel_features(values, layout.spatial_shape, pixels, included, flat.size)
    return values, included, data


def _block_cleaned(image_block, labels_block, *, model, layout, chunks, depth, block_id=None):
    # with boundary="none" a chunk is extended by ``depth`` except at the image's edges
    origin = tuple(
        sum(c[:i]) - (d if i > 0 else 0)
        for c, i, d in zip(chunks, block_id[: len(chunks)], depth, strict=True)
    )
    grid = labels_block[..., 0]
    block = (
        image_block[..., 0] if layout.axis is None else np.moveaxis(image_block, -1, layout.axis)
    )
    _, _, data = _block_values(block, grid, origin, model=model, layout=layout)
    cleaned = clean_labels(grid, model.cleanup, model.recipe.spacing, data, origin)
    return cleaned[..., None]


def cleaned_labels(model, image: da.Array, layout: ChunkLayout, labels: da.Array) -> da.Array:
    """Return the model's clean-up of lazy labels, chunk by chunk with enough overlap.

    Each chunk is extended by :func:`~napari_kmeans.outputs.cleanup.halo` pixels
    (``dask.array.map_overlap``, no padding at the image's edges), so the result equals
    the in-memory one; axes of one chunk get no overlap, thinner chunks are merged first.

    Parameters
    ----------
    model : KMeansModel
        The model (its ``cleanup`` has no ``min_size``).
    image : dask.array.Array
        The image.
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).
    labels : dask.array.Array
        Nearest-centre labels, chunked like the image's spatial axes.

    Returns
    -------
    dask.array.Array
        The cleaned labels, chunked like ``labels``.

    Examples
    --------
    >>> import dask.array as da
    >>> import napari_kmeans as nk
    >>> img = np.array([[0, 0, 0, 0], [0, 200, 0, 0], [0, 0, 0, 0]], np.uint8)
    >>> model = nk.fit(img, 2, seed=0, regularize="majority")
    >>> model.predict(da.from_array(img, chunks=2)).labels.compute().tolist()
    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    """
    check_lazy_cleanup(model.cleanup)
    reach = halo(model.cleanup.regularize, model.recipe.spacing)
    # an axis the halo spans whole is one chunk (no overlap); others get chunks >= the halo
    whole = [d >= sum(c) for d, c in zip(reach, layout.spatial_chunks, strict=True)]
    chunks = tuple(
        (sum(c),) if w else da.overlap.ensure_minimum_chunksize(d, c) if d else c
        for d, c, w in zip(reach, layout.spatial_chunks, whole, strict=True)
    )
    depth = tuple(0 if len(c) == 1 else d for d, c in zip(reach, chunks, strict=True))
    ndim = len(chunks)
    channels_last = image[..., None] if layout.axis is None else da.moveaxis(image, layout.axis, -1)
    channels_last = channels_last.rechunk((*chunks, -1))
    cleaned = da.map_overlap(
        partial(_block_cleaned, model=model, layout=layout, chunks=chunks, depth=depth),
        channels_last,
        labels[..., None].rechunk((*chunks, 1)),
        depth={**dict(enumerate(depth)), ndim: 0},
        boundary="none",
        dtype=labels.dtype,
        meta=np.empty((0,) * (ndim + 1), labels.dtype),
    )
    return cleaned[..., 0].rechunk(layout.spatial_chunks)


def _block_label_stats(block, labels_block, offset, *, model, layout: ChunkLayout):
    values, included, data = _block_values(block, labels_block, offset, model=model, layout=layout)
    bad = count_non_finite(values)
    if bad:
        return None, None, 0.0, bad
    flat = labels_block.reshape(-1)
    labels = flat if included is None else flat[included]
    counts, sums, inertia = model.statistics(values, labels, data, flat)
    return counts, sums, inertia, 0


def cleaned_statistics(model, image: da.Array, layout: ChunkLayout, labels: da.Array):
    """Compute pixels per label, palette and inertia of cleaned lazy labels (one pass).

    Parameters
    ----------
    model : KMeansModel
        The model.
    image : dask.array.Array
        The image.
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).
    labels : dask.array.Array
        The cleaned labels, chunked like the image's spatial axes.

    Returns
    -------
    counts : numpy.ndarray
        ``(k,)`` int64.
    palette : numpy.ndarray
        ``(k, C)`` mean value per label (the model's palette for an empty label).
    inertia : float
        Sum of squared feature distances to each pixel's label's centre.

    Examples
    --------
    >>> import dask.array as da
    >>> import napari_kmeans as nk
    >>> img = da.from_array(np.array([[0, 10, 200, 210]], np.uint8), chunks=2)
    >>> model = nk.fit(img, 2, seed=0)
    >>> layout = chunk_layout(img, "auto")
    >>> labels = da.from_array(np.array([[1, 1, 1, 2]], np.uint8), chunks=2)
    >>> counts, palette, inertia = cleaned_statistics(model, img, layout, labels)
    >>> counts.tolist(), palette.ravel().tolist(), inertia
    ([3, 1], [70.0, 210.0], 38100.0)
    """
    blocks = layout.spatial(image.to_delayed())
    label_blocks = labels.to_delayed()
    stats = partial(_block_label_stats, model=model, layout=layout)
    tasks = [
        dask.delayed(stats)(blocks[index], label_blocks[index], layout.offset(index))
        for index in np.ndindex(blocks.shape)
    ]
    results = dask.compute(*tasks)
    check_finite(results)
    counts = np.sum([r[0] for r in results], axis=0).astype(np.int64)
    sums = np.sum([r[1] for r in results], axis=0)
    inertia = float(sum(r[2] for r in results))
    return counts, model.means(counts, sums), inertia


# --------------------------------------------------------------------------- whole image


def lazy_segmentation(
    model,
    image: da.Array,
    layout: ChunkLayout,
    mask,
    counts,
    inertia,
    params: dict,
    started,
    chunked=None,
    chunks=None,
) -> Segmentation:
    """Build the :class:`Segmentation` of a dask image: lazy labels and recoloured image.

    Parameters
    ----------
    model : KMeansModel
        The model labelling the pixels.
    image : dask.array.Array
        The image.
    layout : ChunkLayout
        The image's layout (:func:`chunk_layout`).
    mask : dask.array.Array or None
        Its mask, from :func:`lazy_mask`.
    counts : numpy.ndarray or dask.array.Array
        ``(k,)`` pixels per cluster.
    inertia : float or dask.array.Array
        Sum of the pixels' squared feature distances to their centre.
    params : dict
        The parameters to record.
    started : float
        ``time.perf_counter()`` when the work began, for ``seconds``.
    chunked : ChunkFilters, optional
        The recipe's filters (``image`` and ``mask`` re-chunked for their reach).
    chunks : tuple, optional
        The chunks to give ``recolored`` (and ``labels`` on the spatial axes), when the
        image was re-chunked for the filters.

    Returns
    -------
    Segmentation
        Lazy ``labels`` and ``recolored``; the rest as given or from the model. With the
        model's clean-up, labels are cleaned with overlap between chunks and ``counts``,
        ``palette`` and ``inertia`` are computed at once over the cleaned labels.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> seg = lazy_segmentation(model, img, layout, None, model.counts, 0.0, {}, 0.0)
    >>> seg.recolored.compute().tolist()
    [[5, 5], [205, 205]]
    """
    source, source_mask = image, mask
    if chunked is not None:
        source, source_mask = overlapped(chunked, image, mask)
    mask_nd = None if source_mask is None else _with_channel_axis(source_mask, layout)
    labels = da.map_blocks(
        partial(_block_labels, model=model, layout=layout, chunked=chunked),
        source,
        *([] if mask_nd is None else [mask_nd]),
        drop_axis=[] if layout.axis is None else [layout.axis],
        chunks=layout.spatial_chunks,
        dtype=model.label_dtype,
        meta=np.empty((0,) * len(layout.spatial_shape), model.label_dtype),
        token="napari-kmeans-labels",
    )
    palette, fit_inertia = model.palette, inertia
    if model.cleanup.active:
        labels = cleaned_labels(model, image, layout, labels)
        counts, palette, inertia = cleaned_statistics(model, image, layout, labels)
    recolored = da.map_blocks(
        partial(_block_recolored, palette=palette, layout=layout, masked=mask is not None),
        image,
        _with_channel_axis(labels, layout),
        dtype=image.dtype,
        meta=np.empty((0,) * image.ndim, image.dtype),
        token="napari-kmeans-recolored",
    )
    if chunks is not None and chunks != image.chunks:
        recolored = recolored.rechunk(chunks)
        spatial = (
            chunks if layout.axis is None else chunks[: layout.axis] + chunks[layout.axis + 1 :]
        )
        labels = labels.rechunk(spatial)
    return Segmentation(
        labels=labels,
        palette=palette,
        recolored=recolored,
        centers=model.centers,
        counts=counts,
        inertia=inertia,
        n_iter=model.n_iter,
        params=params,
        seconds=time.perf_counter() - started,
        model=model,
        fit_inertia=fit_inertia,
    )


def lazy_predict(model, image: da.Array, mask) -> Segmentation:
    """Label a dask array with ``model``: labels, recoloured image, counts and inertia lazy.

    What :meth:`KMeansModel.predict <napari_kmeans.KMeansModel.predict>` does for a dask
    array.

    Parameters
    ----------
    model : KMeansModel
        The model labelling the pixels.
    image : dask.array.Array
        Laid out as the fitted images.
    mask : array_like, dask.array.Array or None
        Spatial shape; non-zero pixels are labelled, the others get label 0.

    Returns
    -------
    Segmentation
        ``labels``, ``recolored``, ``counts`` and ``inertia`` are dask arrays.

    Examples
    --------
    >>> import dask.array as da
    >>> img = da.from_array(np.array([[0, 10], [200, 210]], np.uint8), chunks=1)
    >>> layout = chunk_layout(img, "auto")
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> seg = lazy_predict(model, img, None)
    >>> seg.labels.compute().tolist(), seg.counts.compute().tolist()
    ([[1, 1], [2, 2]], [2, 2])
    """
    started = time.perf_counter()
    check_lazy_cleanup(model.cleanup)
    layout = chunk_layout(image, model.channel_axis)
    model.check_fits(layout.channels, image.dtype)
    mask = lazy_mask(mask, layout)
    chunks, chunked = image.chunks, None
    filters = model.recipe.filters
    if filters.active:
        image, mask, chunked = with_overlap(image, mask, layout, filters)
        layout = chunked.layout
        stats = image_statistics(*overlapped(chunked, image, mask), layout, model, chunked)
    else:
        stats = image_statistics(image, mask, layout, model)
    k = model.n_clusters
    counts = da.from_delayed(dask.delayed(_total_counts)(*stats), (k,), np.int64)
    inertia = da.from_delayed(dask.delayed(_total_inertia)(*stats), (), np.float64)
    params = model.params_for(image, masked=mask is not None)
    return lazy_segmentation(
        model, image, layout, mask, counts, inertia, params, started, chunked, chunks
    )
