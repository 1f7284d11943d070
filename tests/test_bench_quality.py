"""The quality benchmark's scores against independent oracles and hand-computed values."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skimage")
pytest.importorskip("scipy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_quality as bq  # noqa: E402
from scipy import ndimage  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402


@pytest.mark.parametrize("seed", range(6))
def test_ari_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, (12, 9))
    labels = np.where(rng.random(truth.shape) < 0.7, truth * 5 + 1, rng.integers(0, 4, truth.shape))
    assert bq.adjusted_rand_index(labels, truth) == pytest.approx(
        adjusted_rand_score(truth.ravel(), labels.ravel()), abs=1e-12
    )


def test_ari_limits_match_sklearn():
    one = np.zeros((3, 3), int)
    assert bq.adjusted_rand_index(one, one) == adjusted_rand_score(one.ravel(), one.ravel()) == 1
    truth = np.array([[0, 0, 1, 1]])
    assert bq.adjusted_rand_index(truth[:, ::-1] + 7, truth) == pytest.approx(1.0)


def test_macro_dice_by_hand():
    # truth: class 0 on 4 pixels, class 1 on 2; the result splits class 0 in two and joins
    # one class-0 pixel with class 1.
    truth = np.array([[0, 0, 0, 0, 1, 1]])
    labels = np.array([[7, 7, 9, 3, 3, 3]])
    # Dice(0, 7) = 2*2/(4+2) = 2/3, Dice(0, 3) = 2*1/(4+3) = 2/7, Dice(1, 3) = 2*2/(2+3) = 4/5,
    # Dice(0, 9) = 2/5. Best matching: 0 -> 7 and 1 -> 3, total 2/3 + 4/5.
    assert bq.macro_dice(labels, truth) == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_macro_dice_unmatched_class_scores_zero():
    truth = np.array([[0, 1, 2, 2]])
    labels = np.array([[1, 1, 2, 2]])  # two labels for three classes
    # class 2 -> label 2 (Dice 1); classes 0 and 1 compete for label 1: Dice 2/3 each.
    assert bq.macro_dice(labels, truth) == pytest.approx((1 + 2 / 3 + 0) / 3)


@pytest.mark.parametrize("shape", [(15, 17), (5, 6, 7)])
def test_components_match_scipy_label(shape):
    rng = np.random.default_rng(len(shape))
    labels = rng.integers(0, 3, shape)
    expected = sum(ndimage.label(labels == value)[1] for value in np.unique(labels))
    assert bq.count_components(labels) == expected


def test_boundary_noise_by_hand():
    truth = np.zeros((7, 7), int)
    truth[:, 4:] = 1  # true boundary between columns 3 and 4
    labels = truth.copy()
    assert bq.boundary_noise(labels, truth) == 0.0
    labels[1, 0] = 1  # a speck far from the true boundary: itself and its 3 face neighbours
    assert bq.boundary_noise(labels, truth) == pytest.approx(4 / 49)
    labels = truth.copy()
    labels[3, 3] = 1  # a ragged edge next to the true boundary: not noise
    assert bq.boundary_noise(labels, truth) == 0.0


def test_score_of_the_truth_is_perfect():
    case = bq.cases(quick=True, groups=["clean"])[0]
    s = bq.score(case.truth + 1, case.truth)
    assert s == {"ari": 1.0, "dice": 1.0, "boundary_noise": 0.0, "component_ratio": 1.0}


def test_cases_are_deterministic_and_labelled():
    first, second = (bq.cases(quick=True, groups=["colour + JPEG", "3-D low SNR"]) for _ in "ab")
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.truth, b.truth)
        assert set(np.unique(a.truth)) == set(range(a.k))
        assert a.image.shape[: a.truth.ndim] == a.truth.shape


def test_evaluate_groups_a_callable():
    def truth_oracle(image, k, case):
        return case.truth

    table = bq.evaluate(truth_oracle, quick=True, groups=["clean", "textures"])
    assert set(table) == {"textures", "clean", "all"}
    assert table["clean"]["ari"] == 1.0 and table["clean"]["n"] == 4


def test_unknown_group_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        bq.cases(groups=["nope"])
