"""Compiled row kernels of the engine: nearest centres, Lloyd's bounded re-assignment, seeding.

Every kernel works on one block ``start:stop`` of ``(n, d)`` rows and is compiled once by
numba (``nogil``, cached on disk), so the blocks of ``blocks.map_blocks`` run in parallel on
its threads. The seeding kernels read plain ``(n, d)`` arrays ``X`` (float32 or float64, any
memory layout); the others read ``rows``, the tuple of ``grid_rows.kernel_rows``: stored
columns of any real dtype, then coordinates computed from each row's pixel index (none for
plain arrays). ``_load`` copies one row into a float64 buffer, read once per row, and the
distances are those of ``_sq`` on that buffer. Lloyd without bounds loads ``BATCH_ROWS``
rows at a time into feature columns (``_load_batch``) and computes each centre's distance
to all of them in one loop (``_nearest_batch``), which the compiler runs on vector lanes:
the same numbers, several rows per instruction. Each block accumulates its own sums in row
order and the caller adds the blocks in block order: results never depend on the
number of threads.

Arithmetic
    Every squared distance is ``Σ_j (float64(x_j) − c_j)²`` in float64, summed over ``j`` in
    order, whatever the rows' dtype: the nearest centre of a row is the same wherever it is
    computed (seeding, Lloyd, labelling a later image), lowest index on ties.

Pruning (exact)
    A row whose distance ``u`` to centre ``a`` is known can only be nearer to a centre ``c``
    with ``‖c − a‖ ≤ 2u`` (triangle inequality), so the search walks the centres in order of
    their distance from ``a`` and stops at the first beyond that reach; the rest are at least
    ``‖c − a‖ − u`` away, a lower bound on the second-nearest distance. Lloyd keeps for every
    row an upper bound on the distance to its centre and a lower bound on the distance to any
    other (Hamerly 2010): when the centres move the bounds move by at most the shifts, and a
    row whose upper bound stays below its lower bound, or below half the gap from its centre
    to the nearest other centre, keeps its centre without any distance computed. Bounds are
    widened by ``EPS`` (relative) and ``slack`` (absolute, from the data's magnitude), far
    more than float64 rounding, so a skipped row is always one whose nearest centre a direct
    computation would confirm. By the same argument, k-means++ seeding computes no distance
    from a row to candidates farther from its closest centre than twice the row's distance
    to it.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

__all__ = [
    "EPS",
    "Bounds",
    "ClusterSums",
    "Geometry",
    "assign_block",
    "candidates_reach",
    "centre_geometry",
    "centre_geometry_from",
    "gather_block",
    "inertia_block",
    "integers_block",
    "label_sums_block",
    "nearest_block",
    "own_sqdist_block",
    "potentials_block",
    "scan_block",
    "shrink_block",
    "summary_block",
    "update_block",
]

EPS = 1e-9  # relative widening of every bound
# Up to this many centres, a search scans every centre: branch-free, that is faster than
# the ordered walk when there are few centres to skip.
SCAN_ALL_UP_TO = 24
# Above this many centres no neighbour lists are kept (they take k² memory): every search
# scans every centre, and no row is skipped by the half-gap test.
LISTED_UP_TO = 1024
# Rows loaded and scanned together by the batched kernels (their features in columns).
BATCH_ROWS = 64
# A sort of a neighbour list from the last ranking that moves entries more than this many
# times per entry falls back to a merge sort (the centres moved far since).
_SHIFTS_PER_MEMBER = 8
_JIT = {"nogil": True, "cache": True}


class Geometry(NamedTuple):
    """Read by the kernels: the centres' neighbour lists and how far a search may reach.

    ``order, low_gaps, count, half_gaps`` as ``centre_geometry`` returns them (``count``
    as ``n_listed``); ``limit[a]`` the reach they were made for (inf: every centre listed).
    """

    order: np.ndarray
    low_gaps: np.ndarray
    n_listed: np.ndarray
    limit: np.ndarray
    half_gaps: np.ndarray


class Bounds(NamedTuple):
    """Read and written by the kernels, one entry per row: its centre and Hamerly's bounds.

    ``labels`` the centre, ``upper`` at least the distance to it, ``second`` the
    second-nearest centre and ``lower`` at most the distance to it, ``rest`` at most the
    distance to any other centre.
    """

    labels: np.ndarray
    upper: np.ndarray
    second: np.ndarray
    lower: np.ndarray
    rest: np.ndarray


class ClusterSums(NamedTuple):
    """Added to by the kernels: a block's per-cluster sums.

    Weighted rows ``sums (k, d)``, weights, weighted squared norms, and ``reach`` the
    largest upper bound of the cluster's rows.
    """

    sums: np.ndarray
    weight: np.ndarray
    sqnorm: np.ndarray
    reach: np.ndarray


@numba.njit(inline="always", **_JIT)
def _sq(X, i, centers, c):
    """Squared float64 distance from row ``i`` of ``X`` to ``centers[c]``."""
    s = 0.0
    for j in range(X.shape[1]):
        t = np.float64(X[i, j]) - centers[c, j]
        s += t * t
    return s


@numba.njit(inline="always", **_JIT)
def _centre_gaps(centers, slack):
    """``(k, k)`` gaps between centres, lowered by the rounding margins (inf on the diagonal).

    Each pair is computed once: ``(x − y)²`` and ``(y − x)²`` are the same float64.
    """
    k, d = centers.shape
    gaps = np.empty((k, k))
    for a in range(k):
        gaps[a, a] = np.inf
        for b in range(a + 1, k):
            s = 0.0
            for j in range(d):
                t = centers[a, j] - centers[b, j]
                s += t * t
            gaps[a, b] = gaps[b, a] = np.sqrt(s) * (1 - EPS) - slack
    return gaps


@numba.njit(inline="always", **_JIT)
def _before(key, member, other_key, other_member):
    """Whether ``(key, member)`` sorts before ``(other_key, other_member)``."""
    return key < other_key or (key == other_key and member < other_member)


@numba.njit(**_JIT)
def _merge_sort(keys, members, m, spare_keys, spare_members):
    """Sort ``keys[:m]`` and ``members[:m]`` together by key, equal keys by member.

    Bottom-up merges through the spare arrays: O(m log m) for lists far from sorted.
    """
    width = 1
    src_k, src_m, dst_k, dst_m = keys, members, spare_keys, spare_members
    in_spare = False
    while width < m:
        for lo in range(0, m, 2 * width):
            mid, hi = min(lo + width, m), min(lo + 2 * width, m)
            i, j = lo, mid
            for t in range(lo, hi):
                if j >= hi or (i < mid and not _before(src_k[j], src_m[j], src_k[i], src_m[i])):
                    dst_k[t], dst_m[t] = src_k[i], src_m[i]
                    i += 1
                else:
                    dst_k[t], dst_m[t] = src_k[j], src_m[j]
                    j += 1
        src_k, src_m, dst_k, dst_m = dst_k, dst_m, src_k, src_m
        in_spare = not in_spare
        width *= 2
    if in_spare:  # element by element: a slice copy compiles shape checks and messages
        for t in range(m):
            keys[t], members[t] = src_k[t], src_m[t]


@numba.njit(inline="always", **_JIT)
def _load(rows, i, buf):
    """Copy row ``i`` of ``rows`` (see ``grid_rows.kernel_rows``) into ``buf[0]`` as float64.

    The stored columns come first, then one coordinate per grid axis: the row's pixel index
    (``pixels[i]``, or ``i`` when ``pixels`` is empty) unravelled in C order, looked up in
    that axis's table of feature values.
    """
    values, pixels, grid, reciprocal, axis_values = rows
    c = values.shape[1]
    for j in range(c):
        buf[0, j] = np.float64(values[i, j])
    p = np.int64(i) if len(pixels) == 0 else np.int64(pixels[i])
    for a in range(len(grid) - 1, -1, -1):
        p, r = _split(p, grid[a], reciprocal[a])
        buf[0, c + a] = axis_values[a, r]


@numba.njit(inline="always", **_JIT)
def _split(p, size, reciprocal):
    """``(p // size, p % size)`` for ``0 <= p < 2**52``, ``reciprocal = 1 / size``.

    Through the float64 reciprocal, exact after the fix-up: an integer division per grid
    axis would cost more than the distances.
    """
    q = np.int64(p * reciprocal)
    r = p - q * size
    if r < 0:
        q -= 1
        r += size
    elif r >= size:
        q += 1
        r -= size
    return q, r


@numba.njit(inline="always", **_JIT)
def _load_batch(rows, first, m, xt):
    """Copy rows ``first:first + m`` of ``rows`` into the columns of ``xt`` as float64.

    ``xt[j, t]`` is feature ``j`` of row ``first + t``: the numbers ``_load`` gives, laid
    out so that one feature of consecutive rows is contiguous. When the rows are every
    pixel in order, each run of rows along the last grid axis is unravelled once: its
    last coordinates are a slice of that axis's table, the others constant.
    """
    values, pixels, grid, reciprocal, axis_values = rows
    c = values.shape[1]
    for t in range(m):
        for j in range(c):
            xt[j, t] = np.float64(values[first + t, j])
    last = len(grid) - 1
    if len(pixels) > 0:
        for t in range(m):
            p = np.int64(pixels[first + t])
            for a in range(last, -1, -1):
                p, r = _split(p, grid[a], reciprocal[a])
                xt[c + a, t] = axis_values[a, r]
        return
    t = 0
    while last >= 0 and t < m:
        p, r = _split(np.int64(first + t), grid[last], reciprocal[last])
        run = min(m - t, grid[last] - r)
        for u in range(run):
            xt[c + last, t + u] = axis_values[last, r + u]
        for a in range(last - 1, -1, -1):
            p, ra = _split(p, grid[a], reciprocal[a])
            value = axis_values[a, ra]
            for u in range(run):
                xt[c + a, t + u] = value
        t += run


@numba.njit(inline="always", **_JIT)
def _row_buffer(rows):
    """Return a ``(1, d)`` float64 buffer for one row of ``rows`` (columns + grid axes)."""
    values, _, grid, _, _ = rows
    return np.empty((1, values.shape[1] + len(grid)))


def centre_geometry(centers, slack, limit):
    """Each centre's neighbours within ``limit[a]``, nearest first, and half its nearest gap.

    Returns ``order (k, k)`` (row ``a``: the ``count[a]`` other centres whose gap from ``a``
    is at most ``limit[a]``, nearest first, equal gaps by index), ``low_gaps (k, k)`` (those
    gaps minus rounding margins), ``count (k,)``, and ``half_gaps (k,)`` (half the lowered
    gap from each centre to its nearest other centre; inf for one centre). Every centre left
    out of ``a``'s list is more than ``limit[a]`` from ``a``. Above ``LISTED_UP_TO`` centres
    the lists are empty and the half gaps 0. With every limit inf, ``order`` is a ranking
    for ``centre_geometry_from``.
    """
    k = len(centers)
    listed = k if k <= LISTED_UP_TO else 0  # no (k, k) ranking where no lists are kept
    others = np.arange(1, k, dtype=np.int64)[None, :] if listed else np.empty((0, 0), np.int64)
    # row a: the other centres in index order, a start as good as any for the sort
    ranking = np.empty((listed, listed), np.int64)
    if listed:
        ranking[:, : k - 1] = others - (others <= np.arange(k)[:, None])
    return centre_geometry_from(centers, slack, limit, ranking)


@numba.njit(**_JIT)
def centre_geometry_from(centers, slack, limit, ranking):
    """``centre_geometry`` starting each centre's sort from its row of ``ranking``.

    ``ranking[a, :k-1]`` lists the other centres in any order, ideally nearest first as
    the centres stood a little while ago (a ``centre_geometry`` order with every limit inf,
    or one this function rewrote): an insertion sort then has little to move. A row that
    would take long (more than ``_SHIFTS_PER_MEMBER`` moves per member) is sorted by a
    merge sort instead. Either way a list holds its centres by gap, equal gaps by index.
    ``ranking`` is rewritten: each row's listed centres, in their new order, then the others.
    """
    k = centers.shape[0]
    count = np.zeros(k, np.int64)
    if k > LISTED_UP_TO:
        return np.empty((k, 0), np.int64), np.empty((k, 0)), count, np.zeros(k)
    gaps = _centre_gaps(centers, slack)
    order = np.empty((k, k), np.int64)
    low_gaps = np.empty((k, k))
    half_gaps = np.empty(k)
    keys, spare_keys = np.empty(k), np.empty(k)
    members, spare_members = np.empty(k, np.int64), np.empty(k, np.int64)
    others = np.empty(k, np.int64)
    for a in range(k):
        m, r = 0, 0
        nearest = np.inf
        for t in range(k - 1):
            b = ranking[a, t]
            g = gaps[a, b]
            nearest = min(nearest, g)
            if g <= limit[a]:
                keys[m], members[m] = g, b
                m += 1
            else:
                others[r] = b
                r += 1
        half_gaps[a] = nearest / 2
        budget = _SHIFTS_PER_MEMBER * m
        for t in range(1, m):
            g, b = keys[t], members[t]
            u = t
            while u > 0 and _before(g, b, keys[u - 1], members[u - 1]):
                keys[u], members[u] = keys[u - 1], members[u - 1]
                u -= 1
            keys[u], members[u] = g, b
            budget -= t - u
            if budget < 0:
                break
        if budget < 0:  # far from the ranking: a merge sort
            _merge_sort(keys, members, m, spare_keys, spare_members)
        for t in range(m):
            order[a, t] = ranking[a, t] = members[t]
            low_gaps[a, t] = keys[t]
        for t in range(r):
            ranking[a, m + t] = others[t]
        count[a] = m
    return order, low_gaps, count, half_gaps


@numba.njit(inline="always", **_JIT)
def _keep(c, d2, best, best2, second2):
    """Fold centre ``c`` at squared distance ``d2`` into the nearest and second nearest."""
    second2 = min(second2, max(best2, d2))
    best = c if d2 < best2 else best
    return best, min(best2, d2), second2


@numba.njit(inline="always", **_JIT)
def _scan_all(X, i, centers):
    """Nearest centre of row ``i``, its squared distance and the second-nearest distance.

    Every centre is looked at, in index order (ties to the lowest index), without branches.
    Four centres at a time: four independent sums the processor overlaps (each the sum of
    ``_sq``, term by term in the same order), about a quarter faster than one at a time.
    """
    k, d = centers.shape[0], X.shape[1]
    best, best2, second2 = 0, np.inf, np.inf
    c = 0
    while c + 4 <= k:
        s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
        for j in range(d):
            x = np.float64(X[i, j])
            t0, t1 = x - centers[c, j], x - centers[c + 1, j]
            t2, t3 = x - centers[c + 2, j], x - centers[c + 3, j]
            s0 += t0 * t0
            s1 += t1 * t1
            s2 += t2 * t2
            s3 += t3 * t3
        best, best2, second2 = _keep(c, s0, best, best2, second2)
        best, best2, second2 = _keep(c + 1, s1, best, best2, second2)
        best, best2, second2 = _keep(c + 2, s2, best, best2, second2)
        best, best2, second2 = _keep(c + 3, s3, best, best2, second2)
        c += 4
    for rest in range(c, k):
        best, best2, second2 = _keep(rest, _sq(X, i, centers, rest), best, best2, second2)
    return best, best2, second2


@numba.njit(inline="always", **_JIT)
def _nearest_batch(xt, centers, acc, best, best2):
    """Nearest centre (lowest index on ties) and squared distance of the rows in ``xt``.

    The rows are the ``BATCH_ROWS`` columns of ``xt`` (see ``_load_batch``; columns past
    the rows loaded hold finite leftovers); ``best[t]`` and ``best2[t]`` receive row
    ``t``'s nearest centre and its squared distance, ``acc`` is scratch. Each distance is
    that of ``_sq`` (terms added in feature order, from 0) and the choice that of
    ``_scan_all``; the loops run across a fixed number of rows, so the processor's vector
    lanes compute several rows at once, each exactly as alone.
    """
    k, d = centers.shape
    for t in range(BATCH_ROWS):
        best[t] = 0
        best2[t] = np.inf
    for c in range(k):
        for t in range(BATCH_ROWS):
            acc[t] = 0.0
        for j in range(d):
            centre = centers[c, j]
            for t in range(BATCH_ROWS):
                diff = xt[j, t] - centre
                acc[t] += diff * diff
        for t in range(BATCH_ROWS):
            closer = acc[t] < best2[t]
            best[t] = c if closer else best[t]
            best2[t] = acc[t] if closer else best2[t]


@numba.njit(inline="always", **_JIT)
def _search(X, i, centers, a, da2, geometry, slack):
    """Nearest centre of row ``i`` starting from centre ``a`` (squared distance ``da2``).

    Returns the nearest centre (lowest index on ties), its squared distance, the second
    nearest centre, a lower bound on the distance to it, and a lower bound on the distance
    to every other centre.
    """
    order, low_gaps, count, limit, _ = geometry
    da = np.sqrt(da2) * (1 + EPS) + slack
    if centers.shape[0] <= SCAN_ALL_UP_TO or order.shape[1] == 0 or 2 * da > limit[a]:
        # Few centres, or beyond a's neighbour list: look at every centre. The second
        # distance bounds every other centre; "second" is the row's own centre, whose
        # shift then never makes that bound looser than the rest's.
        best, best2, second2 = _scan_all(X, i, centers)
        second, third2 = best, second2
        rest = np.inf
    else:
        # Scanning stops at centres farther from `a` than `da` + the second-nearest
        # distance: they can be neither nearest nor second nearest, and are at least that far.
        reach = np.inf
        best, best2 = a, da2
        second, second2, third2 = a, np.inf, np.inf
        rest = limit[a] - da  # lower bound on the distance to the centres not examined
        for t in range(count[a]):
            if low_gaps[a, t] > reach:
                rest = low_gaps[a, t] - da
                break
            c = order[a, t]
            d2 = _sq(X, i, centers, c)
            if d2 < best2 or (d2 == best2 and c < best):
                third2 = second2
                second, second2 = best, best2
                best, best2 = c, d2
                reach = np.sqrt(second2) * (1 + EPS) + slack + da
            elif d2 < second2 or (d2 == second2 and c < second):
                third2 = second2
                second, second2 = c, d2
                reach = np.sqrt(second2) * (1 + EPS) + slack + da
            elif d2 < third2:
                third2 = d2
    low_second = np.sqrt(second2) * (1 - EPS) - slack
    return best, best2, second, low_second, min(np.sqrt(third2) * (1 - EPS) - slack, rest)


@numba.njit(inline="always", **_JIT)
def _weight(w, i):
    """Weight of row ``i``: ``w[i]``, or 1 when ``w`` is empty."""
    return 1.0 if len(w) == 0 else w[i]


@numba.njit(inline="always", **_JIT)
def _accumulate(row, r, wi, label, totals):
    """Add the loaded ``row[r]`` (weight ``wi``) to cluster ``label``'s sums."""
    sums, weight, sqnorm, _ = totals
    q = 0.0
    for j in range(row.shape[1]):
        x = row[r, j]
        sums[label, j] += wi * x
        q += x * x
    weight[label] += wi
    sqnorm[label] += wi * q


@numba.njit(**_JIT)
def nearest_block(rows, start, stop, centers, geometry, slack, labels, best_sq):
    """Nearest centre of rows ``start:stop`` into ``labels``, its squared distance in ``best_sq``.

    Reads ``rows``, ``centers``, ``geometry``; writes ``labels[start:stop]`` and
    ``best_sq[start:stop]``. Each search starts from the previous row's centre: neighbouring
    rows are alike.
    """
    row = _row_buffer(rows)
    guess = 0
    for i in range(start, stop):
        _load(rows, i, row)
        d2 = _sq(row, 0, centers, guess)
        best, best2, _, _, _ = _search(row, 0, centers, guess, d2, geometry, slack)
        labels[i] = best
        best_sq[i] = best2
        guess = best


@numba.njit(**_JIT)
def scan_block(rows, start, stop, w, centers, labels, totals):
    """Nearest centre of rows ``start:stop`` by a scan of every centre, and per-cluster sums.

    Lloyd without bounds (few centres): ``BATCH_ROWS`` rows at a time, loaded by
    ``_load_batch`` and scanned by ``_nearest_batch``; then, row by row in order, the sums
    of ``assign_block`` but the largest upper bound (no bounds). Writes ``labels[start:stop]``,
    adds to ``totals`` (a ``ClusterSums``, ``reach`` untouched). Returns the number of rows
    whose label changed, and the weighted sum of the squared distances to the new labels (as
    ``inertia_block`` adds them).
    """
    values, _, grid, _, _ = rows
    xt = np.zeros((values.shape[1] + len(grid), BATCH_ROWS))
    batch = xt.T  # batch[t] is row t of the batch
    acc, best2 = np.empty(BATCH_ROWS), np.empty(BATCH_ROWS)
    best = np.empty(BATCH_ROWS, np.int64)
    changed = 0
    total = 0.0
    for first in range(start, stop, BATCH_ROWS):
        m = min(BATCH_ROWS, stop - first)
        _load_batch(rows, first, m, xt)
        _nearest_batch(xt, centers, acc, best, best2)
        for t in range(m):
            i = first + t
            if labels[i] != best[t]:
                labels[i] = best[t]
                changed += 1
            total += best2[t] if len(w) == 0 else w[i] * best2[t]
            _accumulate(batch, t, _weight(w, i), best[t], totals)
    return changed, total


@numba.njit(**_JIT)
def assign_block(rows, start, stop, w, centers, geometry, slack, bounds, totals):
    """Nearest centre and the bounds of rows ``start:stop``, and their per-cluster sums.

    Reads ``rows``, ``w``, ``centers``, ``geometry``; writes rows ``start:stop`` of
    ``bounds`` (a ``Bounds``); adds the rows to ``totals`` (a ``ClusterSums``).
    """
    labels, upper, second, lower, rest = bounds
    reach = totals.reach
    row = _row_buffer(rows)
    guess = 0
    for i in range(start, stop):
        _load(rows, i, row)
        d2 = _sq(row, 0, centers, guess)
        best, best2, near, low, far = _search(row, 0, centers, guess, d2, geometry, slack)
        labels[i] = best
        second[i] = near
        lower[i] = low
        rest[i] = far
        upper[i] = np.sqrt(best2) * (1 + EPS) + slack
        guess = best
        _accumulate(row, 0, _weight(w, i), best, totals)
        reach[best] = max(reach[best], upper[i])


@numba.njit(**_JIT)
def update_block(
    rows, start, stop, w, centers, geometry, shift, slack, bounds, totals, changes_only
):
    """Re-label rows ``start:stop`` after the centres moved by ``shift``; sums as in assign.

    Reads ``rows``, ``w``, ``centers``, ``geometry``, ``shift``; reads and writes rows
    ``start:stop`` of ``bounds`` (a ``Bounds``); adds to ``totals`` (a ``ClusterSums``).

    ``shift`` holds the widened norms of the moves. Rows their bounds settle are skipped.
    With ``changes_only`` the sums get only the changes: each row that changed centre is
    subtracted from its old cluster and added to its new one, and a row whose bounds settle
    it is not even read (exact only where float64 adds the sums exactly, see
    ``distances.sums_exact``).

    Every row keeps an upper bound on the distance to its centre, and lower bounds on the
    distance to its second-nearest centre and to every other one: they move by those
    centres' shifts. For the rest that is the largest shift, or, better, the largest among
    the centres listed near its own centre ``a``: the others are more than ``limit[a]`` from
    ``a``, so more than ``limit[a] − u`` from the row.

    Returns the number of rows that changed centre.
    """
    order, _, count, limit, half_gaps = geometry
    labels, upper, second, lower, rest = bounds
    reach = totals.reach
    top, top_centre, runner_up = 0.0, -1, 0.0
    for c in range(len(shift)):
        if shift[c] > top:
            top, top_centre, runner_up = shift[c], c, top
        elif shift[c] > runner_up:
            runner_up = shift[c]
    listed = order.shape[1] > 0
    near_shift = np.zeros(len(shift))  # largest shift of the centres listed near each
    for c in range(len(shift)):
        for t in range(count[c]):
            near_shift[c] = max(near_shift[c], shift[order[c, t]])
    row = _row_buffer(rows)
    changed = 0
    for i in range(start, stop):
        a = labels[i]
        u = upper[i] + shift[a]
        low = lower[i] - shift[second[i]]
        far = rest[i] - (runner_up if a == top_centre else top)
        if listed:
            far = max(far, min(rest[i] - near_shift[a], limit[a] - u))
        bound = max(min(low, far), half_gaps[a])
        loaded = u > bound
        if loaded:
            _load(rows, i, row)
            da2 = _sq(row, 0, centers, a)
            u = np.sqrt(da2) * (1 + EPS) + slack
            if u > bound:
                best, best2, near, low, far = _search(row, 0, centers, a, da2, geometry, slack)
                second[i] = near
                u = np.sqrt(best2) * (1 + EPS) + slack
                if best != a:
                    if changes_only:
                        _accumulate(row, 0, -_weight(w, i), a, totals)
                        _accumulate(row, 0, _weight(w, i), best, totals)
                    labels[i] = best
                    a = best
                    changed += 1
        upper[i] = u
        lower[i] = low
        rest[i] = far
        if not changes_only:
            if not loaded:
                _load(rows, i, row)
            _accumulate(row, 0, _weight(w, i), a, totals)
        reach[a] = max(reach[a], u)
    return changed


@numba.njit(**_JIT)
def own_sqdist_block(rows, start, stop, labels, centers, out):
    """Squared distance of rows ``start:stop`` to their own centre ``centers[labels]``."""
    row = _row_buffer(rows)
    for i in range(start, stop):
        _load(rows, i, row)
        out[i] = _sq(row, 0, centers, labels[i])


@numba.njit(**_JIT)
def inertia_block(rows, start, stop, w, labels, centers):
    """Weighted sum of squared distances of rows ``start:stop`` to their own centre."""
    row = _row_buffer(rows)
    total = 0.0
    for i in range(start, stop):
        _load(rows, i, row)
        d2 = _sq(row, 0, centers, labels[i])
        total += d2 if len(w) == 0 else w[i] * d2
    return total


@numba.njit(**_JIT)
def label_sums_block(rows, start, stop, w, labels, sums, weight):
    """Add the weighted rows ``start:stop`` and their weights to their cluster's sums."""
    row = _row_buffer(rows)
    for i in range(start, stop):
        _load(rows, i, row)
        wi = _weight(w, i)
        for j in range(row.shape[1]):
            sums[labels[i], j] += wi * row[0, j]
        weight[labels[i]] += wi


@numba.njit(**_JIT)
def integers_block(rows, start, stop, w):
    """Whether every feature and weight of rows ``start:stop`` is an integer, and how large.

    Returns ``(integral, peak, total)``: the largest magnitude of a feature and the total
    weight, or ``(False, 0, 0)`` from the first value that is not a finite integer
    (``x − floor(x)`` is NaN for NaN and infinities).
    """
    row = _row_buffer(rows)
    peak, total = 0.0, 0.0
    for i in range(start, stop):
        _load(rows, i, row)
        wi = _weight(w, i)
        if wi - np.floor(wi) != 0.0:
            return False, 0.0, 0.0
        total += wi
        for j in range(row.shape[1]):
            x = row[0, j]
            if x - np.floor(x) != 0.0:
                return False, 0.0, 0.0
            peak = max(peak, abs(x))
    return True, peak, total


@numba.njit(**_JIT)
def gather_block(rows, indices, out):
    """Write row ``indices[t]`` of ``rows`` into ``out[t]`` (cast to ``out``'s dtype)."""
    row = _row_buffer(rows)
    for t in range(len(indices)):
        _load(rows, indices[t], row)
        for j in range(row.shape[1]):
            out[t, j] = row[0, j]


@numba.njit(**_JIT)
def summary_block(rows, start, stop, w, shift, low, high, sums, squares):
    """Per-feature extremes and shifted weighted moments of the rows ``start:stop``.

    Lowers ``low`` and raises ``high`` to the finite extremes, and adds ``w_i (x_ij − shift_j)``
    to ``sums[j]`` and its square over ``w_i`` to ``squares[j]``. Returns the number of
    non-finite values met.
    """
    values, _, grid, _, _ = rows
    d = values.shape[1] + len(grid)
    xt = np.empty((d, BATCH_ROWS))
    non_finite = 0
    for first in range(start, stop, BATCH_ROWS):
        m = min(BATCH_ROWS, stop - first)
        _load_batch(rows, first, m, xt)
        for j in range(d):  # one feature at a time: its sums stay in registers
            lowest, highest, total, square = low[j], high[j], sums[j], squares[j]
            for u in range(m):
                x = xt[j, u]
                if not np.isfinite(x):
                    non_finite += 1
                else:
                    lowest = min(lowest, x)
                    highest = max(highest, x)
                wi = _weight(w, first + u)
                t = x - shift[j]
                total += wi * t
                square += wi * t * t
            low[j], high[j], sums[j], squares[j] = lowest, highest, total, square
    return non_finite


@numba.njit(**_JIT)
def candidates_reach(candidates, centers, slack):
    """How near its closest centre a row must be for no candidate centre to be nearer.

    Returns ``reach (j,)``: a row whose closest centre is ``centers[o]``, at squared
    distance ``closest ≤ reach[o]``, lies within half the gap from ``o`` to every candidate,
    so no candidate is nearer to it than ``o`` (triangle inequality), with the rounding
    margins of Lloyd's bounds on both distances: its computed squared distance to each
    candidate is at least ``closest``. A negative entry settles no row.
    """
    m, d = candidates.shape
    j = centers.shape[0]
    reach = np.empty(j)
    for o in range(j):
        nearest = np.inf
        for c in range(m):
            s = 0.0
            for t in range(d):
                g = candidates[c, t] - centers[o, t]
                s += g * g
            nearest = min(nearest, s)
        low_gap = np.sqrt(nearest) * (1 - EPS) - slack
        # ‖x − o‖ ≤ √closest (1 + EPS) + slack must stay within half that lower gap
        half = (low_gap / 2 - slack) / (1 + EPS)
        reach[o] = half * half * (1 - EPS) if half >= 0 else -1.0
    return reach


@numba.njit(**_JIT)
def shrink_block(X, start, stop, w, point, index, closest, owner, mass):
    """``closest[i] = min(closest[i], ‖x_i − point‖²)`` for rows ``start:stop``.

    ``point`` becomes the closest centre ``owner[i] = index`` of the rows it is strictly
    nearer to, whose ``mass[i] = w_i closest[i]`` (the term of the k-means++ potential)
    follows.
    """
    centers = point.reshape(1, -1)
    for i in range(start, stop):
        d2 = _sq(X, i, centers, 0)
        if d2 < closest[i]:
            closest[i] = d2
            owner[i] = index
            mass[i] = _weight(w, i) * d2


@numba.njit(**_JIT)
def potentials_block(X, start, stop, w, closest, owner, mass, candidates, reach):
    """K-means++ potential of rows ``start:stop`` if each candidate centre were added.

    For each candidate: ``Σ w_i min(closest[i], ‖x_i − candidate‖²)``, summed in row order.
    A row with ``closest[i] ≤ reach[owner[i]]`` (``candidates_reach``) is nearer no candidate:
    its term is ``mass[i] = w_i closest[i]`` for each, as min() would give, with no distance
    computed.
    """
    m = candidates.shape[0]
    out = np.zeros(m)
    for i in range(start, stop):
        here = closest[i]
        if here <= reach[owner[i]]:
            for c in range(m):
                out[c] += mass[i]
        else:
            wi = _weight(w, i)
            for c in range(m):
                out[c] += wi * min(_sq(X, i, candidates, c), here)
    return out
