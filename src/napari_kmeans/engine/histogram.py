"""Exact histogram compression of integer pixel values.

An 8-bit colour photo of 12 MP has far fewer distinct colours than pixels, and a 16-bit grey
image at most 65,536 values. K-means on the distinct values weighted by their counts runs
the same Lloyd iterations as on every pixel; a lookup table then gives every pixel its label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MAX_TABLE_BITS = 24  # a direct table of 2**24 entries (16.7 M) is still cheap to count into


@dataclass(frozen=True)
class Histogram:
    """Distinct rows of an integer ``(n, c)`` array, their counts, and the way back to rows.

    Attributes
    ----------
    values : (m, c) distinct rows, in ascending order of their packed key.
    counts : (m,) int64 number of rows equal to each distinct row.
    """

    values: np.ndarray
    counts: np.ndarray
    _keys: np.ndarray  # (n,) packed key of every row, or its index into ``values``
    _table_size: int  # > 0 when ``_keys`` index a direct table (every key is below it)

    def take(self, per_value: np.ndarray) -> np.ndarray:
        """Spread a ``(m, ...)`` array over the original rows: ``per_value[index of row]``.

        Examples
        --------
        >>> h = histogram(np.array([[3], [1], [3]], dtype=np.uint8))
        >>> h.values.ravel().tolist(), h.counts.tolist(), h.take(np.array([10, 20])).tolist()
        ([1, 3], [1, 2], [20, 10, 20])
        """
        if not self._table_size:
            return per_value[self._keys]
        table = np.zeros((self._table_size, *per_value.shape[1:]), dtype=per_value.dtype)
        values = self.values
        if values.dtype.kind == "i":
            values = _to_unsigned(values)
        table[_pack(values, _bits(values.dtype))] = per_value
        return table[self._keys]


def _bits(dtype: np.dtype) -> int:
    return np.dtype(dtype).itemsize * 8


def _pack(rows: np.ndarray, bits: int) -> np.ndarray:
    """One unsigned key per row: the channels' bits side by side (first channel highest)."""
    key = rows[:, 0].astype(np.uint64 if bits * rows.shape[1] > 32 else np.uint32)
    for j in range(1, rows.shape[1]):
        key <<= bits
        key |= rows[:, j]
    return key


def _unpack(keys: np.ndarray, bits: int, n_channels: int, dtype: np.dtype) -> np.ndarray:
    mask = (1 << bits) - 1
    shifts = [bits * (n_channels - 1 - j) for j in range(n_channels)]
    return np.stack([(keys >> s) & mask for s in shifts], axis=1).astype(dtype)


def _to_unsigned(rows: np.ndarray) -> np.ndarray:
    """Signed integers mapped onto unsigned ones of the same width, order kept."""
    unsigned = np.dtype(f"u{rows.dtype.itemsize}")
    return rows.view(unsigned) ^ unsigned.type(1 << (_bits(unsigned) - 1))


def histogram(rows: np.ndarray) -> Histogram:
    """Distinct rows and counts of an integer ``(n, c)`` array.

    Small value spaces (up to 24 bits per row, e.g. 8-bit RGB or 16-bit grey) are counted
    into a direct table in O(n); wider ones are sorted once.
    """
    if rows.dtype.kind not in "ui":
        raise TypeError(f"histogram needs integers, not {rows.dtype}")
    if rows.dtype.kind == "i":
        shifted = histogram(_to_unsigned(rows))
        values = _to_unsigned(shifted.values).view(rows.dtype)
        return Histogram(values, shifted.counts, shifted._keys, shifted._table_size)
    bits = _bits(rows.dtype)
    total_bits = bits * rows.shape[1]
    if total_bits <= _MAX_TABLE_BITS:
        keys = _pack(rows, bits)
        table = np.bincount(keys)  # no minlength: it makes bincount several times slower
        present = np.flatnonzero(table)
        values = _unpack(present.astype(np.uint32), bits, rows.shape[1], rows.dtype)
        return Histogram(values, table[present], keys, len(table))
    if total_bits <= 64:
        keys = _pack(rows, bits)
        distinct, index, counts = np.unique(keys, return_inverse=True, return_counts=True)
        values = _unpack(distinct, bits, rows.shape[1], rows.dtype)
    else:
        values, index, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    return Histogram(values, counts.astype(np.int64), index.reshape(-1), 0)
