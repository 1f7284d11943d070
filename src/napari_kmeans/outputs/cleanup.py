"""Label clean-up after clustering: regularisation (majority vote or Potts) and small objects.

k-means labels each pixel alone, so noise leaves specks and ragged boundaries. Two steps,
both n-D, inside the mask only (label 0 never votes, never changes) and deterministic:

- ``regularize``: ``("majority", radius)`` replaces each label by the weighted majority of
  its neighbourhood (one synchronous pass), ``("potts", beta)`` minimises a Potts energy by
  iterated conditional modes. Neighbours are the pixels of a box of ``radius`` pixels along
  the finest axis (as many pixels of the same physical length along coarser axes, at least
  one), weighted by the finest spacing over their physical distance: with ``spacing=(2, 1,
  1)`` a z neighbour votes half as much as an x neighbour. Potts uses the 3^n box.
- ``min_size``: face-connected components smaller than this (pixels for an int, physical
  volume in the units of ``spacing`` for a float) take the label of the most pixels on their
  outer boundary, repeatedly until no small component has a larger one beside it.

The compiled loops are in :mod:`napari_kmeans.outputs.label_kernels`.

Examples
--------
>>> grid = np.array([[1, 1, 1, 1], [1, 2, 1, 1], [1, 1, 2, 2], [1, 1, 2, 2]], np.uint8)
>>> clean_labels(grid, Cleanup(min_size=2), (1.0, 1.0)).tolist()
[[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 2, 2], [1, 1, 2, 2]]
>>> clean_labels(grid, Cleanup(("majority", 1)), (1.0, 1.0))[1].tolist()
[1, 1, 1, 1]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ..engine.blocks import BLOCK_ROWS, map_blocks

REGULARIZERS = ("majority", "potts")
# What a bare name means: a 3x3(x3...) vote, and a Potts weight of one average data term.
DEFAULT_STRENGTH = {"majority": 1, "potts": 1.0}
# ICM sweeps at most (each reaches 2^n pixels further): bounds the chunk overlap on dask.
POTTS_SWEEPS = 8
# Potts reads a table of each feature row's distance to every label up to this many entries
# (128 MiB), and computes the distances per visit beyond (float images: a row per pixel).
COST_TABLE_ENTRIES = 1 << 24


@dataclass(frozen=True)
class Cleanup:
    """What happens to the labels after clustering: part of a model's recipe.

    Attributes
    ----------
    regularize : tuple or None
        ``("majority", radius)`` with an int radius >= 1, ``("potts", beta)`` with a float
        beta > 0, or None for none.
    min_size : int, float or None
        Components smaller than this many pixels (int) or this physical volume (float, in
        the units of ``spacing``) join their surroundings; None for none.

    Examples
    --------
    >>> Cleanup(("potts", 1.5), 20).to_params()
    {'regularize': ['potts', 1.5], 'min_size': 20}
    >>> Cleanup().active
    False
    """

    regularize: tuple[str, float] | None = None
    min_size: int | float | None = None

    @property
    def active(self) -> bool:
        """Whether anything is done to the labels."""
        return self.regularize is not None or self.min_size is not None

    def to_params(self) -> dict:
        """Return the JSON entries of a model's or a run's ``params``.

        Returns
        -------
        dict
            ``regularize`` as a list (or None) and ``min_size``.

        Examples
        --------
        >>> Cleanup(("majority", 1)).to_params()["regularize"]
        ['majority', 1]
        """
        regularize = None if self.regularize is None else list(self.regularize)
        return {"regularize": regularize, "min_size": self.min_size}


def check_regularize(value) -> tuple[str, float] | None:
    """Return ``regularize`` as ``(name, strength)`` or None; ValueError if not allowed.

    Parameters
    ----------
    value : None, str, tuple or list
        None; ``"majority"`` or ``"potts"``; ``("majority", radius)`` with an int radius
        >= 1; ``("potts", beta)`` with a number beta > 0.

    Returns
    -------
    tuple or None
        ``("majority", int)`` or ``("potts", float)``.

    Raises
    ------
    ValueError
        Naming the value and what is allowed.

    Examples
    --------
    >>> check_regularize("potts"), check_regularize(["majority", 2])
    (('potts', 1.0), ('majority', 2))
    >>> check_regularize(("potts", 0))
    Traceback (most recent call last):
    ...
    ValueError: regularize=('potts', 0) is not allowed: the Potts weight beta must be a number > 0
    """
    if value is None:
        return None
    allowed = (
        f"regularize={value!r} is not allowed: use None, 'majority', 'potts', "
        "('majority', radius) or ('potts', beta)"
    )
    if isinstance(value, str):
        if value not in REGULARIZERS:
            raise ValueError(allowed)
        return (value, DEFAULT_STRENGTH[value])
    if not isinstance(value, tuple | list) or len(value) != 2 or value[0] not in REGULARIZERS:
        raise ValueError(allowed)
    name, strength = value
    if name == "majority":
        if isinstance(strength, bool) or not isinstance(strength, Integral) or strength < 1:
            raise ValueError(
                f"regularize={value!r} is not allowed: the majority radius must be an "
                "integer >= 1 (pixels along the finest axis)"
            )
        return (name, int(strength))
    ok = isinstance(strength, Real) and not isinstance(strength, bool)
    if not ok or not math.isfinite(strength) or strength <= 0:
        raise ValueError(
            f"regularize={value!r} is not allowed: the Potts weight beta must be a number > 0"
        )
    return (name, float(strength))


def check_min_size(value) -> int | float | None:
    """Return ``min_size`` checked: None, an int of pixels or a float physical volume.

    Parameters
    ----------
    value : None, int or float
        None (keep every component), an int >= 1 (pixels) or a float > 0 (a volume in the
        units of ``spacing``: pixels times the product of the spacing).

    Returns
    -------
    int, float or None
        The value.

    Raises
    ------
    ValueError
        Naming the value and what is allowed.

    Examples
    --------
    >>> check_min_size(20), check_min_size(2.5)
    (20, 2.5)
    >>> check_min_size(-1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: min_size=-1 is not allowed: use None, an integer >= 1 (pixels) or a number > 0 ...
    """
    if value is None:
        return None
    message = (
        f"min_size={value!r} is not allowed: use None, an integer >= 1 (pixels) or a "
        "number > 0 (a physical volume in the units of spacing)"
    )
    if isinstance(value, bool | np.bool_):
        raise ValueError(message)
    if isinstance(value, Integral):
        if value < 1:
            raise ValueError(message)
        return int(value)
    if not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(message)
    return float(value)


def neighbourhood(spacing: tuple[float, ...], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the neighbour offsets of a pixel and their weights.

    Parameters
    ----------
    spacing : tuple of float
        Pixel size per spatial axis.
    radius : int
        Pixels along the finest axis; a coarser axis reaches as far physically (rounded,
        at least one pixel).

    Returns
    -------
    offsets : numpy.ndarray
        ``(q, n)`` int64 offsets, the pixel itself excluded, in C order.
    weights : numpy.ndarray
        ``(q,)`` finest spacing over the offset's physical length.

    Examples
    --------
    >>> offsets, weights = neighbourhood((2.0, 1.0), 1)
    >>> offsets[:3].tolist(), weights[:3].round(3).tolist()
    ([[-1, -1], [-1, 0], [-1, 1]], [0.447, 0.5, 0.447])
    """
    finest = min(spacing)
    reach = [max(1, int(radius * finest / s + 0.5)) for s in spacing]
    offsets = np.array(
        [o for o in itertools.product(*(range(-r, r + 1) for r in reach)) if any(o)], np.int64
    )
    lengths = np.sqrt(((offsets * np.asarray(spacing)) ** 2).sum(axis=1))
    return offsets, finest / lengths


def halo(regularize: tuple[str, float] | None, spacing: tuple[float, ...]) -> tuple[int, ...]:
    """Return how far (pixels per axis) a label's regularised value can depend on others.

    A chunk extended by this much on every side gives its own pixels exactly as the whole
    image would.

    Parameters
    ----------
    regularize : tuple or None
        Checked ``regularize``.
    spacing : tuple of float
        Pixel size per spatial axis.

    Returns
    -------
    tuple of int
        One depth per spatial axis (zeros for None).

    Examples
    --------
    >>> halo(("majority", 2), (1.0, 1.0)), halo(("potts", 1.0), (1.0, 1.0))
    ((2, 2), (32, 32))
    """
    if regularize is None:
        return (0,) * len(spacing)
    if regularize[0] == "majority":
        return tuple(int(r) for r in np.abs(neighbourhood(spacing, regularize[1])[0]).max(axis=0))
    return (POTTS_SWEEPS * 2 ** len(spacing),) * len(spacing)


@dataclass(frozen=True)
class PixelFeatures:
    """The features of every pixel of a label grid, for the Potts data term and the inertia.

    Attributes
    ----------
    feats : numpy.ndarray
        ``(m, d)`` feature rows (distinct values, or one per pixel).
    rows : numpy.ndarray
        ``(n,)`` row of each pixel of the grid, flat (any value where the label is 0).
    centers : numpy.ndarray
        ``(c, d)`` float64 centres that label pixels (a merged model's fitted centres).
    center_labels : numpy.ndarray
        ``(c,)`` int64 label (1..k) of each centre.
    scale : float
        The mean squared feature distance of a fitted pixel to its centre: the unit of the
        Potts data term.

    Examples
    --------
    >>> data = PixelFeatures(np.array([[0.0], [9.0]]), np.array([0, 1]),
    ...                      np.array([[0.0], [9.0]]), np.array([1, 2]), 1.0)
    >>> data.feats.shape, data.center_labels.tolist()
    ((2, 1), [1, 2])
    """

    feats: np.ndarray
    rows: np.ndarray
    centers: np.ndarray
    center_labels: np.ndarray
    scale: float


def regularize_labels(
    grid: np.ndarray,
    regularize: tuple[str, float],
    spacing: tuple[float, ...],
    data: PixelFeatures | None = None,
    origin: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Return a regularised copy of a label grid (label 0 untouched).

    Parameters
    ----------
    grid : numpy.ndarray
        Labels on the spatial grid, 0 outside the mask.
    regularize : tuple
        Checked ``regularize``: ``("majority", radius)`` or ``("potts", beta)``.
    spacing : tuple of float
        Pixel size per spatial axis.
    data : PixelFeatures, optional
        Required for Potts: the features of the grid's pixels and the centres.
    origin : tuple of int, optional
        Index of ``grid[0, ...]`` in the whole image (the Potts visiting order follows the
        whole image's parity classes); default all 0.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype.

    Examples
    --------
    >>> grid = np.array([[1, 1, 1], [1, 2, 1], [1, 1, 1]], np.uint8)
    >>> regularize_labels(grid, ("majority", 1), (1.0, 1.0))[1, 1]
    np.uint8(1)
    """
    from . import label_kernels  # numba loads on first use, not at import

    shape = np.asarray(grid.shape, np.int64)
    name, strength = regularize
    radius = int(strength) if name == "majority" else 1
    offsets, weights = neighbourhood(spacing, radius)
    flat = np.ascontiguousarray(grid).reshape(-1)
    strides = np.array([math.prod(grid.shape[a + 1 :]) for a in range(grid.ndim)], np.int64)
    deltas = offsets @ strides
    if name == "majority":
        out = np.empty_like(flat)
        k = int(flat.max()) if flat.size else 0
        width = max(grid.shape[-1], 1)

        def vote(rows: slice) -> int:
            return label_kernels.majority_pass(
                flat, out, shape, offsets, deltas, weights, 1.0, k, rows.start, rows.stop
            )

        map_blocks(vote, flat.size // width, max(1, BLOCK_ROWS // width))
        return out.reshape(grid.shape)
    out = flat.copy()
    parity = np.zeros(grid.ndim, np.int64) if origin is None else np.asarray(origin) % 2
    k = int(data.center_labels.max())
    feats = np.ascontiguousarray(data.feats)
    if len(feats) * (k + 1) <= COST_TABLE_ENTRIES:  # distances once per distinct row
        costs = label_kernels.label_costs(feats, data.centers, data.center_labels, k)
    else:
        costs = np.empty((0, k + 1))
    label_kernels.potts_sweeps(
        out,
        shape,
        offsets,
        deltas,
        weights,
        costs,
        feats,
        data.centers,
        data.center_labels,
        data.rows,
        k,
        1.0 / data.scale if data.scale > 0 else 1.0,
        float(strength),
        parity.astype(np.int64),
        POTTS_SWEEPS,
    )
    return out.reshape(grid.shape)


def small_components(grid: np.ndarray, min_size: int | float, spacing) -> np.ndarray:
    """Return a copy of a label grid whose small components joined their surroundings.

    Parameters
    ----------
    grid : numpy.ndarray
        Labels on the spatial grid, 0 outside the mask.
    min_size : int or float
        Pixels (int) or physical volume (float, pixels times the product of ``spacing``).
    spacing : tuple of float
        Pixel size per spatial axis.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; a component with no larger neighbour keeps its label.

    Examples
    --------
    >>> grid = np.array([[1, 2, 1, 1, 3, 3]], np.uint8)
    >>> small_components(grid, 2, (1.0, 1.0)).tolist()
    [[1, 1, 1, 1, 3, 3]]
    """
    from . import label_kernels  # numba loads on first use, not at import

    shape = np.asarray(grid.shape, np.int64)
    flat = np.ascontiguousarray(grid).reshape(-1).copy()
    voxel = float(np.prod(spacing)) if isinstance(min_size, float) else 1.0
    while True:
        component, sizes = label_kernels.components(flat, shape)
        small = sizes * voxel < min_size
        if not small.any():
            break
        winners = label_kernels.boundary_winners(flat, component, small, shape)
        if not winners.any():
            break
        label_kernels.apply_winners(flat, component, winners)
    return flat.reshape(grid.shape)


def clean_labels(
    grid: np.ndarray,
    cleanup: Cleanup,
    spacing: tuple[float, ...],
    data: PixelFeatures | None = None,
    origin: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Regularise a label grid, then merge its small components: what ``cleanup`` says.

    Parameters
    ----------
    grid : numpy.ndarray
        Labels on the spatial grid, 0 outside the mask (never modified).
    cleanup : Cleanup
        What to do.
    spacing : tuple of float
        Pixel size per spatial axis.
    data : PixelFeatures, optional
        Required for Potts.
    origin : tuple of int, optional
        Index of ``grid[0, ...]`` in the whole image, for a chunk.

    Returns
    -------
    numpy.ndarray
        The cleaned labels (``grid`` itself when there is nothing to do).

    Examples
    --------
    >>> grid = np.array([[1, 1, 2, 1, 1]], np.uint8)
    >>> clean_labels(grid, Cleanup(min_size=2), (1.0, 1.0)).tolist()
    [[1, 1, 1, 1, 1]]
    """
    if cleanup.regularize is not None:
        grid = regularize_labels(grid, cleanup.regularize, spacing, data, origin)
    if cleanup.min_size is not None:
        grid = small_components(grid, cleanup.min_size, spacing)
    return grid
