"""Compiled layers of the optimal 1-D dynamic programme (see ``optimal1d``)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CROSS_CARRIED", "CROSS_HERE", "NO_CROSS", "first_layer", "layer"]

# How a layer tracks where the best path crossed the middle layer (Hirschberg).
NO_CROSS, CROSS_HERE, CROSS_CARRIED = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def first_layer(W, S, Q, a, cost, width):
    """Cost of the single runs ``a..a + t`` for ``t < width``."""
    for t in range(width):
        j = a + t
        w = W[j + 1] - W[a]
        s = S[j + 1] - S[a]
        c = Q[j + 1] - Q[a] - s * s / w
        cost[t] = c if c > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def layer(W, S, Q, prev, cur, prev_cross, cur_cross, split, base, cross, stack, state, budget):
    """Advance one layer by about ``budget`` evaluations; return True when it is complete.

    Layer arrays are offset by ``base`` (the first end position of this layer): ``cur[t]``
    is the best cost of the values up to ``base + t`` in this layer's number of runs,
    ``prev[t]`` that of one run less up to ``base - 1 + t``. The last run starts at
    ``split[t]`` (when ``split`` is not empty); ``cur_cross[t]`` is where the best path
    crossed the middle layer (``cross``: this layer starts the crossing run, or carries it
    on from ``prev_cross``). ``stack`` holds intervals ``(t_lo, t_hi, i_lo, i_hi)`` of end
    offsets with their allowed starts, ``state[0]`` its height.
    """
    work = 0
    sp = state[0]
    keep = len(split) > 0
    while sp > 0 and work < budget:
        sp -= 1
        lo_t = stack[sp, 0]
        hi_t = stack[sp, 1]
        lo = stack[sp, 2]
        hi = stack[sp, 3]
        mid = (lo_t + hi_t) // 2
        j = base + mid
        top = min(j, hi)
        best = np.inf
        arg = lo
        w1 = W[j + 1]
        s1 = S[j + 1]
        q1 = Q[j + 1]
        for i in range(lo, top + 1):
            w = w1 - W[i]
            s = s1 - S[i]
            c = q1 - Q[i] - s * s / w
            if c < 0.0:
                c = 0.0
            v = prev[i - base] + c  # the runs before: values up to i - 1 = (base - 1) + (i - base)
            if v < best:
                best = v
                arg = i
        work += top - lo + 1
        cur[mid] = best
        if keep:
            split[mid] = arg
        if cross == CROSS_HERE:
            cur_cross[mid] = arg
        elif cross == CROSS_CARRIED:
            cur_cross[mid] = prev_cross[arg - base]
        if mid + 1 <= hi_t:
            stack[sp, 0] = mid + 1
            stack[sp, 1] = hi_t
            stack[sp, 2] = arg
            stack[sp, 3] = hi
            sp += 1
        if mid - 1 >= lo_t:
            stack[sp, 0] = lo_t
            stack[sp, 1] = mid - 1
            stack[sp, 2] = lo
            stack[sp, 3] = arg
            sp += 1
    state[0] = sp
    return sp == 0
