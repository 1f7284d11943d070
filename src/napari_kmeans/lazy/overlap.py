"""The recipe's neighbourhood filters chunk by chunk: each chunk read with the overlap they reach.

Smoothing and texture look at neighbours, so a chunk alone would be filtered wrongly near its
edges. :func:`with_overlap` gives every chunk ``reach`` pixels of its neighbours
(``dask.array.overlap.overlap`` without padding at the image's own border, where the filter's
border rule applies as it does on the whole image); :meth:`ChunkFilters.split` filters such
a chunk and keeps its core. A pixel's filtered values depend only on pixels within the reach,
so chunked results equal the image filtered whole. Chunks smaller than the reach are merged
with a neighbour first.

Examples
--------
>>> import dask.array as da
>>> from napari_kmeans.features.filtering import Filters
>>> from napari_kmeans.features.smooth import Smoothing
>>> from napari_kmeans.lazy.labels import chunk_layout
>>> image = da.from_array(np.arange(40, dtype=np.uint8).reshape(4, 10), chunks=(4, 1))
>>> filters = Filters(Smoothing("gaussian", 0.5), None, (1.0, 1.0))  # reaches 2 pixels
>>> image, mask, chunked = with_overlap(image, None, chunk_layout(image, "auto"), filters)
>>> image.chunks
((4,), (2, 2, 2, 2, 2))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..features.filtering import Filters

# the layouts are ``lazy.labels.ChunkLayout`` (not imported: labels uses this module)
ChunkLayout = Any


def merged_chunks(chunks: tuple[int, ...], reach: int) -> tuple[int, ...]:
    """Merge neighbouring chunks until each holds at least ``reach`` pixels (when it can).

    Parameters
    ----------
    chunks : tuple of int
        Chunk sizes along one axis.
    reach : int
        The overlap each chunk must be able to lend.

    Returns
    -------
    tuple of int
        Chunk sizes, each >= ``reach`` unless the axis is shorter.

    Examples
    --------
    >>> merged_chunks((3, 3, 3, 1), 4)
    (6, 4)
    """
    merged: list[int] = []
    for size in chunks:
        if merged and merged[-1] < reach:
            merged[-1] += size
        else:
            merged.append(size)
    if len(merged) > 1 and merged[-1] < reach:
        last = merged.pop()
        merged[-1] += last
    return tuple(merged)


@dataclass(frozen=True)
class ChunkFilters:
    """The recipe's filters applied to chunks read with their overlap.

    Attributes
    ----------
    filters : Filters
        The filters.
    layout : ChunkLayout
        The (re-chunked) image's layout: the cores of the overlapped chunks.
    reach : tuple of int
        Overlap per spatial axis.

    Examples
    --------
    >>> from napari_kmeans.features.smooth import Smoothing
    >>> from napari_kmeans.lazy.labels import chunk_layout
    >>> import dask.array as da
    >>> image = da.zeros((6, 6), np.uint8, chunks=3)
    >>> filters = Filters(Smoothing("median", 1.0), None, (1.0, 1.0))
    >>> _, _, chunked = with_overlap(image, None, chunk_layout(image, "auto"), filters)
    >>> chunked.core((1, 0))
    (slice(1, 4, None), slice(0, 3, None))
    """

    filters: Filters
    layout: ChunkLayout
    reach: tuple[int, ...]

    def core(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """Return where the core of the chunk at spatial ``index`` sits in its overlapped block.

        Parameters
        ----------
        index : tuple of int
            The chunk's index on the spatial grid.

        Returns
        -------
        tuple of slice
            One slice per spatial axis.
        """
        cuts = []
        for chunks, i, reach in zip(self.layout.spatial_chunks, index, self.reach, strict=True):
            start = reach if i > 0 else 0
            cuts.append(slice(start, start + chunks[i]))
        return tuple(cuts)

    def split(self, block: np.ndarray, mask_block, index: tuple[int, ...]):
        """Filter an overlapped chunk; return its core, its mask, feature values and texture.

        Parameters
        ----------
        block : numpy.ndarray
            The chunk with its overlap (every channel).
        mask_block : numpy.ndarray or None
            The mask over the same pixels (spatial axes only).
        index : tuple of int
            The chunk's index on the spatial grid.

        Returns
        -------
        core : numpy.ndarray
            The chunk's own pixels, original values.
        core_mask : numpy.ndarray or None
            The mask of those pixels.
        values_core : numpy.ndarray
            The chunk's pixels after smoothing (``core`` itself without smoothing).
        texture : numpy.ndarray or None
            ``(n_core_pixels, t)`` raw texture columns in C order, or None.
        """
        channels = self.layout.channels
        smoothed, texture = self.filters.apply(block, channels, mask_block)
        spatial = self.core(index)
        full = list(spatial)
        if channels.axis is not None:
            full.insert(channels.axis, slice(None))
        full = tuple(full)
        core_mask = None if mask_block is None else mask_block[spatial]
        if texture is not None:
            overlapped_shape = self.layout.block_shape(block)
            texture = texture.reshape(*overlapped_shape, -1)[spatial]
            texture = texture.reshape(-1, texture.shape[-1])
        return block[full], core_mask, smoothed[full], texture


def with_overlap(image: da.Array, mask: da.Array | None, layout: ChunkLayout, filters: Filters):
    """Re-chunk an image (and mask) for the filters' reach and read chunks with overlap.

    Parameters
    ----------
    image : dask.array.Array
        The image.
    mask : dask.array.Array or None
        Its boolean mask (spatial chunks of the image), or None.
    layout : ChunkLayout
        The image's layout.
    filters : Filters
        The recipe's filters (active).

    Returns
    -------
    image : dask.array.Array
        The image, re-chunked so that every chunk can lend the overlap.
    mask : dask.array.Array or None
        The mask, chunked alike.
    chunked : ChunkFilters
        The filters, the layout of the re-chunked image and the reach (:func:`overlapped`
        gives the chunks with their overlap).
    """
    reach = filters.reach()
    spatial = tuple(merged_chunks(c, r) for c, r in zip(layout.spatial_chunks, reach, strict=True))
    chunks = list(spatial)
    if layout.axis is not None:
        chunks.insert(layout.axis, image.chunks[layout.axis])
    image = image.rechunk(tuple(chunks))
    layout = dataclasses.replace(layout, spatial_chunks=spatial)
    if mask is not None:  # a boolean mask with the image's spatial chunks
        mask = mask.rechunk(spatial)
    return image, mask, ChunkFilters(filters, layout, reach)


def overlapped(chunked: ChunkFilters, image: da.Array, mask: da.Array | None):
    """Return the image and mask with every chunk extended by the reach (no border padding).

    Parameters
    ----------
    chunked : ChunkFilters
        From :func:`with_overlap`.
    image : dask.array.Array
        The re-chunked image.
    mask : dask.array.Array or None
        The re-chunked mask.

    Returns
    -------
    tuple of dask.array.Array
        The overlapped image and mask (None stays None); same chunk grid.
    """
    depth = list(chunked.reach)
    if chunked.layout.axis is not None:
        depth.insert(chunked.layout.axis, 0)
    image = da.overlap.overlap(image, depth=dict(enumerate(depth)), boundary="none")
    if mask is not None:
        spatial = dict(enumerate(chunked.reach))
        mask = da.overlap.overlap(mask, depth=spatial, boundary="none")
    return image, mask
