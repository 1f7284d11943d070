"""Compiled loops of the label clean-up: majority vote, Potts/ICM, connected components.

Each loop visits every pixel of an n-D label grid (flat, C order) and its neighbours, with
a data-dependent choice per pixel: NumPy would need a k-sized temporary per pixel and
neighbour, scipy has no Potts energy, and a multi-label connected-component pass is one
linear sweep here against one ``scipy.ndimage.label`` call per label. Label 0 is outside
the mask: it never votes, never changes, never joins a component. The glue (neighbourhoods,
scaling, when to run what) is in :mod:`napari_kmeans.outputs.cleanup`.

The grid is walked row by row (a row: the last axis): the coordinates of the other axes
and whether a row lies far enough from the edges are found once per row, so that inside
pixels read their neighbours without bounds checks.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "apply_winners",
    "boundary_winners",
    "components",
    "label_costs",
    "label_inertia",
    "majority_pass",
    "potts_sweeps",
]

_JIT = {"nogil": True, "cache": True}


@numba.njit(inline="always", **_JIT)
def _next_row(coords, shape) -> None:
    """Move ``coords`` (the last axis aside) to the next row in C order."""
    for axis in range(len(shape) - 2, -1, -1):
        coords[axis] += 1
        if coords[axis] < shape[axis]:
            return
        coords[axis] = 0


@numba.njit(inline="always", **_JIT)
def _row_inside(coords, reach, shape) -> bool:
    """Whether a row is at least ``reach`` from the edges on every axis but the last."""
    for axis in range(len(shape) - 1):
        if coords[axis] < reach[axis] or coords[axis] >= shape[axis] - reach[axis]:
            return False
    return True


@numba.njit(inline="always", **_JIT)
def _inside(coords, offsets, j, shape) -> bool:
    for axis in range(len(shape)):
        c = coords[axis] + offsets[j, axis]
        if c < 0 or c >= shape[axis]:
            return False
    return True


@numba.njit(**_JIT)
def _reach(offsets, ndim):
    reach = np.zeros(ndim, np.int64)
    for j in range(offsets.shape[0]):
        for axis in range(ndim):
            reach[axis] = max(reach[axis], abs(offsets[j, axis]))
    return reach


@numba.njit(**_JIT)
def majority_pass(
    labels, out, shape, offsets, deltas, weights, self_weight, k, first_row, stop_row
) -> int:
    """One synchronous weighted majority vote of rows ``first_row:stop_row`` into ``out``.

    ``out[p]`` comes from ``labels`` around ``p`` (labels up to ``k``): a pixel keeps its
    label when it ties for the most votes, else takes the lowest label of the most voted.
    Row ranges only read ``labels``, so they can run at once. Returns how many pixels
    changed.
    """
    ndim = len(shape)
    width = shape[ndim - 1]
    reach = _reach(offsets, ndim)
    row_strides = _strides(shape[:-1]) if ndim > 1 else np.ones(0, np.int64)
    changed = 0
    votes = np.zeros(k + 1)
    coords = np.zeros(ndim, np.int64)
    for row in range(first_row, stop_row):
        for axis in range(ndim - 1):
            coords[axis] = (row // row_strides[axis]) % shape[axis]
        row_inside = _row_inside(coords, reach, shape)
        base = row * width
        for x in range(width):
            p = base + x
            current = labels[p]
            out[p] = current
            if current == 0:
                continue
            coords[ndim - 1] = x
            inside = row_inside and reach[ndim - 1] <= x < width - reach[ndim - 1]
            if inside:  # most pixels: every neighbour agrees, nothing to count
                uniform = True
                for j in range(len(deltas)):
                    if labels[p + deltas[j]] != current:
                        uniform = False
                        break
                if uniform:
                    continue
            votes[current] += self_weight
            for j in range(len(deltas)):
                if inside or _inside(coords, offsets, j, shape):
                    votes[labels[p + deltas[j]]] += weights[j]
            votes[0] = -1.0  # outside the mask: never chosen
            best, most = current, votes[current]
            for j in range(len(deltas)):
                if inside or _inside(coords, offsets, j, shape):
                    other = labels[p + deltas[j]]
                    if votes[other] > most or (
                        votes[other] == most and best != current and other < best
                    ):
                        best, most = other, votes[other]
            votes[current] = 0.0
            for j in range(len(deltas)):
                if inside or _inside(coords, offsets, j, shape):
                    votes[labels[p + deltas[j]]] = 0.0
            votes[0] = 0.0
            if best != current:
                out[p] = best
                changed += 1
    return changed


@numba.njit(inline="always", **_JIT)
def _costs_of(row, centers, center_labels, out) -> None:
    out[:] = np.inf
    for c in range(len(center_labels)):
        sq = 0.0
        for f in range(len(row)):
            diff = np.float64(row[f]) - centers[c, f]
            sq += diff * diff
        label = center_labels[c]
        if sq < out[label]:
            out[label] = sq


@numba.njit(**_JIT)
def label_costs(feats, centers, center_labels, k):
    """Return ``(m, k + 1)`` squared distance of each row to the nearest centre of each label."""
    costs = np.empty((feats.shape[0], k + 1))
    for i in range(feats.shape[0]):
        _costs_of(feats[i], centers, center_labels, costs[i])
    return costs


@numba.njit(**_JIT)
def potts_sweeps(
    labels,
    shape,
    offsets,
    deltas,
    weights,
    costs,
    feats,
    centers,
    center_labels,
    rows,
    k,
    inv_scale,
    beta,
    origin,
    max_sweeps,
) -> int:
    """Run iterated conditional modes on the Potts energy in place; return the sweeps run.

    Energy of label l at pixel p: ``costs[rows[p], l] · inv_scale + beta · Σ w`` over the
    neighbours voting another label; with an empty ``costs`` table the squared distances to
    the centres of each label are computed per visit (as :func:`label_costs` does). A sweep
    visits the 2^n parity classes of the pixels (``(coord + origin) mod 2`` per axis, bit i
    for axis i) in order, each in C order;
    pixels of one class are never neighbours (offsets of -1..1), so a class is updated as
    if at once. A pixel keeps its label when it ties for the lowest energy, else takes the
    lowest label of those tied. A pixel none of whose neighbours changed since it was last
    visited would choose the same again, so it is skipped. Stops after a sweep that changed
    nothing.
    """
    n = labels.size
    ndim = len(shape)
    if n == 0:
        return 0
    width = shape[ndim - 1]
    reach = _reach(offsets, ndim)
    votes = np.zeros(k + 1)
    row_costs = np.empty(k + 1)
    tabled = costs.shape[0] > 0
    dirty = np.ones(n, np.uint8)
    coords = np.zeros(ndim, np.int64)
    for sweep in range(max_sweeps):
        changed = 0
        for parity in range(1 << ndim):
            coords[:] = 0
            first = ((parity >> (ndim - 1)) & 1) ^ (origin[ndim - 1] & 1)
            for row in range(n // width):
                in_class = True
                for axis in range(ndim - 1):
                    if ((coords[axis] + origin[axis]) & 1) != ((parity >> axis) & 1):
                        in_class = False
                if in_class:
                    row_inside = _row_inside(coords, reach, shape)
                    base = row * width
                    for x in range(first, width, 2):
                        p = base + x
                        current = labels[p]
                        if current == 0 or dirty[p] == 0:
                            continue
                        dirty[p] = 0
                        coords[ndim - 1] = x
                        inside = row_inside and reach[ndim - 1] <= x < width - reach[ndim - 1]
                        total = 0.0
                        for j in range(len(deltas)):
                            if inside or _inside(coords, offsets, j, shape):
                                other = labels[p + deltas[j]]
                                if other != 0:
                                    votes[other] += weights[j]
                                    total += weights[j]
                        if tabled:
                            row_costs[:] = costs[rows[p]]
                        else:
                            _costs_of(feats[rows[p]], centers, center_labels, row_costs)
                        best = current
                        lowest = row_costs[current] * inv_scale + beta * (total - votes[current])
                        for label in range(1, k + 1):
                            energy = row_costs[label] * inv_scale + beta * (total - votes[label])
                            if energy < lowest or (
                                energy == lowest and best != current and label < best
                            ):
                                best, lowest = label, energy
                        for j in range(len(deltas)):
                            if inside or _inside(coords, offsets, j, shape):
                                votes[labels[p + deltas[j]]] = 0.0
                        if best != current:
                            labels[p] = best
                            changed += 1
                            for j in range(len(deltas)):
                                if inside or _inside(coords, offsets, j, shape):
                                    dirty[p + deltas[j]] = 1
                _next_row(coords, shape)
        if changed == 0:
            return sweep + 1
    return max_sweeps


@numba.njit(inline="always", **_JIT)
def _root(parent, p):
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@numba.njit(inline="always", **_JIT)
def _union(parent, p, q) -> None:
    a, b = _root(parent, p), _root(parent, q)
    if a < b:  # the smaller index is the root: roots come first in C order
        parent[b] = a
    elif b < a:
        parent[a] = b


@numba.njit(**_JIT)
def _strides(shape):
    ndim = len(shape)
    strides = np.ones(ndim, np.int64)
    for axis in range(ndim - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    return strides


@numba.njit(**_JIT)
def components(labels, shape):
    """Face-connected components of equal non-zero labels.

    Returns ``(component, sizes)``: the component of each pixel (-1 for label 0), numbered
    in the order of their first pixel in C order, and the pixels of each.
    """
    n = labels.size
    ndim = len(shape)
    component = np.full(n, -1, np.int64)
    if n == 0:
        return component, np.zeros(0, np.int64)
    width = shape[ndim - 1]
    strides = _strides(shape)
    parent = np.arange(n)
    coords = np.zeros(ndim, np.int64)
    for row in range(n // width):
        base = row * width
        for x in range(width):
            p = base + x
            label = labels[p]
            if label == 0:
                continue
            if x > 0 and labels[p - 1] == label:
                _union(parent, p, p - 1)
            for axis in range(ndim - 1):
                if coords[axis] > 0 and labels[p - strides[axis]] == label:
                    _union(parent, p, p - strides[axis])
        _next_row(coords, shape)
    count = 0
    for p in range(n):
        if labels[p] != 0:
            r = _root(parent, p)
            if r == p:
                component[p] = count
                count += 1
            else:
                component[p] = component[r]
    sizes = np.zeros(count, np.int64)
    for p in range(n):
        if component[p] >= 0:
            sizes[component[p]] += 1
    return component, sizes


@numba.njit(**_JIT)
def boundary_winners(labels, component, small, shape):
    """Label of the most pixels on each small component's outer boundary, 0 when none.

    The outer boundary of a component: the pixels face-adjacent to it, of a component that
    is not small (label 0 excluded). Each boundary pixel counts once per component it
    touches; ties go to the lowest label.
    """
    n = labels.size
    ndim = len(shape)
    n_components = len(small)
    winners = np.zeros(n_components, np.int64)
    if n == 0:
        return winners
    strides = _strides(shape)
    k = 0
    for p in range(n):
        k = max(k, labels[p])
    # the pixels of the small components, grouped by component (a counting sort)
    starts = np.zeros(n_components + 1, np.int64)
    for p in range(n):
        c = component[p]
        if c >= 0 and small[c]:
            starts[c + 1] += 1
    for c in range(n_components):
        starts[c + 1] += starts[c]
    members = np.empty(starts[n_components], np.int64)
    filled = starts[:-1].copy()
    for p in range(n):
        c = component[p]
        if c >= 0 and small[c]:
            members[filled[c]] = p
            filled[c] += 1
    counted = np.full(n, -1, np.int64)  # the last component each pixel was counted for
    votes = np.zeros(k + 1, np.int64)
    for c in range(n_components):
        if not small[c]:
            continue
        best, most = 0, 0
        for i in range(starts[c], starts[c + 1]):
            p = members[i]
            rest = p
            for axis in range(ndim):
                coord = rest // strides[axis]
                rest -= coord * strides[axis]
                for step in (-1, 1):
                    if 0 <= coord + step < shape[axis]:
                        q = p + step * strides[axis]
                        owner = component[q]
                        if owner >= 0 and not small[owner] and counted[q] != c:
                            counted[q] = c
                            label = labels[q]
                            votes[label] += 1
                            if votes[label] > most or (votes[label] == most and label < best):
                                best, most = label, votes[label]
        winners[c] = best
        for i in range(starts[c], starts[c + 1]):  # clear the votes this component cast
            p = members[i]
            rest = p
            for axis in range(ndim):
                coord = rest // strides[axis]
                rest -= coord * strides[axis]
                for step in (-1, 1):
                    if 0 <= coord + step < shape[axis]:
                        votes[labels[p + step * strides[axis]]] = 0
    return winners


@numba.njit(**_JIT)
def apply_winners(labels, component, winners) -> None:
    """Give every pixel of a component with a winner that label, in place."""
    for p in range(labels.size):
        c = component[p]
        if c >= 0 and winners[c] > 0:
            labels[p] = winners[c]


@numba.njit(**_JIT)
def label_inertia(feats, rows, labels, centers) -> float:
    """Sum over labelled pixels of the squared distance of their features to their centre."""
    total = 0.0
    for p in range(labels.size):
        label = labels[p]
        if label != 0:
            sq = 0.0
            for f in range(feats.shape[1]):
                diff = np.float64(feats[rows[p], f]) - centers[label - 1, f]
                sq += diff * diff
            total += sq
    return total
