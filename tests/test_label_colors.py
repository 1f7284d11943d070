"""The default label palette, checked with scikit-image's colour science."""

import numpy as np
import pytest

from napari_kmeans.outputs.label_colors import (
    MAX_COLORS,
    MIN_LIGHTNESS,
    delta_e_2000,
    distinct_colors,
    srgb_to_lab,
)

color = pytest.importorskip("skimage.color")


def _pairwise_min(distance, lab):
    d = distance(lab[:, None], lab[None])
    np.fill_diagonal(d, np.inf)
    return d.min()


def test_no_colour_is_near_black():
    lab = color.rgb2lab(distinct_colors(MAX_COLORS)[None])[0]
    assert lab[:, 0].min() >= MIN_LIGHTNESS == 30


def test_first_twelve_colours_are_far_apart_in_both_delta_e():
    lab = color.rgb2lab(distinct_colors(12)[None])[0]
    assert _pairwise_min(color.deltaE_cie76, lab) >= 15
    assert _pairwise_min(color.deltaE_ciede2000, lab) >= 15


def test_greedy_order_spreads_colours_best_first():
    """Each colour is about as far from black, white and those before it as the next one is."""
    lab = np.r_[[[0.0, 0, 0], [100.0, 0, 0]], color.rgb2lab(distinct_colors(40)[None])[0]]
    gaps = [min(color.deltaE_ciede2000(lab[i], lab[j]) for j in range(i)) for i in range(2, 42)]
    # our greedy choice used OpenCV's Lab, within 0.3 of scikit-image's
    assert all(a >= b - 1.0 for a, b in zip(gaps, gaps[1:], strict=False))
    assert gaps[0] > gaps[-1] + 10


def test_own_conversions_match_scikit_image():
    rng = np.random.default_rng(0)
    rgb = rng.random((500, 3))
    np.testing.assert_allclose(srgb_to_lab(rgb), color.rgb2lab(rgb[None])[0], atol=0.5)
    a = rng.uniform([0, -100, -100], [100, 100, 100], (500, 3))
    b = rng.uniform([0, -100, -100], [100, 100, 100], (500, 3))
    np.testing.assert_allclose(delta_e_2000(a, b), color.deltaE_ciede2000(a, b), atol=1e-9)


def test_palette_repeats_past_its_length_and_refuses_bad_counts():
    colours = distinct_colors(MAX_COLORS + 2)
    np.testing.assert_array_equal(colours[MAX_COLORS:], colours[:2])
    with pytest.raises(ValueError, match="n=-1"):
        distinct_colors(-1)
