"""suggest_k on images whose number of classes is known."""

import itertools
import math
import tracemalloc

import kmeans1d
import numpy as np
import pytest
from sklearn.metrics import silhouette_score

import napari_kmeans as nk
from napari_kmeans.assess import choose_k
from napari_kmeans.assess.choose_k import _silhouettes
from napari_kmeans.progress import SUGGEST_K


def classes_image(n_classes, seed, channels=3, shape=(80, 80)):
    rng = np.random.default_rng(seed)
    centres = rng.permutation(np.linspace(20, 235, n_classes))
    if channels == 3:
        colours = np.stack([centres, rng.permutation(centres), rng.permutation(centres)], 1)
    else:
        colours = centres[:, None]
    truth = rng.integers(0, n_classes, shape)
    img = colours[truth] + rng.normal(0, 3, (*shape, channels))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


@pytest.mark.parametrize("n_classes", [2, 3, 5, 8])
@pytest.mark.parametrize("channels", [3, 1])
def test_suggestion_matches_the_true_number_of_classes(n_classes, channels):
    img = classes_image(n_classes, seed=n_classes, channels=channels)
    s = nk.suggest_k(img, range(2, 13), seed=0)
    assert s.recommended == n_classes, s.reason
    assert s.k == tuple(range(2, 13))
    assert len(s.inertia) == len(s.silhouette) == len(s.bic) == 11
    pairs = zip(s.inertia, s.inertia[1:], strict=False)
    assert all(b <= a * (1 + 1e-9) for a, b in pairs)  # more clusters never fit worse
    assert str(n_classes) in s.reason


def test_default_range_stops_at_the_number_of_distinct_values():
    img = np.repeat(np.array([[0, 60, 120, 180, 240]], np.uint8), 20, axis=0)
    s = nk.suggest_k(img)
    assert s.k == (2, 3, 4, 5) and s.recommended == 5


def test_constant_image_suggests_one_cluster():
    s = nk.suggest_k(np.full((10, 10, 3), 7, np.uint8))
    assert s.recommended == 1 and "single value" in s.reason


def test_silhouette_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    labels = rng.integers(0, 4, 300)
    assert _silhouettes(x, [labels])[0] == pytest.approx(silhouette_score(x, labels), abs=1e-9)


def test_scores_are_reproducible_and_json_friendly():
    img = classes_image(3, seed=1)
    a, b = nk.suggest_k(img, [2, 3, 4], seed=5), nk.suggest_k(img, [2, 3, 4], seed=5)
    assert a == b
    assert set(a.to_dict()) == {"k", "inertia", "silhouette", "bic", "recommended", "reason"}
    assert all(type(v) is float for v in a.inertia + a.silhouette + a.bic)
    assert not any(math.isnan(v) for v in a.silhouette)


@pytest.mark.parametrize("k_range", [range(0, 3), [2, 2.5], [], range(2, 10**6), "abc"])
def test_bad_k_range_is_refused(k_range):
    with pytest.raises(ValueError, match="k_range"):
        nk.suggest_k(classes_image(3, seed=2), k_range)


def test_silhouettes_in_blocks_and_groups_match_scikit_learn(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(250, 3))
    labelings = [rng.integers(0, k, 250) for k in (2, 3, 7)] + [np.zeros(250, int)]
    expected = [silhouette_score(x, labels) for labels in labelings[:3]]
    monkeypatch.setattr(choose_k, "SILHOUETTE_BLOCK", 1000)  # 4 rows a block, 1 labelling a group
    blocks = []
    scores = choose_k._silhouettes(x, labelings, lambda: blocks.append(1))
    np.testing.assert_allclose(scores[:3], expected, atol=1e-9)
    assert math.isnan(scores[3])
    assert len(blocks) == 3 * math.ceil(250 / 4)  # a pass over the blocks per group


def test_large_silhouette_sample_stays_within_bounded_memory():
    img = classes_image(4, seed=3, shape=(120, 120))
    tracemalloc.start()
    try:
        nk.suggest_k(img, [3, 4, 5], sample_size=8000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2**20  # a dense 8000 x 8000 float64 matrix alone is 488 MiB


def test_progress_names_each_k_and_a_raise_stops_the_work():
    img = classes_image(3, seed=4)
    seen = []
    nk.suggest_k(img, range(2, 7), progress=lambda *a: seen.append(a))
    assert {stage for stage, _, _ in seen} == {SUGGEST_K}
    assert {total for _, _, total in seen} == {5}
    assert [done for _, done, _ in seen][-1] == 5
    assert set(range(5)) <= {done for _, done, _ in seen}
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(seen))

    class Cancelled(Exception):
        pass

    def cancel_at_third_k(stage, done, total):
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        nk.suggest_k(img, range(2, 7), progress=cancel_at_third_k)


def test_integer_grey_scores_are_exact_optima():
    img = np.random.default_rng(5).gamma(3.0, 3000.0, (200, 300)).astype(np.uint16)
    s = nk.suggest_k(img, [2, 5, 9])
    for k, inertia in zip(s.k, s.inertia, strict=True):
        labels, centers = kmeans1d.cluster(img.ravel(), k)
        x = img.ravel().astype(np.float64)
        optimum = float(((x - np.asarray(centers)[np.asarray(labels)]) ** 2).sum())
        assert inertia == pytest.approx(optimum, rel=1e-9)


def test_float_grey_is_fitted_on_a_sample_close_to_the_optimum():
    img = np.random.default_rng(6).gamma(2.0, 0.2, (600, 600)).astype(np.float32)
    assert len(np.unique(img)) > choose_k.FIT_ROWS
    s = nk.suggest_k(img, [3, 6])
    for k, inertia in zip(s.k, s.inertia, strict=True):
        labels, centers = kmeans1d.cluster(img.ravel(), k)
        x = img.ravel().astype(np.float64)
        optimum = float(((x - np.asarray(centers)[np.asarray(labels)]) ** 2).sum())
        assert optimum * (1 - 1e-9) <= inertia <= optimum * 1.01


def test_values_too_rare_for_the_fitting_sample_still_get_their_clusters():
    # 5 distinct values, two of them one pixel each among 300,000: a 65,536-pixel sample
    # almost surely misses them, yet k=5 is allowed and must be fitted
    img = np.repeat(np.array([0.1, 0.5, 0.9], np.float32), 100_000)
    img[0], img[1] = 0.3, 0.7
    s = nk.suggest_k(img.reshape(300, 1000), [4, 5])
    assert s.inertia[-1] == pytest.approx(0.0, abs=1e-12)


def test_standardize_lets_a_narrow_channel_count():
    # four classes: two levels in a wide channel (0..60000) times two in a narrow one (10/40);
    # the wide channel's noise (sd 1500) hides the narrow channel unless channels are scaled
    rng = np.random.default_rng(4)
    shape = (60, 60)
    wide = rng.integers(0, 2, shape)
    narrow = rng.integers(0, 2, shape)
    img = np.zeros((*shape, 2), np.uint16)
    img[..., 0] = np.clip(np.where(wide, 55000, 5000) + rng.normal(0, 1500, shape), 0, 65535)
    img[..., 1] = np.where(narrow, 40, 10) + rng.integers(0, 2, shape)
    scaled = nk.suggest_k(img, range(2, 9), channel_axis=-1, standardize=True, seed=0)
    plain = nk.suggest_k(img, range(2, 9), channel_axis=-1, seed=0)
    assert scaled.recommended == 4, scaled.reason
    assert plain.recommended != 4, plain.reason
    with pytest.raises(ValueError, match="standardize='yes' is not allowed"):
        nk.suggest_k(img, channel_axis=-1, standardize="yes")
