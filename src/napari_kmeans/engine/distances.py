"""Blocked nearest-centre search on feature columns.

Features are stored transposed, as ``(d, n)`` C-contiguous columns, and a block of rows is
compared with each centre in turn by direct differences ``Σ (x_j − c_j)²``, keeping a running
minimum. With the few features of an image (d ≤ ~6) this is several times faster than a
matrix product (tall-skinny GEMM is a poor fit for BLAS) and exact: no ``|x|² − 2x·c + |c|²``
cancellation. float32 features stay float32; sums that decide the result (inertia, centre
sums) are accumulated in float64. Dot products in the loops use ``einsum``, not BLAS: a BLAS
call per block wakes OpenBLAS's thread pool each time, which costs milliseconds here.
"""

from __future__ import annotations

import numpy as np

from .blocks import map_blocks


def block_sqdist(columns: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Squared distances from every row of a ``(d, b)`` block to one point.

    Examples
    --------
    >>> block_sqdist(np.array([[0.0, 3.0], [0.0, 4.0]]), np.array([0.0, 0.0])).tolist()
    [0.0, 25.0]
    """
    acc = np.subtract(columns[0], point[0])
    np.square(acc, out=acc)
    tmp = np.empty_like(acc)
    for j in range(1, len(columns)):
        np.subtract(columns[j], point[j], out=tmp)
        np.square(tmp, out=tmp)
        acc += tmp
    return acc


def block_nearest(
    columns: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest centre (lowest index on ties), its squared distance and the squared distance
    to the second nearest centre (inf with one centre), for a ``(d, b)`` block.

    Examples
    --------
    >>> labels, best, second = block_nearest(np.array([[0.0, 9.0]]), np.array([[1.0], [10.0]]))
    >>> labels.tolist(), best.tolist(), second.tolist()
    ([0, 1], [1.0, 1.0], [100.0, 64.0])
    """
    centers = centers.astype(columns.dtype, copy=False)
    best = block_sqdist(columns, centers[0])
    second = np.full_like(best, np.inf)
    labels = np.zeros(columns.shape[1], dtype=np.int32)
    closer = np.empty(columns.shape[1], dtype=bool)
    for i in range(1, len(centers)):
        dist = block_sqdist(columns, centers[i])
        np.less(dist, best, out=closer)
        np.minimum(second, np.maximum(dist, best), out=second)
        np.minimum(dist, best, out=best)
        np.putmask(labels, closer, i)
    return labels, best, second


def nearest(columns: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Nearest centre of every row of ``(d, n)`` columns, computed block by block."""
    parts = map_blocks(lambda s: block_nearest(columns[:, s], centers)[0], columns.shape[1])
    return np.concatenate(parts) if parts else np.empty(0, np.int32)


def cluster_sums(
    columns: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster: weighted sum of rows ``(k, d)``, total weight ``(k,)`` and weighted sum of
    squared norms ``(k,)``, all float64 — everything Lloyd needs about a set of rows.

    Examples
    --------
    >>> s, w, q = cluster_sums(np.array([[1.0, 2.0, 5.0]]), np.array([0, 0, 1]), None, 2)
    >>> s.ravel().tolist(), w.tolist(), q.tolist()
    ([3.0, 5.0], [2.0, 1.0], [5.0, 25.0])
    """
    d = len(columns)
    sums = np.empty((k, d))
    sqnorm = np.zeros(len(labels))
    for j in range(d):
        col = columns[j].astype(np.float64)
        sqnorm += col * col
        sums[:, j] = np.bincount(labels, col if weights is None else col * weights, minlength=k)
    if weights is not None:
        sqnorm *= weights
    total = np.bincount(labels, weights, minlength=k).astype(np.float64)
    return sums, total, np.bincount(labels, sqnorm, minlength=k)


def own_sqdist(columns: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """float64 squared distance of every row to its own centre ``centers[labels]``."""

    def block(s: slice) -> np.ndarray:
        sq = np.zeros(s.stop - s.start)
        for j in range(len(columns)):
            diff = columns[j, s] - np.take(centers[:, j], labels[s])
            sq += diff * diff
        return sq

    parts = map_blocks(block, columns.shape[1])
    return np.concatenate(parts) if parts else np.empty(0)


def exact_inertia(
    columns: np.ndarray, labels: np.ndarray, centers: np.ndarray, sample_weight: np.ndarray | None
) -> float:
    """Weighted sum of squared distances to the assigned centres, computed in float64.

    Examples
    --------
    >>> exact_inertia(np.array([[0.0, 2.0]]), np.array([0, 0]), np.array([[1.0]]), None)
    2.0
    """
    sq = own_sqdist(columns, labels, centers)
    return float(sq.sum() if sample_weight is None else np.einsum("i,i->", sq, sample_weight))
