"""standardize=True: each channel divided by its spread at fit time, on every path."""

import json

import dask.array as da
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import napari_kmeans as nk


def two_ranges(rng, shape=(60, 70)):
    """Two channels of very different ranges: 4 groups on a 2 x 2 grid.

    Channel 0 holds 10 or 90 (noise 2), channel 1 holds 20,000 or 40,000 (noise 2,000).
    Unstandardised, channel 1's noise outweighs channel 0's whole range.
    """
    truth = rng.integers(0, 4, shape)
    small = np.where(truth % 2, 90, 10) + rng.normal(0, 2, shape)
    large = np.where(truth // 2, 40_000, 20_000) + rng.normal(0, 2_000, shape)
    img = np.stack([small, large], axis=-1)
    return np.clip(np.rint(img), 0, 65535).astype(np.uint16), truth


def hand_standardised(img):
    pixels = img.reshape(-1, img.shape[-1]).astype(np.float64)
    return (pixels - pixels.mean(axis=0)) / pixels.std(axis=0)


def test_standardised_partition_is_that_of_the_hand_standardised_array():
    img, truth = two_ranges(np.random.default_rng(0))
    oracle = KMeans(4, n_init=10, random_state=0).fit_predict(hand_standardised(img))
    seg = nk.segment(img, 4, channel_axis=2, standardize=True, seed=0)
    assert adjusted_rand_score(oracle, seg.labels.ravel()) == 1.0
    assert adjusted_rand_score(truth.ravel(), seg.labels.ravel()) == 1.0
    # the palette stays in the image's units: each cluster's mean original value
    pixels = img.reshape(-1, 2).astype(np.float64)
    for label in range(1, 5):
        mean = pixels[seg.labels.ravel() == label].mean(axis=0)
        np.testing.assert_allclose(seg.palette[label - 1], mean, rtol=1e-12)
    # the divisors are the channels' standard deviations over the fitted pixels
    np.testing.assert_allclose(seg.model.recipe.scale, pixels.std(axis=0), rtol=1e-9)
    assert seg.params["standardize"] is True
    # without it, the large channel's noise decides: the test above means something
    plain = nk.segment(img, 4, channel_axis=2, standardize=False, seed=0)
    assert adjusted_rand_score(truth.ravel(), plain.labels.ravel()) < 0.9


def test_dask_histogram_path_gives_the_in_memory_model():
    img, _ = two_ranges(np.random.default_rng(1))
    memory = nk.segment(img, 4, channel_axis=2, standardize=True, seed=0)
    lazy = nk.segment(
        da.from_array(img, chunks=(20, 35, 2)), 4, channel_axis=2, standardize=True, seed=0
    )
    assert lazy.model.recipe.scale == memory.model.recipe.scale
    np.testing.assert_array_equal(lazy.labels.compute(), memory.labels)
    np.testing.assert_array_equal(lazy.palette, memory.palette)


def test_dask_sample_path_measures_the_spread_on_the_sample():
    img, truth = two_ranges(np.random.default_rng(2))
    image = img.astype(np.float32)
    memory = nk.segment(image, 4, channel_axis=2, standardize=True, seed=0)
    lazy = nk.segment(
        da.from_array(image, chunks=(20, 35, 2)),
        4,
        channel_axis=2,
        standardize=True,
        seed=0,
        sample_size=image.shape[0] * image.shape[1],  # every pixel
    )
    np.testing.assert_allclose(lazy.model.recipe.scale, memory.model.recipe.scale, rtol=1e-6)
    assert adjusted_rand_score(truth.ravel(), lazy.labels.compute().ravel()) == 1.0
    small = nk.segment(
        da.from_array(image, chunks=(20, 35, 2)),
        4,
        channel_axis=2,
        standardize=True,
        seed=0,
        sample_size=500,
    )
    assert adjusted_rand_score(truth.ravel(), small.labels.compute().ravel()) == 1.0


def test_saved_models_keep_the_divisors(tmp_path):
    img, _ = two_ranges(np.random.default_rng(3))
    model = nk.fit(img, 4, channel_axis=2, standardize=True, seed=0)
    model.save(tmp_path / "m.json")
    loaded = nk.load_model(tmp_path / "m.json")
    assert loaded.recipe.scale == model.recipe.scale
    other, _ = two_ranges(np.random.default_rng(4))
    np.testing.assert_array_equal(loaded.predict(other).labels, model.predict(other).labels)
    lazy = loaded.predict(da.from_array(other, chunks=(30, 35, 2)))
    np.testing.assert_array_equal(lazy.labels.compute(), model.predict(other).labels)


def test_fit_on_several_images_measures_the_pooled_spread():
    a, _ = two_ranges(np.random.default_rng(5), (20, 30))
    b, _ = two_ranges(np.random.default_rng(6), (25, 10))
    model = nk.fit([a, b], 4, channel_axis=2, standardize=True, seed=0)
    pooled = np.concatenate([a.reshape(-1, 2), b.reshape(-1, 2)]).astype(np.float64)
    np.testing.assert_allclose(model.recipe.scale, pooled.std(axis=0), rtol=1e-9)


def test_cross_check_uses_the_standardised_features():
    img, _ = two_ranges(np.random.default_rng(7), (40, 40))
    seg = nk.segment(img, 4, channel_axis=2, standardize=True, seed=0)
    check = nk.cross_check(img, seg)
    assert check.adjusted_rand_index == pytest.approx(1.0)
    assert check.inertia_ratio == pytest.approx(1.0, rel=1e-4)


def test_spatial_weight_is_scaled_to_the_standardised_range():
    img, _ = two_ranges(np.random.default_rng(8), (30, 30))
    seg = nk.segment(img, 4, channel_axis=2, standardize=True, spatial_weight=0.2, seed=0)
    colour = hand_standardised(img)
    np.testing.assert_allclose(
        seg.model.recipe.value_range, np.ptp(colour, axis=0).max(), rtol=1e-5
    )
    again = seg.model.predict(img)
    np.testing.assert_array_equal(again.labels, seg.labels)


def test_standardize_must_be_a_bool():
    with pytest.raises(ValueError, match="standardize='yes' is not allowed"):
        nk.segment(np.zeros((4, 4), np.uint8), 1, standardize="yes")


@pytest.mark.parametrize(
    "scale, field", [([1.0], r"recipe\.scale'"), ([1.0, -2.0], r"recipe\.scale\[1\]")]
)
def test_a_model_file_with_unusable_divisors_is_refused(tmp_path, scale, field):
    img, _ = two_ranges(np.random.default_rng(9), (10, 10))
    nk.fit(img, 2, channel_axis=2, standardize=True, seed=0).save(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    data["recipe"]["scale"] = scale
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(nk.ModelFileError, match=field):
        nk.load_model(tmp_path / "m.json")
