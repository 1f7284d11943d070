"""suggest_k on images whose number of classes is known."""

import math

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

import napari_kmeans as nk
from napari_kmeans.choose_k import _silhouette


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
    assert _silhouette(x, labels) == pytest.approx(silhouette_score(x, labels), abs=1e-9)


def test_scores_are_reproducible_and_json_friendly():
    img = classes_image(3, seed=1)
    a, b = nk.suggest_k(img, [2, 3, 4], seed=5), nk.suggest_k(img, [2, 3, 4], seed=5)
    assert a == b
    assert set(a.to_dict()) == {"k", "inertia", "silhouette", "bic", "recommended", "reason"}
    assert not any(math.isnan(v) for v in a.silhouette)


@pytest.mark.parametrize("k_range", [range(0, 3), [2, 2.5], [], range(2, 10**6), "abc"])
def test_bad_k_range_is_refused(k_range):
    with pytest.raises(ValueError, match="k_range"):
        nk.suggest_k(classes_image(3, seed=2), k_range)
