"""Compiled loops of the label clean-up: majority vote, Potts/ICM, connected components.

Each loop visits every pixel of an n-D label grid (flat, C order) and its neighbours, with
a data-dependent choice per pixel: NumPy would need a k-sized temporary per pixel and
neighbour, scipy has no Potts energy, and a multi-label connected-component pass is one
linear sweep here against one ``scipy.ndimage.label`` call per label. Label 0 is outside
the mask: it never votes, never changes, never joins a component. The glue (neighbourhoods,
scaling, when to run what) is in :mod:`napari_kmeans.outputs.cleanup`.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "boundary_winners",
    "components",
    "label_inertia",
    "majority_pass",
    "potts_sweeps",
]

_JIT = {"nogil": True, "cache": True}


@numba.njit(inline="always", **_JIT)
def _advance(coords, shape) -> None:
    """Move ``coords`` to the next pixel in C order."""
    for axis in range(len(shape) - 1, -1, -1):
        coords[axis] += 1
        if coords[axis] < shape[axis]:
            return
        coords[axis] = 0


@numba.njit(inline="always", **_JIT)
def _inside(coords, offset, shape) -> bool:
    for axis in range(len(shape)):
        c = coords[axis] + offset[axis]
        if c < 0 or c >= shape[axis]:
            return False
    return True


@numba.njit(**_JIT)
def majority_pass(labels, out, shape, offsets, deltas, weights, self_weight) -> int:
    """One synchronous weighted majority vote: ``out[p]`` from ``labels`` around ``p``.

    A pixel keeps its label when it ties for the most votes, else takes the lowest label
    of the most voted. Returns how many pixels changed.
    """
    n = labels.size
    k = 0
    for p in range(n):
        k = max(k, labels[p])
    votes = np.zeros(k + 1)
    coords = np.zeros(len(shape), np.int64)
    changed = 0
    for p in range(n):
        current = labels[p]
        out[p] = current
        if current != 0:
            votes[current] += self_weight
            for j in range(len(deltas)):
                if _inside(coords, offsets[j], shape):
                    votes[labels[p + deltas[j]]] += weights[j]
            votes[0] = -1.0
            best, most = current, votes[current]
            for j in range(len(deltas)):
                if _inside(coords, offsets[j], shape):
                    other = labels[p + deltas[j]]
                    if votes[other] > most or (
                        votes[other] == most and best != current and other < best
                    ):
                        best, most = other, votes[other]
            votes[current] = 0.0
            for j in range(len(deltas)):
                if _inside(coords, offsets[j], shape):
                    votes[labels[p + deltas[j]]] = 0.0
            votes[0] = 0.0
            if best != current:
                out[p] = best
                changed += 1
        _advance(coords, shape)
    return changed


@numba.njit(**_JIT)
def potts_sweeps(
    labels,
    shape,
    offsets,
    deltas,
    weights,
    feats,
    rows,
    centers,
    center_labels,
    inv_scale,
    beta,
    origin,
    max_sweeps,
) -> int:
    """Run iterated conditional modes on the Potts energy in place; return the sweeps run.

    Energy of label l at pixel p: ``min_j |x_p - c_j|² · inv_scale + beta · Σ w`` over the
    centres j of label l and the neighbours voting another label. A sweep visits the 2^n
    parity classes of the pixels (``(coord + origin) mod 2`` per axis, bit i for axis i) in
    order, each in C order; pixels of one class are never neighbours (offsets of -1..1), so
    a class is updated as if at once. A pixel keeps its label when it ties for the lowest
    energy, else takes the lowest label of those tied. Stops after a sweep that changed
    nothing.
    """
    n = labels.size
    ndim = len(shape)
    k = 0
    for j in range(len(center_labels)):
        k = max(k, center_labels[j])
    votes = np.zeros(k + 1)
    cost = np.empty(k + 1)
    coords = np.zeros(ndim, np.int64)
    d = feats.shape[1]
    for sweep in range(max_sweeps):
        changed = 0
        for parity in range(1 << ndim):
            coords[:] = 0
            for p in range(n):
                current = labels[p]
                colour = 0
                for axis in range(ndim):
                    colour |= ((coords[axis] + origin[axis]) & 1) << axis
                if current != 0 and colour == parity:
                    total = 0.0
                    for j in range(len(deltas)):
                        if _inside(coords, offsets[j], shape):
                            other = labels[p + deltas[j]]
                            if other != 0:
                                votes[other] += weights[j]
                                total += weights[j]
                    for label in range(k + 1):
                        cost[label] = np.inf
                    row = rows[p]
                    for c in range(len(center_labels)):
                        sq = 0.0
                        for f in range(d):
                            diff = np.float64(feats[row, f]) - centers[c, f]
                            sq += diff * diff
                        label = center_labels[c]
                        if sq < cost[label]:
                            cost[label] = sq
                    best = current
                    lowest = cost[current] * inv_scale + beta * (total - votes[current])
                    for label in range(1, k + 1):
                        energy = cost[label] * inv_scale + beta * (total - votes[label])
                        if energy < lowest or (
                            energy == lowest and best != current and label < best
                        ):
                            best, lowest = label, energy
                    for j in range(len(deltas)):
                        if _inside(coords, offsets[j], shape):
                            votes[labels[p + deltas[j]]] = 0.0
                    if best != current:
                        labels[p] = best
                        changed += 1
                _advance(coords, shape)
        if changed == 0:
            return sweep + 1
    return max_sweeps


@numba.njit(inline="always", **_JIT)
def _root(parent, p):
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@numba.njit(**_JIT)
def components(labels, shape):
    """Face-connected components of equal non-zero labels.

    Returns ``(component, sizes)``: the component of each pixel (-1 for label 0), numbered
    in the order of their first pixel in C order, and the pixels of each.
    """
    n = labels.size
    ndim = len(shape)
    strides = np.ones(ndim, np.int64)
    for axis in range(ndim - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    parent = np.arange(n)
    coords = np.zeros(ndim, np.int64)
    for p in range(n):
        label = labels[p]
        if label != 0:
            for axis in range(ndim):
                if coords[axis] > 0:
                    q = p - strides[axis]
                    if labels[q] == label:
                        a, b = _root(parent, p), _root(parent, q)
                        if a != b:  # the smaller index is the root: roots come first
                            if a < b:
                                parent[b] = a
                            else:
                                parent[a] = b
        _advance(coords, shape)
    component = np.full(n, -1, np.int64)
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
    strides = np.ones(ndim, np.int64)
    for axis in range(ndim - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    k = 0
    for p in range(n):
        k = max(k, labels[p])
    seen = np.empty(2 * ndim, np.int64)
    coords = np.zeros(ndim, np.int64)
    keys = np.empty(16, np.int64)
    n_keys = 0
    for q in range(n):
        if labels[q] != 0 and not small[component[q]]:
            n_seen = 0
            for axis in range(ndim):
                for step in (-1, 1):
                    c = coords[axis] + step
                    if 0 <= c < shape[axis]:
                        p = q + step * strides[axis]
                        owner = component[p]
                        if owner >= 0 and small[owner]:
                            fresh = True
                            for s in range(n_seen):
                                if seen[s] == owner:
                                    fresh = False
                            if fresh:
                                seen[n_seen] = owner
                                n_seen += 1
            for s in range(n_seen):
                if n_keys == len(keys):
                    grown = np.empty(2 * len(keys), np.int64)
                    grown[:n_keys] = keys
                    keys = grown
                keys[n_keys] = seen[s] * (k + 1) + labels[q]
                n_keys += 1
        _advance(coords, shape)
    keys = np.sort(keys[:n_keys])
    winners = np.zeros(len(small), np.int64)
    most = np.zeros(len(small), np.int64)
    start = 0
    while start < n_keys:
        stop = start
        while stop < n_keys and keys[stop] == keys[start]:
            stop += 1
        owner, label = keys[start] // (k + 1), keys[start] % (k + 1)
        if stop - start > most[owner]:  # keys ascend by label: ties keep the lowest
            most[owner], winners[owner] = stop - start, label
        start = stop
    return winners


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
