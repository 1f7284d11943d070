"""Exact histogram compression of integer pixel values.

An 8-bit colour photo of 12 MP has far fewer distinct colours than pixels, and a 16-bit grey
image at most 65,536 values. K-means on the distinct values weighted by their counts runs
the same Lloyd iterations as on every pixel; a lookup table then gives every pixel its label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import cv2
import numpy as np

from .blocks import map_blocks

_MAX_TABLE_BITS = 24  # a direct table of 2**24 entries (16.7 M) is still cheap to count into


@dataclass(frozen=True)
class Histogram:
    """Distinct rows of an integer ``(n, c)`` array, their counts, and the way back to rows.

    Made by :func:`histogram`.

    Attributes
    ----------
    values : numpy.ndarray
        ``(m, c)`` distinct rows, in ascending order of their packed key.
    counts : numpy.ndarray
        ``(m,)`` int64 number of rows equal to each distinct row.

    Examples
    --------
    >>> h = histogram(np.array([[3, 0], [1, 5], [3, 0]], dtype=np.uint8))
    >>> h.values.tolist(), h.counts.tolist()
    ([[1, 5], [3, 0]], [1, 2])
    """

    values: np.ndarray
    counts: np.ndarray
    _rows: np.ndarray  # the (n, c) rows themselves (direct-table case) or (n,) index into values
    _table_size: int  # > 0 for a direct table indexed by the packed rows

    def take(self, per_value: np.ndarray) -> np.ndarray:
        """Spread a ``(m, ...)`` array over the original rows: ``per_value[index of row]``.

        Parameters
        ----------
        per_value : numpy.ndarray
            ``(m, ...)`` one entry per distinct row, e.g. its label.

        Returns
        -------
        numpy.ndarray
            ``(n, ...)`` the entry of each original row.

        Examples
        --------
        >>> h = histogram(np.array([[3], [1], [3]], dtype=np.uint8))
        >>> h.values.ravel().tolist(), h.counts.tolist(), h.take(np.array([10, 20])).tolist()
        ([1, 3], [1, 2], [20, 10, 20])
        """
        if not self._table_size:
            return per_value[self._rows]
        table = np.zeros((self._table_size, *per_value.shape[1:]), dtype=per_value.dtype)
        table[_keys(self.values)] = per_value
        out = np.empty((len(self._rows), *per_value.shape[1:]), dtype=per_value.dtype)

        def block(s: slice) -> None:
            np.take(table, _keys(self._rows[s]), axis=0, out=out[s])

        map_blocks(block, len(out))
        return out


def _bits(dtype: np.dtype) -> int:
    return np.dtype(dtype).itemsize * 8


def _to_unsigned(rows: np.ndarray) -> np.ndarray:
    """Signed integers mapped onto unsigned ones of the same width, order kept."""
    unsigned = np.dtype(f"u{rows.dtype.itemsize}")
    return rows.view(unsigned) ^ unsigned.type(1 << (_bits(unsigned) - 1))


def _keys(rows: np.ndarray) -> np.ndarray:
    """One unsigned key per row: the channels' bits side by side (first channel highest)."""
    if rows.dtype.kind == "i":
        rows = _to_unsigned(rows)
    bits = _bits(rows.dtype)
    key = rows[:, 0].astype(np.intp if bits * rows.shape[1] < 63 else np.uint64)
    for j in range(1, rows.shape[1]):
        key <<= bits
        key |= rows[:, j]
    return key


def _unpack(keys: np.ndarray, dtype: np.dtype, n_channels: int) -> np.ndarray:
    unsigned = np.dtype(f"u{np.dtype(dtype).itemsize}")
    bits = _bits(unsigned)
    mask = (1 << bits) - 1
    shifts = [bits * (n_channels - 1 - j) for j in range(n_channels)]
    values = np.stack([(keys >> s) & mask for s in shifts], axis=1).astype(unsigned)
    return _to_unsigned(values).view(dtype) if np.dtype(dtype).kind == "i" else values


_OPENCV_KINDS = {
    (np.dtype(np.uint8), 1),
    (np.dtype(np.uint8), 2),
    (np.dtype(np.uint8), 3),
    (np.dtype(np.uint16), 1),
}
_COUNT_BLOCK = (1 << 24) - 1  # rows per counting pass: float32 counts stay exact


def _table_counts(rows: np.ndarray, total_bits: int) -> np.ndarray:
    """Count every possible packed key of a small value space.

    Block by block, so that no temporary grows with the image.
    """
    n_channels = rows.shape[1]
    opencv = (rows.dtype, n_channels) in _OPENCV_KINDS
    bins = 1 << _bits(rows.dtype)
    counts = None
    for start in range(0, len(rows), _COUNT_BLOCK):
        block = rows[start : start + _COUNT_BLOCK]
        if opencv:  # OpenCV counts in parallel
            image = np.ascontiguousarray(block).reshape(-1, 1, n_channels)
            part = cv2.calcHist(
                [image], list(range(n_channels)), None, [bins] * n_channels, [0, bins] * n_channels
            ).reshape(-1)
        else:
            part = np.bincount(_keys(block), minlength=1 << total_bits)
        if len(block) == len(rows):
            return part  # one pass: no int64 copy of the table
        if counts is None:
            counts = np.zeros(len(part), dtype=np.int64)
        np.add(counts, part, out=counts, casting="unsafe")  # float32 counts are whole numbers
    return counts


def _present(table: np.ndarray) -> np.ndarray:
    """Return the indices of the non-zero counts of a direct table, ascending.

    A colour table is mostly empty: a 4-byte table is scanned 8 bytes (two counts) at a
    time, then only the pairs holding a count are looked at one by one (twice as fast as
    ``np.flatnonzero`` on 16.7 M float32 counts). Counts are never negative, so a count is
    non-zero exactly when one of its bits is.
    """
    if table.itemsize != 4 or len(table) % 2:
        return np.flatnonzero(table)
    pairs = np.flatnonzero(table.view(np.uint64))
    both = (2 * pairs[:, None] + np.arange(2)).reshape(-1)
    return both[table[both] != 0]


@overload
def histogram(
    rows: np.ndarray, weights: np.ndarray | None = None, max_distinct: None = None
) -> Histogram: ...


@overload
def histogram(
    rows: np.ndarray, weights: np.ndarray | None, max_distinct: int | None
) -> Histogram | None: ...


def histogram(
    rows: np.ndarray, weights: np.ndarray | None = None, max_distinct: int | None = None
) -> Histogram | None:
    """Return the distinct rows and counts of an integer ``(n, c)`` array.

    Small value spaces (up to 24 bits per row, e.g. 8-bit RGB or 16-bit grey) are counted
    into a direct table in O(n) when there are enough rows to pay for the table; otherwise
    the packed rows are sorted once. With integer ``weights`` each row counts that many
    times (merging histograms: rows are distinct values, weights their counts).

    Parameters
    ----------
    rows : numpy.ndarray
        ``(n, c)`` integer rows.
    weights : numpy.ndarray, optional
        ``(n,)`` integer count of each row; None: 1 each.
    max_distinct : int, optional
        Give up (return None) when there are more distinct rows: in a direct table this is
        known from the counts, before the distinct rows are listed.

    Returns
    -------
    Histogram or None
        Distinct rows, their counts and the way back to every row; None beyond
        ``max_distinct``.

    Raises
    ------
    TypeError
        When ``rows`` are not integers.

    Examples
    --------
    >>> h = histogram(np.array([[7], [7], [2]], np.uint16), weights=np.array([1, 2, 5]))
    >>> h.values.ravel().tolist(), h.counts.tolist()
    ([2, 7], [5, 3])
    >>> histogram(np.array([[7], [7], [2]], np.uint16), max_distinct=1) is None
    True
    """
    if rows.dtype.kind not in "ui":
        raise TypeError(f"histogram needs integers, not {rows.dtype}")
    n_channels = rows.shape[1]
    total_bits = _bits(rows.dtype) * n_channels
    table_pays = len(rows) >= (1 << total_bits) // 4
    if total_bits <= _MAX_TABLE_BITS and table_pays and weights is None:
        table = _table_counts(rows, total_bits)
        if max_distinct is not None and np.count_nonzero(table) > max_distinct:
            return None
        present = _present(table)
        values = _unpack(present, rows.dtype, n_channels)
        return Histogram(values, table[present].astype(np.int64), rows, 1 << total_bits)
    if total_bits <= 64:
        distinct, index, counts = np.unique(_keys(rows), return_inverse=True, return_counts=True)
        values = _unpack(distinct, rows.dtype, n_channels)
    else:
        values, index, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    if max_distinct is not None and len(values) > max_distinct:
        return None
    index = index.reshape(-1)
    if weights is not None:
        counts = np.bincount(index, weights, minlength=len(values))
    return Histogram(values, counts.astype(np.int64), index, 0)
