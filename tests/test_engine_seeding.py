"""Greedy k-means++ seeding, pruned by the triangle inequality, against a brute-force numpy
seeding that computes every distance and draws from the same generator: the centres must be
identical, not merely close."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_kmeans.engine import blocks, distances, kernels
from napari_kmeans.engine.seeding import TooFewDistinctRows, greedy_kmeans_plusplus, seeding_draws


def sqdist(X, point):
    """Squared float64 distances in the kernels' order of summation over the features."""
    total = np.zeros(len(X))
    for j in range(X.shape[1]):
        total += (X[:, j].astype(np.float64) - point[j]) ** 2
    return total


def block_sum(terms, block_rows):
    """Sum in row order within blocks of rows, then the blocks' sums in block order."""
    total = None
    for first in range(0, len(terms), block_rows):
        part = np.cumsum(terms[first : first + block_rows], axis=0)[-1]
        total = part if total is None else total + part
    return total


def oracle_seeding(X, k, weights, rng, start=None, block_rows=blocks.BLOCK_ROWS):
    """Plain greedy k-means++: every distance computed, the same draws as the engine.

    Returns None where too few rows carry weight for ``k`` centres.
    """
    n = len(X)
    draw_weights = np.ones(n) if weights is None else weights
    n_trials = 2 + int(np.log(k))

    def draw(cumulative, size):
        targets = rng.uniform(size=size) * cumulative[-1]
        return np.minimum(np.searchsorted(cumulative, targets, side="right"), n - 1)

    if start is None:
        start = X[draw(np.cumsum(draw_weights), 1)]
    centers = [np.array(c, dtype=np.float64) for c in start]
    closest = np.full(n, np.inf)
    for c in centers:
        closest = np.minimum(closest, sqdist(X, c))
    while len(centers) < k:
        cumulative = np.cumsum(draw_weights * closest)
        if not cumulative[-1] > 0:
            return None
        candidates = X[draw(cumulative, n_trials)].astype(np.float64)
        terms = np.stack(
            [draw_weights * np.minimum(sqdist(X, c), closest) for c in candidates], axis=1
        )
        best = candidates[int(np.argmin(block_sum(terms, block_rows)))]
        closest = np.minimum(closest, sqdist(X, best))
        centers.append(best)
    return np.stack(centers)


@st.composite
def seeding_cases(draw):
    n = draw(st.integers(1, 300))
    d = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layout = draw(st.sampled_from(["normal", "grid", "repeated", "far apart"]))
    if layout == "normal":
        X = rng.normal(size=(n, d)) * 10.0 ** rng.integers(-3, 4)
    elif layout == "grid":  # many duplicates and equal distances
        X = rng.integers(0, 3, (n, d)).astype(np.float64)
    elif layout == "repeated":  # a few rows, each many times
        X = rng.normal(size=(max(1, n // 10), d))[rng.integers(0, max(1, n // 10), n)]
    else:  # clusters far apart: most rows settled by the triangle inequality
        X = rng.normal(size=(n, d)) + 1000.0 * rng.integers(0, 6, (n, 1))
    X = X.astype(draw(st.sampled_from([np.float32, np.float64])))
    weights = draw(st.sampled_from([None, "counts", "real", "some zero"]))
    if weights == "counts":
        weights = rng.integers(1, 1000, n).astype(np.float64)
    elif weights == "real":
        weights = rng.uniform(0.01, 5.0, n)
    elif weights == "some zero":
        weights = rng.integers(0, 3, n).astype(np.float64)
        weights[0] = 1.0
    k = draw(st.integers(1, min(n, 24)))
    return X, k, weights, draw(st.integers(0, 2**32 - 1))


def assert_same_as_oracle(X, k, weights, seed, start=None, block_rows=blocks.BLOCK_ROWS):
    oracle_rng = np.random.default_rng(seed)
    expected = oracle_seeding(X, k, weights, oracle_rng, start, block_rows)
    rng = np.random.default_rng(seed)
    if expected is None:
        with pytest.raises(TooFewDistinctRows):
            greedy_kmeans_plusplus(X.T, k, weights, rng, start=start)
    else:
        np.testing.assert_array_equal(
            greedy_kmeans_plusplus(X.T, k, weights, rng, start=start), expected
        )
        # it took exactly the oracle's draws, no more: seedings drawn ahead in turn
        # (seeding_draws) and run side by side choose what they would one after another
        assert rng.random() == oracle_rng.random()
        ahead = seeding_draws(np.random.default_rng(seed), k, 0 if start is None else len(start))
        np.testing.assert_array_equal(
            greedy_kmeans_plusplus(X.T, k, weights, ahead, start=start), expected
        )


@settings(max_examples=200, deadline=None)
@given(seeding_cases())
def test_seeding_is_exactly_the_brute_force_seeding(case):
    assert_same_as_oracle(*case)


@settings(max_examples=50, deadline=None)
@given(seeding_cases(), st.integers(1, 4))
def test_seeding_continues_exactly_from_given_centres(case, m):
    X, k, weights, seed = case
    m = min(m, k)
    start = X[np.random.default_rng(seed).integers(0, len(X), m)].astype(np.float64)
    assert_same_as_oracle(X, k, weights, seed, start=start)


def test_seeding_over_many_blocks_on_threads(monkeypatch):
    # small blocks: shrink and potentials run on several threads, block sums in block order
    monkeypatch.setattr(blocks, "BLOCK_ROWS", 97)
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(2000, 3)) * 40).round().astype(np.float32)
    weights = rng.integers(1, 50, 2000).astype(np.float64)
    assert_same_as_oracle(X, 40, weights, 11, block_rows=97)


def test_rows_within_reach_are_nearer_their_centre_than_any_candidate():
    """``candidates_reach`` against the distances: a row it settles is never nearer a
    candidate, including rows on the midpoint between a centre and a candidate."""
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(6, 3)) * 10
    candidates = np.concatenate([rng.normal(size=(4, 3)) * 10, centers[:1] + 1e-13])
    between = [
        (1 - t) * centers[o] + t * c
        for o in range(6)
        for c in candidates
        for t in (0.5, 0.4999999, 0.25)
    ]
    near_centres = centers[rng.integers(0, 6, 3000)] + rng.normal(size=(3000, 3))
    X = np.concatenate([near_centres, np.array(between)])
    slack = distances.rounding_slack(X, np.concatenate([centers, candidates]))
    reach = kernels.candidates_reach(candidates, centers, slack)
    to_centres = np.stack([sqdist(X, c) for c in centers], axis=1)
    owner = to_centres.argmin(1)
    closest = to_centres.min(1)
    settled = closest <= reach[owner]
    assert settled.sum() > 1000  # the test means something
    to_candidates = np.stack([sqdist(X, c) for c in candidates], axis=1)
    assert (to_candidates[settled] >= closest[settled, None]).all()
    # the candidate next to centre 0 settles no row of centre 0
    assert reach[0] < 0
