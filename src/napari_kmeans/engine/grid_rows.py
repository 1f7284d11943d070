"""Feature rows of pixels on a grid: stored columns, then coordinates computed on the fly.

A ``(n, c)`` array of colour features (often the image's own pixel values, no copy) and the
pixels' positions on the grid stand for ``(n, c + ndim)`` feature rows, colour first. The
coordinate of axis ``a`` is looked up in a small table, ``axis_values[a][index]``, made by
whoever defines the features (``features.axis_coordinates``): the kernels read exactly the
numbers a materialised feature array would hold, at 4-8 bytes per pixel less than it.

The engine (``kmeans``, ``lloyd``, ``distances``) takes a :class:`GridRows` wherever it
takes ``(n, d)`` rows; ``kernel_rows`` turns either into the tuple the compiled kernels read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blocks import map_blocks
from .compiled import kernels

__all__ = ["GridRows", "kernel_rows", "materialise", "take"]

_NO_PIXELS = np.empty(0, dtype=np.int64)
_NO_AXES = np.empty(0, dtype=np.int64)
_NO_RECIPROCALS = np.empty(0)
_NO_TABLE = np.empty((0, 0))


@dataclass(frozen=True, eq=False)
class GridRows:
    """Feature rows: ``values`` (stored), then one coordinate per axis of a pixel grid.

    Attributes
    ----------
    values : numpy.ndarray
        ``(n, c)`` stored features of any real dtype (read as float64), never written to.
    pixels : numpy.ndarray or None
        ``(n,)`` flat (C-order) index of each row's pixel in the grid; None: row ``i`` is
        pixel ``i`` (every pixel, in order).
    grid_shape : tuple of int
        Shape of the pixel grid.
    axis_values : tuple of numpy.ndarray
        Per axis, the float64 feature value of each index along it (``grid_shape[a]``
        values).
    dtype : numpy.dtype
        The feature dtype: materialised rows (:func:`materialise`, :func:`take`) have it,
        and every stored and tabled value is exactly representable in it.
    values_summary : RowSummary or None
        ``distances.summarise(values, None)`` when the maker already made it: an
        unweighted summary of these rows then reads only the coordinates.

    Examples
    --------
    >>> rows = GridRows(np.array([[7], [8], [9]], np.uint8), np.array([1, 2, 5]), (2, 3),
    ...                 (np.array([0.0, 10.0]), np.array([0.0, 1.0, 2.0])), np.dtype(np.float32))
    >>> rows.shape, materialise(rows).tolist()
    ((3, 3), [[7.0, 0.0, 1.0], [8.0, 0.0, 2.0], [9.0, 10.0, 2.0]])
    """

    values: np.ndarray
    pixels: np.ndarray | None
    grid_shape: tuple[int, ...]
    axis_values: tuple[np.ndarray, ...]
    dtype: np.dtype
    values_summary: object = None  # a distances.RowSummary (distances imports this module)

    def __post_init__(self) -> None:
        """Refuse values, pixels and tables that do not describe the same rows."""
        n = len(self.values) if self.pixels is None else len(self.pixels)
        expected = int(np.prod(self.grid_shape)) if self.pixels is None else len(self.values)
        if self.values.ndim != 2 or n != expected or len(self.values) != n:
            raise ValueError(
                f"values of shape {self.values.shape} do not match the grid {self.grid_shape} "
                f"and {'all' if self.pixels is None else len(self.pixels)} pixels"
            )
        lengths = tuple(len(t) for t in self.axis_values)
        if lengths != tuple(self.grid_shape):
            raise ValueError(f"axis_values of lengths {lengths} do not match {self.grid_shape}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, d)``: rows and features (stored columns + grid axes)."""
        return len(self.values), self.values.shape[1] + len(self.grid_shape)


def kernel_rows(rows: np.ndarray | GridRows) -> tuple:
    """Return the tuple the row kernels read (``kernels._load``) for rows or a GridRows.

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` rows (any real dtype and layout), or grid rows.

    Returns
    -------
    tuple
        ``(values, pixels, grid, reciprocals, table)``: for plain rows, the rows and empty
        grid arrays.

    Examples
    --------
    >>> values, pixels, grid, _, table = kernel_rows(np.zeros((4, 2)))
    >>> values.shape, pixels.size, grid.size, table.shape
    ((4, 2), 0, 0, (0, 0))
    """
    if not isinstance(rows, GridRows):
        return rows, _NO_PIXELS, _NO_AXES, _NO_RECIPROCALS, _NO_TABLE
    grid = np.array(rows.grid_shape, dtype=np.int64)
    table = np.zeros((len(grid), int(grid.max(initial=0))))
    for a, axis_values in enumerate(rows.axis_values):
        table[a, : len(axis_values)] = axis_values
    pixels = _NO_PIXELS if rows.pixels is None else np.asarray(rows.pixels, dtype=np.int64)
    return rows.values, pixels, grid, 1.0 / np.maximum(grid, 1), table


def take(rows: np.ndarray | GridRows, indices: np.ndarray) -> np.ndarray:
    """Return rows ``indices`` as a row-major ``(m, d)`` array (of the feature dtype).

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` rows.
    indices : numpy.ndarray
        Row indices.

    Returns
    -------
    numpy.ndarray
        A new ``(m, d)`` array.

    Examples
    --------
    >>> take(np.arange(6.0).reshape(3, 2), np.array([2, 0])).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    indices = np.asarray(indices, dtype=np.int64)
    if not isinstance(rows, GridRows):
        return np.ascontiguousarray(rows[indices])
    out = np.empty((len(indices), rows.shape[1]), dtype=rows.dtype)
    source = kernel_rows(rows)
    map_blocks(lambda s: kernels.gather_block(source, indices[s], out[s]), len(indices))
    return out


def materialise(rows: np.ndarray | GridRows) -> np.ndarray:
    """Return every row as an ``(n, d)`` array (plain rows as they are).

    Parameters
    ----------
    rows : numpy.ndarray or GridRows
        ``(n, d)`` rows.

    Returns
    -------
    numpy.ndarray
        ``rows`` itself, or the grid rows written out in their feature dtype.

    Examples
    --------
    >>> rows = GridRows(np.array([[5.0], [6.0]]), None, (2,), (np.array([0.0, 3.0]),),
    ...                 np.dtype(np.float64))
    >>> materialise(rows).tolist()
    [[5.0, 0.0], [6.0, 3.0]]
    """
    if not isinstance(rows, GridRows):
        return rows
    return take(rows, np.arange(rows.shape[0]))
