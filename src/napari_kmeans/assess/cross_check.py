"""Independent cross-check of a segmentation with OpenCV's ``cv2.kmeans``.

The features are those the segmentation's model clustered, made by its own recipe (colour
space, smoothing, texture, spatial scaling fixed at fitting time), written block by block to
a temporary file; each block is read with the overlap the recipe's filters reach.
``cv2.kmeans`` cannot be interrupted, so it runs in a child process (a script run by path,
so the caller's main module is never re-imported, unlike ``multiprocessing``'s spawn) that
is killed as soon as ``progress`` raises. The comparison then reads the files back block by
block: memory stays bounded by a block, the labels and OpenCV's own copy in the child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from ..engine.blocks import BLOCK_ROWS
from ..features import pixels as ft
from ..options import check_callable
from ..outputs.segmentation import Segmentation
from ..progress import CROSS_CHECK, ProgressCallback, report
from .agreement import adjusted_rand_index_of_table

BLOCK_PIXELS = BLOCK_ROWS  # pixels featurised or compared per block
# Seconds between two progress reports while cv2.kmeans runs.
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class CrossCheck:
    """How our segmentation compares with ``cv2.kmeans`` on the same feature rows.

    Attributes
    ----------
    adjusted_rand_index : float
        Agreement of the two labelings (1.0 = the same partition).
    inertia_ratio : float
        Our inertia / OpenCV's, both recomputed in float64 (<= 1: ours is as good).
    max_center_distance : float
        Largest distance between matched centres (Hungarian matching).
    opencv_inertia : float
        OpenCV's inertia, recomputed in float64 from its labels and centres.
    opencv_seconds, ours_seconds : float
        Wall times of ``cv2.kmeans`` and of ``segment``.

    Examples
    --------
    >>> check = CrossCheck(1.0, 0.999, 0.01, 10.0, 0.2, 0.05)
    >>> check.inertia_ratio <= 1
    True
    """

    adjusted_rand_index: float
    inertia_ratio: float
    max_center_distance: float
    opencv_inertia: float
    opencv_seconds: float
    ours_seconds: float

    def to_dict(self) -> dict:
        """Return the fields as a JSON-serialisable dict.

        Returns
        -------
        dict
            One entry per field, by name.

        Examples
        --------
        >>> CrossCheck(1.0, 0.999, 0.01, 10.0, 0.2, 0.05).to_dict()["adjusted_rand_index"]
        1.0
        """
        return asdict(self)


class _RowFile:
    """A ``.npy`` file of float32 rows written and read back block by block."""

    def __init__(self, path: str, n_rows: int, n_columns: int) -> None:
        self.path, self.n_columns = path, n_columns
        with open(path, "wb") as file:
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                "fortran_order": False,
                "shape": (n_rows, n_columns),
            }
            np.lib.format.write_array_header_1_0(file, header)
            self.offset = file.tell()

    def append(self, rows: np.ndarray) -> None:
        with open(self.path, "ab") as file:
            np.ascontiguousarray(rows, dtype=np.float32).tofile(file)

    def read(self, start: int, stop: int) -> np.ndarray:
        itemsize = 4 * self.n_columns
        count = (stop - start) * self.n_columns
        rows = np.fromfile(self.path, np.float32, count, offset=self.offset + start * itemsize)
        return rows.reshape(-1, self.n_columns)


def _run_opencv(folder: str, k: int, max_iter: int, eps: float, seed: int, ping) -> None:
    """Run ``opencv_kmeans.py`` in its own process; kill it if ``ping`` raises."""
    script = os.path.join(os.path.dirname(__file__), "opencv_kmeans.py")
    args = [sys.executable, script, folder, str(k), str(max_iter), repr(eps), str(seed)]
    # the child finds NumPy and OpenCV where this process found them
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    log_path = os.path.join(folder, "opencv_errors.txt")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=log, env=env)
        try:
            while process.poll() is None:
                ping()
                try:
                    process.wait(POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            last = log.read().strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(
            f"cv2.kmeans failed in the cross-check process (exit code {process.returncode}): "
            f"{last[0]}"
        )


def _slabs(layout: ft.ChannelLayout):
    """Index tuples cutting the image along its first spatial axis into blocks of pixels."""
    spatial_axis = 1 if layout.axis == 0 else 0
    per_index = int(np.prod(layout.spatial_shape[1:]))
    step = max(1, BLOCK_PIXELS // max(per_index, 1))
    for start in range(0, layout.spatial_shape[0], step):
        cut = slice(start, min(start + step, layout.spatial_shape[0]))
        yield (slice(None),) * spatial_axis + (cut,), cut, start * per_index


def _write_features(image, seg: Segmentation, layout, rows: _RowFile, progress, total):
    """Features of every clustered pixel, block by block, and their labels in ``seg``.

    Returns our labels (1..k), and the column sums and squared sums of the features
    (float64, shifted by the first row) for their variance.
    """
    recipe = seg.model.recipe
    masked = seg.params["masked"]
    ours, sums, squares, shift, written = [], 0.0, 0.0, None, 0
    for index, cut, first_pixel in _slabs(layout):
        block_labels = np.asarray(seg.labels[(cut,)]).reshape(-1)
        values, texture = _slab_values(image, seg, layout, index, cut)
        pixels = np.arange(first_pixel, first_pixel + len(block_labels))
        if masked:
            included = np.flatnonzero(block_labels)
            values, pixels, block_labels = (
                values[included],
                pixels[included],
                block_labels[included],
            )
            texture = None if texture is None else texture[included]
        feats = recipe.features(values, layout.spatial_shape, pixels, texture)
        feats = feats.astype(np.float32)
        if seg.model.cleanup.active:  # compare k-means with k-means: labels before clean-up
            block_labels = seg.model.label(values, layout.spatial_shape, pixels)
        rows.append(feats)
        if len(feats):
            shift = feats[0].astype(np.float64) if shift is None else shift
            centred = feats - shift
            sums = sums + centred.sum(axis=0)
            squares = squares + np.einsum("ij,ij->j", centred, centred)
        ours.append(block_labels)
        written += len(feats)
        report(progress, CROSS_CHECK, written, total)
    labels = np.concatenate(ours)
    return labels, sums, squares, written


def _slab_values(image, seg: Segmentation, layout, index, cut: slice):
    """Return a slab's values the features are made from (filtered) and raw texture.

    With the recipe's filters the slab is read with their reach along the cut axis (the other
    axes are whole), filtered, and cropped back: the same values as the image filtered whole.
    """
    filters = seg.model.recipe.filters
    if not filters.active:
        return layout.table(np.asarray(image[index])).values, None
    reach = filters.reach()[0]
    start, stop = max(cut.start - reach, 0), min(cut.stop + reach, layout.spatial_shape[0])
    wide = slice(start, stop)
    spatial_axis = len(index) - 1
    block = np.asarray(image[index[:spatial_axis] + (wide,)])
    mask = np.asarray(seg.labels[(wide,)]) != 0 if seg.params["masked"] else None
    smoothed, texture = filters.apply(block, layout, mask)
    core = slice(cut.start - start, cut.stop - start)
    kept = index[:spatial_axis] + (core,)
    values = layout.table(smoothed[kept]).values
    if texture is not None:
        shape = (stop - start, *layout.spatial_shape[1:])
        texture = texture.reshape(*shape, -1)[core].reshape(-1, texture.shape[-1])
    return values, texture


def _sum_of_squares(feats: np.ndarray, centers: np.ndarray) -> float:
    """Sum of squared distances of rows to their centres (``centers`` is overwritten)."""
    np.subtract(feats, centers, out=centers)
    return float(np.einsum("ij,ij->", centers, centers))


def _compare(rows: _RowFile, ours, theirs, centers, cv_centers, k: int, progress, total):
    """Inertias of both labelings and their contingency table, block by block."""
    n = len(ours)
    our_inertia = opencv_inertia = 0.0
    table = np.zeros(k * k, dtype=np.int64)
    for start in range(0, n, BLOCK_PIXELS):
        stop = min(start + BLOCK_PIXELS, n)
        feats = rows.read(start, stop).astype(np.float64)
        mine = ours[start:stop].astype(np.intp) - 1
        other = np.asarray(theirs[start:stop]).astype(np.intp)
        our_inertia += _sum_of_squares(feats, centers[mine])
        opencv_inertia += _sum_of_squares(feats, cv_centers[other])
        table += np.bincount(mine * k + other, minlength=k * k)
        report(progress, CROSS_CHECK, 2 * n + stop, total)
    return our_inertia, opencv_inertia, table.reshape(k, k)


def cross_check(
    image, seg: Segmentation, *, seed: int = 0, progress: ProgressCallback | None = None
) -> CrossCheck:
    """Run ``cv2.kmeans`` on the features ``seg``'s model clustered and compare.

    ``cv2.kmeans`` (k-means++ centres, one attempt) runs on every clustered pixel of
    ``image``, featurised by the model's own recipe, whatever path made ``seg`` (in memory,
    dask, a sample fit, spatial weight, mask). After a label clean-up (``regularize``,
    ``min_size``) our side is the nearest-centre labels the clean-up started from: both
    sides are plain k-means on the same features. OpenCV stops when no centre moves more than
    ``sqrt(tol × mean feature variance)``, the counterpart of our ``tol``, or after
    ``max_iter`` iterations.

    Parameters
    ----------
    image : array
        The image ``seg`` was computed on (NumPy or dask).
    seg : Segmentation
        The result to check.
    seed : int
        OpenCV's random seed.
    progress : callable, optional
        ``progress(stage, done, total)`` (stage ``CROSS_CHECK``); raise in it to stop, also
        while ``cv2.kmeans`` runs (its process is terminated).

    Returns
    -------
    CrossCheck
        Adjusted Rand index, inertia ratio, largest centre distance and wall times.

    Raises
    ------
    ValueError
        When ``image`` is not the image ``seg`` was computed on.
    RuntimeError
        When ``cv2.kmeans`` fails in its process.

    Examples
    --------
    >>> from napari_kmeans import segment
    >>> img = np.repeat(np.array([[[0, 0, 0]], [[250, 240, 230]]], np.uint8), 50, axis=1)
    >>> cross_check(img, segment(img, n_clusters=2, seed=0)).adjusted_rand_index
    1.0
    """
    check_callable("progress", progress)
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    if seg.params.get("image_shape") != list(image.shape):
        raise ValueError(
            f"image has shape {tuple(image.shape)} but seg was computed on shape "
            f"{tuple(seg.params.get('image_shape', ()))}: pass the same image"
        )
    layout = ft.channel_layout(image.shape, seg.params["channel_axis"])
    k, d = seg.centers.shape
    n = int(np.sum(np.asarray(seg.counts)))
    total = 3 * n
    report(progress, CROSS_CHECK, 0, total)
    with tempfile.TemporaryDirectory(prefix="napari-kmeans-cross-check-") as folder:
        rows = _RowFile(os.path.join(folder, "features.npy"), n, d)
        ours, sums, squares, written = _write_features(image, seg, layout, rows, progress, total)
        if written != n:
            raise ValueError(
                f"seg counts {n} clustered pixels but labels {written} of this image: pass the "
                "image seg was computed on"
            )
        variance = float(np.mean(squares / n - (sums / n) ** 2))
        eps = float(np.sqrt(max(variance, 0.0) * seg.params["tol"]))
        ping = lambda: report(progress, CROSS_CHECK, n, total)  # noqa: E731
        _run_opencv(folder, k, seg.params["max_iter"], eps, seed, ping)
        opencv_seconds = float(np.load(os.path.join(folder, "opencv_seconds.npy")))
        cv_centers = np.load(os.path.join(folder, "opencv_centers.npy")).astype(np.float64)
        cv_labels = np.load(os.path.join(folder, "opencv_labels.npy"), mmap_mode="r")
        our_inertia, opencv_inertia, table = _compare(
            rows, ours, cv_labels, seg.centers, cv_centers, k, progress, total
        )
        del cv_labels  # the memory map must close before the folder goes
    from scipy.optimize import linear_sum_assignment  # not at import: it takes a while

    distance = np.linalg.norm(seg.centers[:, None, :] - cv_centers[None, :, :], axis=2)
    _, match = linear_sum_assignment(distance)
    return CrossCheck(
        adjusted_rand_index=adjusted_rand_index_of_table(table),
        inertia_ratio=our_inertia / opencv_inertia if opencv_inertia > 0 else 1.0,
        max_center_distance=float(distance[np.arange(k), match].max()),
        opencv_inertia=opencv_inertia,
        opencv_seconds=opencv_seconds,
        ours_seconds=seg.seconds,
    )
