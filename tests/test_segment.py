"""``segment`` end to end, checked with NumPy computations written here, not our code."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napari_kmeans as nk
from napari_kmeans.features.prepare import count_non_finite
from synthetic import phase_image

LUMA = np.array([0.299, 0.587, 0.114])


def check_outputs(img, seg, channels_last=True):
    """Palette, counts, recolored and inertia against direct NumPy computations."""
    labels = seg.labels
    values = (
        img.reshape(-1, img.shape[-1])
        if channels_last and img.ndim > labels.ndim
        else (img.reshape(-1, 1))
    )
    colour = values[:, :3] if values.shape[1] == 4 else values
    flat = labels.ravel()
    k = len(seg.counts)
    assert set(np.unique(flat[flat > 0]).tolist()) == set(range(1, k + 1))
    np.testing.assert_array_equal(seg.counts, np.bincount(flat, minlength=k + 1)[1:])
    for c in range(1, k + 1):
        mean = colour[flat == c].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(seg.palette[c - 1], mean, rtol=1e-9, atol=1e-9)
    expected = colour.copy()
    if img.dtype.kind in "ui":
        palette = np.clip(np.rint(seg.palette), 0, np.iinfo(img.dtype).max).astype(img.dtype)
    else:
        palette = seg.palette.astype(img.dtype)
    expected[flat > 0] = palette[flat[flat > 0] - 1]
    recolored = seg.recolored.reshape(values.shape)
    np.testing.assert_array_equal(recolored[:, : colour.shape[1]], expected)
    if values.shape[1] == 4:
        np.testing.assert_array_equal(recolored[:, 3], values[:, 3])
    assert seg.recolored.dtype == img.dtype and seg.recolored.shape == img.shape


def test_grey_levels_are_labelled_dark_to_bright():
    rng = np.random.default_rng(0)
    img, truth = phase_image(rng, (60, 80), [[200], [20], [120]], 5)
    seg = nk.segment(img, n_clusters=3, seed=0)
    rank_of_level = np.array([3, 1, 2])  # 200 is brightest, 20 darkest
    np.testing.assert_array_equal(seg.labels, rank_of_level[truth])
    assert seg.labels.dtype == np.uint8 and seg.labels.shape == img.shape
    check_outputs(img, seg)
    assert np.all(np.diff(seg.palette[:, 0]) > 0)


def test_colour_image_outputs_match_numpy_and_input_is_untouched():
    rng = np.random.default_rng(1)
    colours = [[250, 20, 20], [20, 200, 30], [30, 40, 220], [240, 240, 240]]
    img, truth = phase_image(rng, (50, 70), colours, 8)
    before = img.copy()
    seg = nk.segment(img, n_clusters=4, seed=3)
    np.testing.assert_array_equal(img, before)
    check_outputs(img, seg)
    # labels ordered by the luma of the palette colours
    np.testing.assert_array_equal(np.argsort(seg.palette @ LUMA), np.arange(4))
    luma_rank = np.argsort(np.argsort(np.array(colours) @ LUMA)) + 1
    np.testing.assert_array_equal(seg.labels, luma_rank[truth])
    # the inertia is the squared distance of every pixel to its centre
    diff = img.reshape(-1, 3).astype(float) - seg.centers[seg.labels.ravel() - 1]
    assert seg.inertia == pytest.approx((diff**2).sum(), rel=1e-9)


def test_rgba_alpha_is_kept_and_ignored():
    rng = np.random.default_rng(2)
    rgb, truth = phase_image(rng, (30, 30), [[10, 10, 10], [200, 200, 200]], 3)
    alpha = rng.integers(0, 256, (30, 30, 1), dtype=np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=-1)
    seg = nk.segment(rgba, n_clusters=2, seed=0)
    np.testing.assert_array_equal(seg.labels, nk.segment(rgb, n_clusters=2, seed=0).labels)
    assert seg.palette.shape == (2, 3)
    check_outputs(rgba, seg)


def test_sixteen_bit_image_keeps_its_depth():
    rng = np.random.default_rng(3)
    img, truth = phase_image(rng, (40, 40), [[1000], [30000], [60000]], 300, np.uint16)
    seg = nk.segment(img, n_clusters=3, seed=0)
    np.testing.assert_array_equal(seg.labels, truth + 1)
    check_outputs(img, seg)


def test_float_image_takes_the_uncompressed_path_with_the_same_answer():
    rng = np.random.default_rng(4)
    img, truth = phase_image(rng, (40, 50), [[0.1, 0.2, 0.3], [0.8, 0.7, 0.1]], 0.02, np.float32)
    seg = nk.segment(img, n_clusters=2, seed=0)
    assert seg.recolored.dtype == np.float32
    check_outputs(img, seg)
    as_int = nk.segment(np.rint(img * 1000).astype(np.uint16), n_clusters=2, seed=0)
    np.testing.assert_array_equal(seg.labels, as_int.labels)


def test_mask_excludes_pixels_which_keep_their_value():
    rng = np.random.default_rng(5)
    img, truth = phase_image(rng, (40, 40), [[30, 30, 30], [220, 220, 220], [120, 10, 10]], 4)
    mask = np.zeros((40, 40), bool)
    mask[5:30, 10:35] = True
    seg = nk.segment(img, n_clusters=3, seed=0, mask=mask)
    assert np.all(seg.labels[~mask] == 0) and np.all(seg.labels[mask] > 0)
    np.testing.assert_array_equal(seg.recolored[~mask], img[~mask])
    check_outputs(img, seg)
    assert seg.counts.sum() == mask.sum()
    # only included pixels were clustered: same as clustering the included pixels alone
    alone = nk.segment(img[mask][None], n_clusters=3, seed=0)
    np.testing.assert_array_equal(alone.labels[0], seg.labels[mask])
    np.testing.assert_allclose(alone.centers, seg.centers)


def test_integer_mask_counts_non_zero_as_included():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    labels_layer = np.zeros((4, 4), np.int32)
    labels_layer[:, :2] = 7
    seg = nk.segment(img, n_clusters=2, seed=0, mask=labels_layer)
    assert np.all(seg.labels[:, 2:] == 0) and np.all(seg.labels[:, :2] > 0)


def test_channel_axis_anywhere_gives_the_same_labels():
    rng = np.random.default_rng(6)
    img, _ = phase_image(rng, (20, 30), [[10, 200, 30], [200, 10, 90], [90, 90, 250]], 5)
    last = nk.segment(img, n_clusters=3, seed=0)
    first = np.moveaxis(img, -1, 0).copy()
    seg = nk.segment(first, n_clusters=3, seed=0, channel_axis=0)
    np.testing.assert_array_equal(seg.labels, last.labels)
    np.testing.assert_array_equal(np.moveaxis(seg.recolored, 0, -1), last.recolored)
    assert seg.recolored.shape == first.shape


def test_channel_axis_none_treats_every_value_alone():
    img = np.zeros((10, 3), np.uint8)
    img[:, 1] = 100
    img[:, 2] = 200
    seg = nk.segment(img, n_clusters=3, seed=0, channel_axis=None)
    np.testing.assert_array_equal(seg.labels[0], [1, 2, 3])


def test_three_d_stack_labels_mean_the_same_in_every_slice():
    rng = np.random.default_rng(7)
    img, truth = phase_image(rng, (6, 20, 20), [[500], [20000], [45000]], 200, np.uint16)
    seg = nk.segment(img, n_clusters=3, seed=0)
    assert seg.labels.shape == img.shape
    np.testing.assert_array_equal(seg.labels, truth + 1)


def test_gray_colour_space_uses_luma_and_optimal_finds_the_1d_optimum():
    rng = np.random.default_rng(8)
    img, _ = phase_image(rng, (30, 30), [[200, 30, 30], [30, 200, 30], [30, 30, 200]], 10)
    seg = nk.segment(img, n_clusters=3, color_space="gray", method="optimal")
    luma = img.reshape(-1, 3).astype(float) @ LUMA
    reference = nk.segment(luma.reshape(30, 30), n_clusters=3, method="optimal")
    np.testing.assert_array_equal(seg.labels, reference.labels)
    np.testing.assert_allclose(seg.centers, reference.centers)
    assert seg.palette.shape == (3, 3)
    check_outputs(img, seg)
    for s in range(3):
        lloyd = nk.segment(img, n_clusters=3, color_space="gray", seed=s)
        assert seg.inertia <= lloyd.inertia * (1 + 1e-12)
    assert seg.n_iter == 0


def test_optimal_matches_brute_force_on_a_tiny_image():
    img = np.array([[0, 1, 5, 6], [6, 20, 21, 40]], np.uint16)
    seg = nk.segment(img, n_clusters=3, method="optimal", smooth=None)
    values = img.ravel().astype(float)
    best = min(
        sum(
            (
                (
                    values[[i for i in range(8) if lab[i] == c]]
                    - values[[i for i in range(8) if lab[i] == c]].mean()
                )
                ** 2
            ).sum()
            for c in range(3)
        )
        for lab in np.ndindex(*(3,) * 8)
        if len(set(lab)) == 3
    )
    assert seg.inertia == pytest.approx(best)


def test_lab_colour_space_clusters_perceptually():
    rng = np.random.default_rng(9)
    img, truth = phase_image(rng, (30, 30), [[250, 250, 250], [250, 0, 0], [0, 0, 0]], 2)
    seg = nk.segment(img, n_clusters=3, color_space="lab", seed=0)
    np.testing.assert_array_equal(seg.labels, np.array([3, 2, 1])[truth])
    np.testing.assert_allclose(seg.centers[-1], [98.3, 0, 0], atol=1.5)  # near-white in CIELAB
    check_outputs(img, seg)


def test_spatial_weight_separates_equal_colours_by_position():
    img = np.full((20, 40), 100, np.uint8)
    with pytest.raises(ValueError, match="1 distinct values"):
        nk.segment(img, n_clusters=2)
    seg = nk.segment(img, n_clusters=2, spatial_weight=1.0, seed=0)
    assert len(np.unique(seg.labels[:, :15])) == 1 and len(np.unique(seg.labels[:, 25:])) == 1
    assert seg.labels[0, 0] != seg.labels[0, -1]
    assert seg.centers.shape == (2, 3)


def test_spatial_coordinates_are_scaled_to_the_value_range():
    img = np.zeros((3, 5), np.uint8)
    img[:, 2:] = 255
    seg = nk.segment(img, n_clusters=2, spatial_weight=0.5, seed=0)
    # features: value, y, x with the largest extent (x: 4 px) weighing 0.5 × 255
    scale = 0.5 * 255 / 4
    left = np.array([0, 1 * scale, 0.5 * scale])
    right = np.array([255, 1 * scale, 3 * scale])
    np.testing.assert_allclose(seg.centers, [left, right])


def test_spacing_stretches_coordinates():
    img = np.zeros((3, 5), np.uint8)
    seg = nk.segment(img, n_clusters=2, spatial_weight=1.0, spacing=(4.0, 1.0), seed=0)
    assert seg.labels[0, 2] != seg.labels[2, 2]  # y is now the long axis (8 units vs 4)
    with pytest.raises(ValueError, match="spacing"):
        nk.segment(img, n_clusters=2, spatial_weight=1.0, spacing=(1.0,))


def test_many_clusters_use_sixteen_bit_labels():
    img = np.arange(600, dtype=np.uint16).reshape(20, 30)
    seg = nk.segment(img, n_clusters=300, seed=0, max_iter=5)
    assert seg.labels.dtype == np.uint16 and seg.labels.max() == 300


def test_same_seed_same_segmentation_and_unseeded_runs_are_reproducible():
    rng = np.random.default_rng(10)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    a, b = nk.segment(img, 6, seed=5), nk.segment(img, 6, seed=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    drawn = nk.segment(img, 6)
    again = nk.segment(img, 6, seed=drawn.params["seed"])
    np.testing.assert_array_equal(drawn.labels, again.labels)


def test_params_and_summary_are_json():
    img = np.random.default_rng(11).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    seg = nk.segment(img, 3, seed=np.int64(2), channel_axis=np.int64(-1), mask=img[..., 0] > 5)
    text = json.dumps(seg.to_dict())
    data = json.loads(text)
    assert data["params"]["n_clusters"] == 3 and data["params"]["masked"] is True
    assert data["counts"] == seg.counts.tolist()
    assert {"numpy", "opencv", "napari_kmeans"} <= set(data["params"]["versions"])


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (np.zeros((4, 4), np.uint8), {"n_clusters": 0}, "n_clusters=0"),
        (np.arange(16, dtype=np.uint8).reshape(4, 4), {"n_clusters": 17}, "16 distinct values"),
        (np.zeros((4, 4, 3), np.uint8), {"n_clusters": 2}, "1 distinct colours"),
        (np.array([[0.0, np.nan], [1, 2]]), {"n_clusters": 2}, "NaN or infinite"),
        (np.array([[0.0, np.inf], [1, 2]]), {"n_clusters": 2}, "NaN or infinite"),
        (np.zeros((4, 4)), {"mask": np.zeros((4, 4), bool)}, "mask excludes every pixel"),
        (np.zeros((4, 4)), {"mask": np.ones((4, 5), bool)}, r"mask has shape \(4, 5\)"),
        (np.zeros((4, 4)), {"color_space": "hsv"}, "color_space='hsv'"),
        (np.zeros((4, 4)), {"method": "magic"}, "method='magic'"),
        (np.zeros((4, 4)), {"color_space": "lab"}, "color_space='lab' needs an RGB image"),
        (np.zeros((4, 4, 3)), {"method": "optimal"}, "method='optimal' needs exactly one"),
        (np.zeros((4, 4)), {"method": "optimal", "spatial_weight": 1}, "spatial_weight=1"),
        (np.zeros((4, 4)), {"spatial_weight": -1}, "spatial_weight=-1"),
        (np.zeros((4, 4)), {"channel_axis": 5}, "channel_axis=5"),
        (np.zeros((4, 4)), {"channel_axis": "first"}, "channel_axis='first'"),
        (np.zeros((4, 4), bool), {}, "dtype bool"),
        (np.zeros((4, 4), complex), {}, "dtype complex128"),
        (np.zeros((0, 4)), {}, "non-empty"),
        (np.full((4, 4, 3), 2.0), {"color_space": "lab"}, r"values in \[0, 1\]"),
        (np.zeros((4, 4, 5)), {"channel_axis": -1, "color_space": "gray"}, "gray"),
        (np.zeros((4, 4)), {"seed": -1}, "seed=-1"),
    ],
)
def test_bad_input_gives_a_clear_error(image, kwargs, message):
    args = {"n_clusters": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        nk.segment(image, **args)


def test_callback_sees_every_iteration_and_can_stop_the_run():
    rng = np.random.default_rng(12)
    img = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    seen = []
    seg = nk.segment(img, 5, seed=0, callback=lambda i, e: seen.append(i))
    assert seen[-1] >= seg.n_iter and seen[0] == 1

    class Stop(Exception):
        pass

    def stop(iteration, inertia):
        raise Stop

    with pytest.raises(Stop):
        nk.segment(img, 5, seed=0, callback=stop)


@pytest.mark.parametrize("masked", [False, True])
def test_spatial_segment_equals_kmeans_on_the_written_out_features_at_a_fixed_point(masked):
    # W6 in small: the coordinates are computed where the engine reads them (grid rows);
    # the result must be the one of k-means on the written-out features, bit for bit
    from napari_kmeans.engine import kmeans
    from napari_kmeans.features import pixels as ft

    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (300, 500, 3)).astype(np.uint8)
    img[:150] //= 3  # some structure
    mask = rng.random(img.shape[:2]) < 0.8 if masked else None
    seg = nk.segment(
        img,
        n_clusters=8,
        seed=0,
        color_space="rgb",
        spatial_weight=0.5,
        mask=mask,
        tol=0.0,
        smooth=None,
    )

    pixels = None if mask is None else np.flatnonzero(mask)
    values = img.reshape(-1, 3) if mask is None else img.reshape(-1, 3)[pixels]
    value_range = float(np.ptp(values.astype(np.float32), axis=0).max())
    coords = ft.coordinate_features(img.shape[:2], (1.0, 1.0), 0.5, value_range, pixels, "f4")
    written = np.concatenate([values.astype(np.float32), coords], axis=1)
    ref = kmeans(written, 8, seed=0, tol=0.0)  # tol 0: until no label changes (a fixed point)

    labels = seg.labels.reshape(-1) if mask is None else seg.labels[mask]
    order = [int(np.flatnonzero((ref.centers == c).all(axis=1))[0]) for c in seg.centers]
    np.testing.assert_array_equal(np.asarray(order)[labels - 1], ref.labels)
    np.testing.assert_array_equal(seg.centers, ref.centers[order])
    assert seg.inertia == ref.inertia
    # fixed point, by brute force: every pixel at a nearest centre, each centre its mean
    sq = ((written[:, None, :].astype(np.float64) - seg.centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(sq[np.arange(len(written)), labels - 1], sq.min(axis=1))
    for c in range(8):
        np.testing.assert_allclose(
            seg.centers[c], written[labels == c + 1].mean(axis=0, dtype=np.float64), rtol=1e-9
        )
    if mask is not None:
        assert (seg.labels[~mask] == 0).all()


def test_spatial_segment_memory_stays_within_three_times_the_image():
    # W6: storing the coordinates and Hamerly's bounds of every pixel took 30x the input;
    # now the engine reads the pixels in place and keeps one int32 label per pixel
    import tracemalloc

    img = np.random.default_rng(0).integers(0, 256, (1000, 1500, 3)).astype(np.uint8)
    nk.segment(img[:50, :50], n_clusters=8, seed=0, spatial_weight=0.5)  # compile first
    tracemalloc.start()
    seg = nk.segment(img, n_clusters=8, seed=0, color_space="rgb", spatial_weight=0.5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seg.labels.shape == img.shape[:2]
    assert peak < 3 * img.nbytes


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4)),
    bad=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from([np.nan, np.inf, -np.inf]))),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_non_finite_pixels_are_counted_exactly(shape, bad, dtype):
    # oracle: a pixel is bad when any of its channel values fails math.isfinite
    image = np.random.default_rng(0).normal(size=shape).astype(dtype)
    flat = image.reshape(-1)
    for position, value in bad:
        flat[position % flat.size] = value
    rows = image.reshape(-1, shape[-1])
    expected = sum(not all(math.isfinite(v) for v in row) for row in rows.tolist())
    assert count_non_finite(rows) == expected
    if expected:
        with pytest.raises(ValueError, match=rf"NaN or infinite values in {expected} pixel"):
            nk.segment(image, n_clusters=1, channel_axis=-1)
