"""Large image files as dask arrays, and labels written back to Zarr chunk by chunk.

:func:`open_lazy` reads TIFF (through tifffile's Zarr view) and Zarr without loading them;
:func:`write_labels_zarr` writes lazy labels one chunk per task, with a progress bar, on the
local scheduler or an active ``dask.distributed`` client.
"""

from __future__ import annotations

import errno
import math
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
from ..io.axes import AxesImage, channel_axis_for, tiff_series_axes, zarr_axes
from ..io.images import ImageLoadError, check_budget
from ..io.output_guard import LABELS_STORE_ATTRIBUTE
from ..io.safe_files import check_regular_file, staged

__all__ = ["open_lazy", "open_lazy_image", "write_labels_zarr", "write_ome_zarr_labels"]

CHUNK_BYTES = 32 * 2**20  # chunks of lazily opened files: big enough to amortise, small to hold


def open_lazy(path, *, channel_axis="auto", max_pixels: int | None = None) -> da.Array:
    """Open a TIFF (through ``tifffile``'s Zarr view) or a Zarr array as a dask array.

    The array of :func:`open_lazy_image`, shaped by the file's axes (samples last).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.tif``/``.tiff`` file, or a Zarr array or group.
    channel_axis : "auto", "rgb", None or int
        The axis kept in one chunk, as for :func:`napari_kmeans.segment`, checked against
        the file's axes.
    max_pixels : int or None
        The pixel budget of :func:`napari_kmeans.load_image` (every axis but the channel
        axis counts), checked from the shape before anything is read.

    Returns
    -------
    dask.array.Array
        The image, lazy.

    Raises
    ------
    ImageLoadError
        Naming the path, when it is missing, not a TIFF/Zarr array, or larger than the
        pixel budget.
    ValueError
        When ``max_pixels`` (or the environment variable) is not an integer >= 1.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = tempfile.mkdtemp() + "/stack.zarr"
    >>> zarr.open_array(path, mode="w", shape=(4, 6), chunks=(2, 3), dtype="u2")[:] = 7
    >>> int(open_lazy(path).sum().compute())
    168
    """
    return open_lazy_image(path, channel_axis=channel_axis, max_pixels=max_pixels).data


def open_lazy_image(path, *, channel_axis="auto", max_pixels: int | None = None) -> AxesImage:
    """Open a TIFF or a Zarr array / OME-Zarr image lazily, with its axes and pixel sizes.

    Nothing is read but the metadata. The axes are those :func:`napari_kmeans.read_image`
    gives for the same file (TIFF series through tifffile, colour samples moved last;
    OME-Zarr ``multiscales`` at level 0). Chunks are multiples of the file's own tiles or
    chunks of about ``CHUNK_BYTES``, the channel axis whole.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.tif``/``.tiff`` file, or a Zarr array or group.
    channel_axis : "auto", "rgb", None or int
        Checked against the file's axes (:func:`napari_kmeans.io.axes.channel_axis_for`);
        only decides which axis stays in one chunk.
    max_pixels : int or None
        As for :func:`open_lazy`.

    Returns
    -------
    AxesImage
        With a dask array as ``data``.

    Raises
    ------
    ImageLoadError
        Naming the path, when it is missing or not a TIFF/Zarr image.
    ValueError
        When ``channel_axis`` contradicts the file's axes.

    Examples
    --------
    >>> import tempfile, tifffile
    >>> path = tempfile.mkdtemp() + "/zcyx.tif"
    >>> tifffile.imwrite(path, np.zeros((3, 2, 8, 8), np.uint8), imagej=True,
    ...                  metadata={"axes": "ZCYX"})
    >>> image = open_lazy_image(path)
    >>> image.axes, image.data.shape
    ('ZCYX', (3, 2, 8, 8))
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            stored, axes, scale, units, view = _tiff_store(path)
        else:
            stored, axes, scale, units = zarr_axes(path)
            view = None
    except ImageLoadError:
        raise
    except Exception as error:  # tifffile, zarr and the file system each raise their own
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ImageLoadError(
            f"cannot load image '{path}': not a readable TIFF or Zarr array ({reason})"
        ) from error
    shape = tuple(stored.shape) if view is None else view[1]
    described = AxesImage(SimpleNamespace(shape=shape), axes, scale, units)
    wanted_axis = channel_axis_for(described, channel_axis)
    axis = ft.resolve_channel_axis(SimpleNamespace(ndim=len(shape), shape=shape), wanted_axis)
    spatial = [side for index, side in enumerate(shape) if index != axis]
    check_budget(path, math.prod(spatial), max_pixels, "its shape")
    data = da.from_zarr(stored)
    if view is not None:  # the TIFF series in the axes' order, samples last
        order, shape = view
        data = data.transpose(order).reshape(shape)
    wanted = tuple(-1 if i == axis else "auto" for i in range(data.ndim))
    chunks = da.core.normalize_chunks(
        wanted, data.shape, limit=CHUNK_BYTES, dtype=data.dtype, previous_chunks=data.chunksize
    )
    return AxesImage(data.rechunk(chunks), axes, scale, units)


def _tiff_store(path: Path):
    """Open the Zarr store of a TIFF's only series, with its axes.

    Pages of different shapes are refused, as :func:`~napari_kmeans.io.images.load_image` refuses
    them, instead of reading the first alone.
    """
    try:
        import tifffile
    except ImportError:
        raise ImageLoadError(
            f"cannot load image '{path}': reading a TIFF lazily needs tifffile: "
            'pip install "napari-kmeans[all]"'
        ) from None
    import zarr

    check_regular_file(path)  # a FIFO would block, a device never end
    with tifffile.TiffFile(path) as tiff:
        if len(tiff.series) > 1:
            shapes = ", ".join(str(series.shape) for series in tiff.series)
            raise ImageLoadError(
                f"cannot load image '{path}': its TIFF pages differ in shape or dtype "
                f"({len(tiff.series)} series: {shapes}), so they cannot be read as one stack"
            )
        axes, shape, scale, units, order = tiff_series_axes(tiff)
    store = zarr.open(tifffile.imread(path, aszarr=True, level=0), mode="r")
    return store, axes, scale, units, (order, shape)


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
        target.attrs.update(LABELS_STORE_ATTRIBUTE)  # --overwrite replaces only such stores
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


#: Levels are added, each half the previous in Y and X, until both are below this.
PYRAMID_BELOW = 1024
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
# units OME-NGFF accepts (UDUNITS-2 names) among those the readers give
_NGFF_UNITS = (
    "micrometer",
    "nanometer",
    "millimeter",
    "centimeter",
    "meter",
    "second",
    "millisecond",
    "minute",
)


def ngff_multiscales(axes: str, scale, units, levels: int, name: str = "labels") -> dict:
    """Return OME-NGFF 0.4 ``multiscales`` metadata for levels that halve Y and X.

    Level ``n`` has ``2**n`` times the level-0 pixel size along Y and X (a pixel of level
    ``n`` covers ``2**n`` pixels of level 0 along each, as ome-zarr-py writes them).

    Parameters
    ----------
    axes : str
        One letter per axis (``T``, ``C``, ``Z``, ``Y``, ``X``; others are custom axes).
    scale : sequence of float
        Level-0 pixel size per axis.
    units : sequence of str or None
        Unit per axis; kept when OME-NGFF knows it.
    levels : int
        How many levels, level 0 included.
    name : str
        The image's name.

    Returns
    -------
    dict
        ``{"multiscales": [...]}``, the group attributes of an OME-Zarr image.

    Examples
    --------
    >>> meta = ngff_multiscales("YX", (0.5, 0.5), ("micrometer", None), 2)
    >>> [d["coordinateTransformations"][0]["scale"] for d in meta["multiscales"][0]["datasets"]]
    [[0.5, 0.5], [1.0, 1.0]]
    """
    described = []
    for letter, unit in zip(axes, units, strict=True):
        axis = {"name": letter.lower()}
        if letter in _NGFF_TYPES:
            axis["type"] = _NGFF_TYPES[letter]
        if unit in _NGFF_UNITS:
            axis["unit"] = unit
        described.append(axis)
    datasets = [
        {
            "path": str(level),
            "coordinateTransformations": [
                {
                    "type": "scale",
                    "scale": [
                        float(s) * (2**level if a in "YX" else 1)
                        for a, s in zip(axes, scale, strict=True)
                    ],
                }
            ],
        }
        for level in range(levels)
    ]
    return {
        "multiscales": [
            {
                "version": "0.4",
                "name": name,
                "axes": described,
                "datasets": datasets,
                "type": "mode",
                "metadata": {
                    "description": "each level halves Y and X of the one before: the most "
                    "frequent label of each 2 x 2 block, ties to its top-left pixel"
                },
            }
        ]
    }


def _halve_block(block: np.ndarray, plane: tuple[int, int]) -> np.ndarray:
    """Keep the most frequent value of each 2 x 2 window of ``block`` (ties: the top-left one)."""
    y, x = plane
    windows = [
        block[
            tuple(
                slice(dy, None, 2) if i == y else slice(dx, None, 2) if i == x else slice(None)
                for i in range(block.ndim)
            )
        ]
        for dy in (0, 1)
        for dx in (0, 1)
    ]
    best, best_votes = windows[0], sum(windows[0] == w for w in windows)
    for candidate in windows[1:]:
        votes = sum(candidate == w for w in windows)
        better = votes > best_votes
        best = np.where(better, candidate, best)
        best_votes = np.where(better, votes, best_votes)
    return best


def halve_labels(labels: da.Array, plane: tuple[int, int]) -> da.Array:
    """Halve ``labels`` along the two ``plane`` axes: the mode of each 2 x 2 block.

    Odd lengths are padded by repeating the last row or column, so the result has
    ``ceil(n / 2)`` along each.

    Parameters
    ----------
    labels : dask.array.Array
        Integer labels.
    plane : tuple of int
        The Y and X axes.

    Returns
    -------
    dask.array.Array
        The smaller labels.

    Examples
    --------
    >>> labels = da.from_array(np.array([[1, 1, 2], [3, 1, 2], [4, 4, 4]], np.uint8))
    >>> halve_labels(labels, (0, 1)).compute().tolist()
    [[1, 2], [4, 4]]
    """
    pad = [(0, n % 2 if i in plane else 0) for i, n in enumerate(labels.shape)]
    if any(after for _, after in pad):
        labels = da.pad(labels, pad, mode="edge")
    even = tuple(  # coarsen needs chunks that are multiples of the window
        2 * -(-max(chunks) // 2) if i in plane else max(chunks)
        for i, chunks in enumerate(labels.chunks)
    )
    labels = labels.rechunk(even)
    halved = tuple(
        tuple(c // 2 for c in chunks) if i in plane else chunks
        for i, chunks in enumerate(labels.chunks)
    )
    return da.map_blocks(_halve_block, labels, plane=plane, chunks=halved, dtype=labels.dtype)


def write_ome_zarr_labels(
    labels: da.Array | np.ndarray,
    path,
    *,
    axes: str,
    scale=None,
    units=None,
    progress: bool | None = True,
    overwrite: bool = False,
) -> list[tuple[int, ...]]:
    """Write ``labels`` as an OME-Zarr (NGFF 0.4, Zarr format 2) multiscale labels image.

    Level ``"0"`` is ``labels``, computed chunk by chunk as :func:`write_labels_zarr` does;
    each further level halves Y and X of the one before (the most frequent label of each
    2 x 2 block, so no label value is invented), read back from the store, until both are
    below :data:`PYRAMID_BELOW` pixels. The group carries ``multiscales`` (axes with types
    and units, a ``scale`` per level) and ``image-label`` metadata, so napari-ome-zarr,
    ome-zarr-py and other NGFF readers open it as labels; napari's built-in reader opens
    the levels as a multiscale layer. The store is written under a temporary name and
    renamed when complete.

    Parameters
    ----------
    labels : dask.array.Array or numpy.ndarray
        The labels (a NumPy array is wrapped); ``Y`` and ``X`` are the axes named so in
        ``axes``.
    path : str or os.PathLike
        The store to create.
    axes : str
        One letter per axis of ``labels`` (``T``, ``Z``, ``Y``, ``X``; others custom).
    scale : sequence of float, optional
        Level-0 pixel size per axis (default 1).
    units : sequence of str or None, optional
        Unit per axis (``"micrometer"``...).
    progress : bool or None
        Show a progress bar of chunks; None: only when stderr is a terminal.
    overwrite : bool
        Whether an existing ``path`` may be replaced (else ``FileExistsError``).

    Returns
    -------
    list of tuple of int
        The shape of every level written.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is False.
    ValueError
        When ``axes`` does not name one letter per axis with ``Y`` and ``X``.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = tempfile.mkdtemp() + "/labels.zarr"
    >>> write_ome_zarr_labels(da.ones((4, 6), np.uint8, chunks=3), path, axes="YX",
    ...                       progress=False)
    [(4, 6)]
    >>> zarr.open_group(path).attrs["multiscales"][0]["axes"]
    [{'name': 'y', 'type': 'space'}, {'name': 'x', 'type': 'space'}]
    """
    import zarr

    array = da.asarray(labels)
    if len(axes) != array.ndim or "Y" not in axes or "X" not in axes:
        raise ValueError(
            f"axes={axes!r} must name each of the {array.ndim} axes of labels of shape "
            f"{array.shape}, Y and X among them"
        )
    scale = (1.0,) * array.ndim if scale is None else tuple(scale)
    units = (None,) * array.ndim if units is None else tuple(units)
    plane = (axes.index("Y"), axes.index("X"))
    if not overwrite and Path(path).exists():
        raise FileExistsError(errno.EEXIST, "File exists", str(path))
    with staged(path, overwrite=overwrite) as temporary:
        group = zarr.open_group(str(temporary), mode="w-", zarr_format=2)
        level, shapes = array, list[tuple[int, ...]]()
        while True:
            regular = tuple(max(c) for c in level.chunks)
            level = level.rechunk(regular)
            target = group.create_array(
                str(len(shapes)),
                shape=level.shape,
                chunks=regular,
                dtype=level.dtype,
                fill_value=0,
                chunk_key_encoding={"name": "v2", "separator": "/"},
            )
            _compute_into(level, target, progress)
            shapes.append(level.shape)
            if max(level.shape[axis] for axis in plane) < PYRAMID_BELOW:
                break
            level = halve_labels(da.from_zarr(target), plane)
        group.attrs.update(
            {
                **ngff_multiscales(axes, scale, units, len(shapes), Path(path).stem),
                "image-label": {"version": "0.4"},
                **LABELS_STORE_ATTRIBUTE,  # --overwrite replaces only such stores
            }
        )
    return shapes
