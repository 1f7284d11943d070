"""Large image files as dask arrays, and labels written back to Zarr chunk by chunk.

:func:`open_lazy` reads TIFF (through tifffile's Zarr view) and Zarr without loading them;
:func:`write_labels_zarr` writes lazy labels one chunk per task, with a progress bar, on the
local scheduler or an active ``dask.distributed`` client.
"""

from __future__ import annotations

import errno
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import dask
import dask.array as da
import numpy as np
from dask.callbacks import Callback
from tqdm import tqdm

from ..features import pixels as ft
from ..io.images import ImageLoadError
from ..io.safe_files import check_regular_file, staged

__all__ = ["open_lazy", "write_labels_zarr"]

CHUNK_BYTES = 32 * 2**20  # chunks of lazily opened files: big enough to amortise, small to hold


def open_lazy(path, *, channel_axis=None) -> da.Array:
    """Open a TIFF (through ``tifffile``'s Zarr view) or a Zarr array as a dask array.

    Nothing is read but the metadata. Chunks are multiples of the file's own tiles or chunks
    of about ``CHUNK_BYTES``; the ``channel_axis`` (``"auto"``, None or an int, as for
    ``segment``) is kept in one chunk. A Zarr group is read at its array ``"0"`` (the full
    resolution of an OME-Zarr image) or its only array.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.tif``/``.tiff`` file, or a Zarr array or group.
    channel_axis : "auto", None or int
        The axis kept in one chunk, as for :func:`napari_kmeans.segment`.

    Returns
    -------
    dask.array.Array
        The image, lazy.

    Raises
    ------
    ImageLoadError
        Naming the path, when it is missing or not a TIFF/Zarr array.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = tempfile.mkdtemp() + "/stack.zarr"
    >>> zarr.open_array(path, mode="w", shape=(4, 6), chunks=(2, 3), dtype="u2")[:] = 7
    >>> int(open_lazy(path).sum().compute())
    168
    """
    import zarr

    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            stored = zarr.open(_tiff_store(path), mode="r")
        else:
            stored = zarr.open(str(path), mode="r")
        if isinstance(stored, zarr.Group):
            stored = _full_resolution(stored)
    except ImageLoadError:
        raise
    except Exception as error:  # tifffile, zarr and the file system each raise their own
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ImageLoadError(
            f"cannot load image '{path}': not a readable TIFF or Zarr array ({reason})"
        ) from error
    axis = ft.resolve_channel_axis(
        SimpleNamespace(ndim=stored.ndim, shape=stored.shape), channel_axis
    )
    wanted = tuple(-1 if i == axis else "auto" for i in range(stored.ndim))
    chunks = da.core.normalize_chunks(
        wanted, stored.shape, limit=CHUNK_BYTES, dtype=stored.dtype, previous_chunks=stored.chunks
    )
    return da.from_zarr(stored, chunks=chunks)


def _tiff_store(path: Path):
    """Open the Zarr store of a TIFF's only series.

    Pages of different shapes are refused, as :func:`~napari_kmeans.io.images.load_image` refuses
    them, instead of reading the first alone.
    """
    import tifffile

    check_regular_file(path)  # a FIFO would block, a device never end
    with tifffile.TiffFile(path) as tiff:
        if len(tiff.series) > 1:
            shapes = ", ".join(str(series.shape) for series in tiff.series)
            raise ImageLoadError(
                f"cannot load image '{path}': its TIFF pages differ in shape or dtype "
                f"({len(tiff.series)} series: {shapes}), so they cannot be read as one stack"
            )
    return tifffile.imread(path, aszarr=True, level=0)


def _full_resolution(group):
    arrays = dict(group.arrays())
    if "0" in arrays:
        return arrays["0"]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise ValueError(
        f"a Zarr group needs an array '0' or a single array, this one has {sorted(arrays)}"
    )


class _ChunkProgress(Callback):
    """Advance a tqdm bar whenever a task of the layer ``name`` finishes (local schedulers)."""

    def __init__(self, bar: tqdm, name: str):
        super().__init__()
        self._bar, self._name = bar, name

    def _posttask(self, key, result, dsk, state, worker_id):
        if isinstance(key, tuple) and key[0] == self._name:
            self._bar.update()


def _active_client():
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _write_block(block, *, target, block_info=None):
    target[tuple(slice(*loc) for loc in block_info[0]["array-location"])] = block
    return np.ones((1,) * block.ndim, dtype=bool)


def write_labels_zarr(
    labels: da.Array, path, *, progress: bool | None = True, overwrite: bool = False
) -> None:
    """Compute ``labels`` chunk by chunk into a new Zarr array at ``path``.

    Each chunk is written as soon as it is computed, so memory holds a few chunks, never the
    whole result; the Zarr chunks are the dask chunks. ``progress`` shows a tqdm bar of
    chunks on stderr (None: only when stderr is a terminal). Works on the local scheduler
    and under a ``dask.distributed`` Client (whose workers must see ``path``).

    The store is written under a temporary name beside ``path`` and renamed to ``path``
    when every chunk is written: an interrupted write never looks like a complete store
    (Ctrl-C or an error removes the temporary store). An existing ``path`` is replaced only
    with ``overwrite=True`` (else ``FileExistsError``, before any work).

    Parameters
    ----------
    labels : dask.array.Array
        The labels to compute and write (any array is wrapped).
    path : str or os.PathLike
        The Zarr store to create.
    progress : bool or None
        Show a progress bar of chunks; None: only when stderr is a terminal.
    overwrite : bool
        Whether an existing ``path`` may be replaced.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = tempfile.mkdtemp() + "/labels.zarr"
    >>> write_labels_zarr(da.ones((4, 6), np.uint8, chunks=3), path, progress=False)
    >>> int(zarr.open_array(path)[:].sum())
    24
    """
    import zarr

    labels = da.asarray(labels)
    regular = tuple(max(c) for c in labels.chunks)
    labels = labels.rechunk(regular)  # Zarr chunks are regular; one task writes one chunk
    if not overwrite and Path(path).exists():
        raise FileExistsError(errno.EEXIST, "File exists", str(path))
    with staged(path, overwrite=overwrite) as temporary:
        target = zarr.open_array(  # mode "w-": a new store, never one that exists
            str(temporary),
            mode="w-",
            shape=labels.shape,
            chunks=regular,
            dtype=labels.dtype,
            fill_value=0,
        )
        _compute_into(labels, target, progress)


def _compute_into(labels: da.Array, target, progress: bool | None) -> None:
    written = da.map_blocks(
        partial(_write_block, target=target),
        labels,
        dtype=bool,
        chunks=(1,) * labels.ndim,
        token="napari-kmeans-write",
    )
    tasks = list(written.to_delayed().ravel())
    with tqdm(
        total=len(tasks),
        desc="labels",
        unit="chunk",
        file=sys.stderr,
        disable=None if progress is None else not progress,
    ) as bar:
        client = _active_client()
        if client is not None:
            from distributed import as_completed

            for future in as_completed(client.compute(tasks)):
                future.result()
                bar.update()
        else:
            with _ChunkProgress(bar, written.name):
                dask.compute(*tasks)
