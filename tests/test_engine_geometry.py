"""The centre geometry of Lloyd's pruned search (neighbour lists, gaps, half gaps) against a
plain numpy oracle, whether sorted from scratch or from the ranking of earlier centres."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_kmeans.engine import kernels


def oracle_geometry(centers, slack, limit):
    """Lists by (lowered gap, index), lowered gaps, counts and half gaps, by numpy."""
    k, d = centers.shape
    sq = np.zeros((k, k))
    for j in range(d):  # the kernels' order of the float64 sum over features
        sq += (centers[:, None, j] - centers[None, :, j]) ** 2
    low = np.sqrt(sq) * (1 - kernels.EPS) - slack
    lists, gaps, half = [], [], np.full(k, np.inf)
    for a in range(k):
        others = np.array([b for b in range(k) if b != a], dtype=np.int64)
        if len(others):
            half[a] = (low[a, others] / 2).min()
        members = others[low[a, others] <= limit[a]]
        members = members[np.lexsort((members, low[a, members]))]
        lists.append(members)
        gaps.append(low[a, members])
    return lists, gaps, half


def assert_geometry(result, centers, slack, limit):
    order, low_gaps, count, half_gaps = result
    lists, gaps, half = oracle_geometry(centers, slack, limit)
    np.testing.assert_array_equal(count, [len(m) for m in lists])
    for a, (members, gap) in enumerate(zip(lists, gaps, strict=True)):
        np.testing.assert_array_equal(order[a, : count[a]], members)
        np.testing.assert_array_equal(low_gaps[a, : count[a]], gap)
    np.testing.assert_array_equal(half_gaps, half)


def assert_ranking(ranking, k):
    """Every row of a ranking lists each other centre once."""
    for a in range(k):
        assert sorted(ranking[a, : k - 1].tolist()) == [b for b in range(k) if b != a]


@st.composite
def geometry_cases(draw):
    k = draw(st.integers(1, 60))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):  # a small integer grid: many equal gaps and coincident centres
        centers = rng.integers(0, 4, (k, d)).astype(np.float64)
    else:
        centers = rng.normal(size=(k, d)) * 10.0 ** rng.integers(-3, 4)
    slack = 1e-12 * float(np.abs(centers).max(initial=0.0))
    spread = float(np.ptp(centers)) + 1.0
    limit = rng.uniform(0, 2 * spread, k)
    limit[rng.random(k) < 0.2] = np.inf
    return centers, slack, limit, rng


@settings(max_examples=150, deadline=None)
@given(geometry_cases())
def test_geometry_from_scratch_equals_the_oracle(case):
    centers, slack, limit, _ = case
    assert_geometry(kernels.centre_geometry(centers, slack, limit), centers, slack, limit)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(geometry_cases())
def test_geometry_from_a_ranking_equals_the_oracle_whatever_the_ranking(case):
    centers, slack, limit, rng = case
    k = len(centers)
    unlimited = np.full(k, np.inf)
    # the ranking of centres that then moved a little, or far, or of a random order
    ranking = kernels.centre_geometry(centers, slack, unlimited)[0]
    for step in (1e-3, 1e-1, 10.0):
        centers = centers + rng.normal(size=centers.shape) * step
        result = kernels.centre_geometry_from(centers, slack, limit, ranking)
        assert_geometry(result, centers, slack, limit)
        assert_ranking(ranking, k)
    shuffled = np.empty((k, k), np.int64)
    for a in range(k):
        shuffled[a, : k - 1] = rng.permutation([b for b in range(k) if b != a])
    result = kernels.centre_geometry_from(centers, slack, unlimited, shuffled)
    assert_geometry(result, centers, slack, unlimited)
    assert_ranking(shuffled, k)


def test_many_neighbours_far_from_the_ranking_fall_back_to_a_full_sort():
    # 200 centres in reverse order of their distance from centre 0: every insertion would
    # move every entry, far over the budget; the result is still the oracle's.
    k = 200
    centers = np.arange(k, dtype=np.float64)[:, None] ** 1.5
    limit = np.full(k, np.inf)
    ranking = np.empty((k, k), np.int64)
    for a in range(k):
        others = [b for b in range(k) if b != a]
        ranking[a, : k - 1] = sorted(others, key=lambda b: -abs(centers[b, 0] - centers[a, 0]))
    assert_geometry(kernels.centre_geometry_from(centers, 0.0, limit, ranking), centers, 0.0, limit)
    assert_ranking(ranking, k)


def test_above_the_listed_size_there_are_no_lists():
    k = kernels.LISTED_UP_TO + 1
    centers = np.arange(k, dtype=np.float64)[:, None]
    ranking = np.zeros((k, 0), np.int64)
    for result in (
        kernels.centre_geometry(centers, 0.0, np.full(k, np.inf)),
        kernels.centre_geometry_from(centers, 0.0, np.full(k, np.inf), ranking),
    ):
        order, low_gaps, count, half_gaps = result
        assert order.shape == low_gaps.shape == (k, 0)
        assert not count.any() and not half_gaps.any()
