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
    img = np.repeat(np.repeat(np.array([[0, 60, 120, 180, 240]], np.uint8), 20, axis=0), 8, axis=1)
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
    assert set(a.to_dict()) == {
        "k",
        "inertia",
        "silhouette",
        "bic",
        "recommended",
        "reason",
        "coherence",
        "candidates",
    }
    assert all(type(v) is float for v in a.inertia + a.silhouette + a.bic + a.coherence)
    assert all(type(v) is int for v in a.candidates) and a.candidates[0] == a.recommended
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
        nk.suggest_k(img, standardize="yes")


def blobs_image(n_classes, seed, shape=(96, 96), channels=1, noise=4.0):
    """Background and n_classes - 1 kinds of solid discs (or balls), well apart in value."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, int)
    grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij", sparse=True)
    for i in range(4 * n_classes):
        centre = rng.uniform(0, shape)
        r2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        truth[r2 <= rng.uniform(6, 11) ** 2] = 1 + i % (n_classes - 1)
    levels = np.linspace(20, 235, n_classes)
    if channels == 1:
        colours = levels[:, None]
    else:
        colours = np.stack([levels, rng.permutation(levels), rng.permutation(levels)], 1)
    img = colours[truth] + rng.normal(0, noise, (*shape, channels))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return (img[..., 0] if channels == 1 else img), truth


@pytest.mark.parametrize(
    ("n_classes", "shape", "channels"),
    [
        (2, (96, 96), 1),
        (3, (96, 96), 3),
        (4, (96, 96), 1),
        (5, (128, 128), 3),
        (3, (20, 48, 48), 1),
    ],
)
def test_regions_of_known_number_of_classes(n_classes, shape, channels):
    img, truth = blobs_image(n_classes, seed=n_classes, shape=shape, channels=channels)
    assert len(np.unique(truth)) == n_classes
    s = nk.suggest_k(img, range(2, 10), seed=0)
    assert s.recommended == n_classes, s.reason
    assert s.candidates[0] == n_classes and len(s.candidates) == 2
    assert abs(s.candidates[1] - n_classes) == 1
    assert len(s.coherence) == len(s.k)
    assert s.reason.startswith(f"k = {n_classes}:")
    assert "BIC" not in s.reason and "silhouette" not in s.reason


def brute_force_coherence(labels, k):
    """Per cluster: same-cluster neighbour pairs / all its neighbour pairs, pixel by pixel."""
    same, total = [0] * (k + 1), [0] * (k + 1)
    for index in itertools.product(*(range(n) for n in labels.shape)):
        here = labels[index]
        if here == 0:
            continue
        for axis in range(labels.ndim):
            for step in (-1, 1):
                other = list(index)
                other[axis] += step
                if not 0 <= other[axis] < labels.shape[axis] or labels[tuple(other)] == 0:
                    continue
                total[here] += 1
                same[here] += labels[tuple(other)] == here
    return [s / t if t else math.nan for s, t in zip(same[1:], total[1:], strict=True)]


@pytest.mark.parametrize("shape", [(7, 9), (4, 5, 6), (13,)])
def test_coherence_matches_a_pixel_by_pixel_count(shape, monkeypatch):
    rng = np.random.default_rng(len(shape))
    labels = rng.integers(0, 4, shape)  # 0: not clustered
    labels.reshape(-1)[0] = 3
    monkeypatch.setattr(choose_k, "SLAB", 5)  # several slabs, pairs across their ends
    checks = []
    coherence, share = choose_k._coherence(labels, 3, lambda: checks.append(1))
    np.testing.assert_allclose(coherence, brute_force_coherence(labels, 3), equal_nan=True)
    counts = np.array([(labels == j).sum() for j in (1, 2, 3)])
    np.testing.assert_allclose(share, counts / counts.sum())
    assert len(checks) >= 2


def test_bic_matches_the_gaussian_likelihood_by_hand():
    from scipy.stats import norm

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(6, 1, (30, 2))])
    labels = np.repeat([0, 1], [50, 30])
    centres = np.array([x[labels == j].mean(axis=0) for j in (0, 1)])
    inertia = float(((x - centres[labels]) ** 2).sum())
    variance = inertia / x.size
    log_likelihood = sum(
        np.log(np.mean(labels == labels[i]))
        + norm.logpdf(x[i], centres[labels[i]], variance**0.5).sum()
        for i in range(len(x))
    )
    parameters = 2 * 2 + 1 + 1
    expected = -2 * log_likelihood + parameters * np.log(len(x))
    assert choose_k._bic(inertia, np.array([50.0, 30.0]), 2, 1e-12) == pytest.approx(expected)


def test_noisy_image_recommends_what_holds_together_and_says_to_denoise():
    img, _ = blobs_image(2, seed=7, noise=70.0)
    s = nk.suggest_k(img, range(2, 6), seed=0)
    assert s.coherence[0] < choose_k.SOLID
    assert s.recommended == s.k[int(np.argmax(s.coherence))]
    assert "denoise" in s.reason


def test_segment_options_are_scored_as_segment_uses_them():
    # two channels 50x apart: k-means on the raw values sees only the wide one
    rng = np.random.default_rng(8)
    wide, _ = blobs_image(2, seed=8)
    narrow, _ = blobs_image(2, seed=9)
    img = np.stack([wide.astype(np.uint16) * 50, narrow.astype(np.uint16)], axis=-1)
    img = img + rng.integers(0, 2, img.shape).astype(np.uint16)
    scaled = nk.suggest_k(img, range(2, 7), channel_axis=-1, standardize=True, spacing=(1, 1))
    plain = nk.suggest_k(img, range(2, 7), channel_axis=-1)
    assert scaled.recommended == 4, scaled.reason
    assert plain.recommended == 2, plain.reason
    with pytest.raises(ValueError, match="spacing"):
        nk.suggest_k(img, channel_axis=-1, spacing=(1, 1, 1))
    with pytest.raises(TypeError, match="sharpen"):
        nk.suggest_k(img, channel_axis=-1, sharpen=True)
    with pytest.raises(TypeError, match="k_range"):
        nk.suggest_k(img, channel_axis=-1, n_clusters=3)


def test_spatial_weight_and_spacing_reach_the_features(monkeypatch):
    img, _ = blobs_image(3, seed=10, shape=(40, 40))
    made = []
    original = choose_k.fitting.prepared_rows

    def spy(images, options):
        rows, recipe = original(images, options)
        made.append((options, rows))
        return rows, recipe

    monkeypatch.setattr(choose_k.fitting, "prepared_rows", spy)
    s = nk.suggest_k(img, range(2, 5), spatial_weight=0.05, spacing=(2.0, 1.0))
    ((options, rows),) = made
    assert options.spatial_weight == 0.05 and options.spacing == (2.0, 1.0)
    assert rows.features.shape == (40 * 40, 3)  # the value and two coordinates
    assert len(s.k) == 3


def test_only_clustered_pixels_are_neighbours():
    img, truth = blobs_image(3, seed=11)
    noisy = img.copy()
    speckled = np.random.default_rng(0).integers(0, 256, (96, 30))
    noisy[:, :30] = speckled  # random values where the mask leaves pixels out
    mask = np.ones(img.shape, bool)
    mask[:, :30] = False
    s = nk.suggest_k(noisy, range(2, 7), mask=mask, seed=0)
    assert s.recommended == 3, s.reason
