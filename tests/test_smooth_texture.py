"""Denoising (``smooth=``) and texture features (``texture=``) on every path.

Oracles: scipy.ndimage's filters applied by hand, noise of known sigma, the in-memory
result for the chunked one, ``segment`` for ``predict``.
"""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

import napari_kmeans as nk
from napari_kmeans.cli.command import main
from napari_kmeans.features import smooth as sm
from napari_kmeans.features import texture as tx
from napari_kmeans.features.pixels import channel_layout
from napari_kmeans.io.model_file import model_to_dict
from napari_kmeans.options import segment_options


def square(noise: float, seed: int = 0, shape=(64, 72)) -> tuple[np.ndarray, np.ndarray]:
    """A bright square on a dark field with Gaussian noise, as uint8, and its truth."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, int)
    truth[shape[0] // 4 : 3 * shape[0] // 4, shape[1] // 4 : 3 * shape[1] // 4] = 1
    image = 60 + 40 * truth + rng.normal(0, noise, shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), truth


def agreement(labels: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(truth.ravel(), labels.ravel())


# --- the filters against scipy.ndimage ----------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axis", "spacing"),
    [
        ((30, 40), None, (1.0, 1.0)),
        ((30, 40, 3), 2, (1.0, 2.0)),
        ((3, 30, 40), 0, (0.5, 0.5)),
        ((6, 20, 24), None, (2.0, 1.0, 1.0)),
    ],
)
def test_gaussian_is_scipys_in_spacing_units_per_channel(shape, axis, spacing):
    rng = np.random.default_rng(1)
    image = rng.random(shape).astype(np.float32) * 100
    sigma = 1.3
    pixels = [sigma / s for s in spacing]
    if axis is not None:
        pixels.insert(axis, 0.0)
    expected = ndimage.gaussian_filter(image.astype(np.float64), pixels, mode="reflect")
    ours = sm.Smoothing("gaussian", sigma).apply(image, axis, spacing)
    assert ours.dtype == image.dtype
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-3)
    # integers are smoothed in their own dtype, rounded and clipped
    integers = (image * 2.5).astype(np.uint8)
    expected = ndimage.gaussian_filter(integers.astype(np.float64), pixels, mode="reflect")
    ours = sm.Smoothing("gaussian", sigma).apply(integers, axis, spacing)
    assert ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - np.rint(expected)).max() <= 1
    assert np.mean(ours != np.rint(expected)) < 1e-3


def test_median_is_scipys_box_in_spacing_units():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (5, 30, 40, 2), dtype=np.uint8)
    ours = sm.check_smooth("median").for_spacing((2.0, 1.0, 1.0)).apply(image, 3, (2.0, 1.0, 1.0))
    expected = ndimage.median_filter(image, size=(1, 3, 3, 1), mode="reflect")
    np.testing.assert_array_equal(ours, expected)
    ours = sm.check_smooth(("median", 2)).apply(image, 3, (2.0, 1.0, 1.0))
    np.testing.assert_array_equal(ours, ndimage.median_filter(image, size=(3, 5, 5, 1)))


def test_gaussian_inside_a_mask_averages_included_pixels_only():
    rng = np.random.default_rng(3)
    image = rng.random((20, 25)) * 10
    mask = rng.random((20, 25)) > 0.3
    image[~mask] = np.nan  # never read
    ours = sm.Smoothing("gaussian", 1.0).apply(image, None, (1.0, 1.0), mask)
    filled = np.where(mask, image, 0.0)
    expected = ndimage.gaussian_filter(filled, 1.0) / ndimage.gaussian_filter(mask * 1.0, 1.0)
    np.testing.assert_allclose(ours[mask], expected[mask], atol=1e-9)


# --- "auto" ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [2.0, 5.0, 12.0])
def test_noise_estimate_finds_a_known_sigma(sigma):
    rng = np.random.default_rng(4)
    truth = np.zeros((256, 256))
    truth[64:192, 50:200] = 60.0  # edges, which the estimate must ignore
    image = truth + rng.normal(0, sigma, truth.shape)
    noise, signal = sm.noise_sigma(sm.noise_lines(image, None))
    assert noise[0] == pytest.approx(sigma, rel=0.05)
    assert signal[0] == pytest.approx(np.std(truth), rel=0.1)
    # per channel, and the same from a dask array
    stacked = np.stack([image, image * 3], axis=-1)
    noise, _ = sm.noise_sigma(sm.noise_lines(da.from_array(stacked, chunks=50), 2))
    assert noise == pytest.approx([sigma, 3 * sigma], rel=0.05)


def test_auto_smooths_noise_and_leaves_clean_images():
    noisy, truth = square(noise=25)
    chosen = sm.resolve("auto", noisy, None, (1.0, 1.0))
    assert chosen.kind == "gaussian" and 0 < chosen.size <= sm.AUTO_MAX_SIGMA
    assert sm.resolve("auto", square(noise=0.0)[0], None, (1.0, 1.0)) is None
    seg = nk.segment(noisy, 2, seed=0)  # "auto" is the default
    assert seg.params["smooth"] == "auto"
    assert seg.params["smoothing"] == chosen.to_dict()
    assert agreement(seg.labels, truth) > 0.9
    assert agreement(nk.segment(noisy, 2, seed=0, smooth=None).labels, truth) < 0.5
    # spacing: sigma is in its units (one pixel of the finest axis)
    assert sm.resolve("auto", noisy, None, (0.5, 0.5)).size == chosen.size / 2


# --- the segmentation: features smoothed, palette of the original pixels ------------------------


def test_segment_clusters_smoothed_features_and_keeps_original_palette():
    image, _ = square(noise=20)
    rgb = np.stack([image, 255 - image, image // 2], axis=-1)
    seg = nk.segment(rgb, 2, seed=0, smooth=1.5, color_space="lab")
    smoothed = np.clip(
        np.rint(ndimage.gaussian_filter(rgb.astype(np.float64), (1.5, 1.5, 0))), 0, 255
    ).astype(np.uint8)
    plain = nk.segment(smoothed, 2, seed=0, smooth=None, color_space="lab")
    # every pixel's own smoothed value decides (rounding may move a handful of pixels)
    assert np.mean(seg.labels != plain.labels) < 1e-3
    for label in (1, 2):
        inside = seg.labels == label
        np.testing.assert_allclose(seg.palette[label - 1], rgb[inside].mean(axis=0))
        assert seg.counts[label - 1] == inside.sum()
    np.testing.assert_array_equal(seg.recolored, seg.palette[seg.labels - 1].round())
    assert seg.params["smoothing"] == {"kind": "gaussian", "size": 1.5}


def test_float_smoothing_equals_clustering_the_filtered_image():
    image, _ = square(noise=20)
    image = image.astype(np.float32)
    seg = nk.segment(image, 2, seed=0, smooth=("median", 1))
    filtered = ndimage.median_filter(image, size=3, mode="reflect")
    np.testing.assert_array_equal(seg.labels, nk.segment(filtered, 2, seed=0, smooth=None).labels)


@pytest.mark.parametrize(
    "options",
    [
        {"smooth": 1.0},
        {"smooth": "median", "color_space": "lab"},
        {"smooth": "auto", "spatial_weight": 0.3},
        {"smooth": 2.0, "standardize": True},
        {"texture": 4, "smooth": None},
        {"texture": 4, "smooth": 1.0, "spatial_weight": 0.2},
    ],
)
def test_predict_and_model_files_apply_the_same_recipe(tmp_path, options):
    image, _ = square(noise=20)
    rgb = np.stack([image, 255 - image, image // 2], axis=-1)
    mask = np.ones(image.shape, bool)
    mask[:3] = False
    seg = nk.segment(rgb, 3, seed=0, mask=mask, **options)
    np.testing.assert_array_equal(seg.model.predict(rgb, mask=mask).labels, seg.labels)
    path = tmp_path / "model.json"
    seg.model.save(path)
    loaded = nk.load_model(path)
    assert loaded.recipe == seg.model.recipe
    np.testing.assert_array_equal(loaded.predict(rgb, mask=mask).labels, seg.labels)
    # segment_options repeats the run
    again = nk.segment(rgb, mask=mask, **segment_options(seg.params))
    np.testing.assert_array_equal(again.labels, seg.labels)


def test_model_files_without_filters_still_load(tmp_path):
    image, _ = square(noise=5)
    model = nk.fit(image, 2, seed=0, smooth=None)
    content = model_to_dict(model)
    for key in ("smooth", "texture", "texture_scale"):
        del content["recipe"][key]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(content))
    np.testing.assert_array_equal(
        nk.load_model(path).predict(image).labels, model.predict(image).labels
    )
    content["recipe"]["smooth"] = {"kind": "blur", "size": 1.0}
    path.write_text(json.dumps(content))
    with pytest.raises(nk.ModelFileError, match="recipe.smooth"):
        nk.load_model(path)


# --- dask: chunks read with the filters' reach equal the whole image ---


@pytest.mark.parametrize(
    ("options", "masked", "as_float"),
    [
        ({"smooth": 1.0}, False, False),
        ({"smooth": "median"}, True, False),
        ({"smooth": "auto"}, False, True),
        ({"smooth": 1.5, "color_space": "lab"}, True, False),
        ({"texture": 4, "smooth": None}, False, True),
        ({"texture": 4, "smooth": 1.0, "spatial_weight": 0.2}, True, False),
    ],
)
def test_chunked_equals_in_memory(options, masked, as_float):
    image, _ = square(noise=20, shape=(40, 46))
    rgb = np.stack([image, 255 - image, image // 2], axis=-1)
    if as_float:
        rgb = rgb.astype(np.float32)
    mask = None
    if masked:
        mask = np.ones(image.shape, bool)
        mask[:4, :10] = False
    whole = nk.segment(rgb, 3, seed=0, mask=mask, **options)
    lazy = da.from_array(rgb, chunks=(7, 9, 3))  # chunks smaller than the filters' reach
    chunked = nk.segment(lazy, 3, seed=0, mask=mask, **options)
    np.testing.assert_array_equal(chunked.labels.compute(), whole.labels)
    assert chunked.labels.chunks == lazy.chunks[:2]
    np.testing.assert_allclose(chunked.palette, whole.palette)
    np.testing.assert_array_equal(chunked.counts, whole.counts)
    np.testing.assert_array_equal(chunked.recolored.compute(), whole.recolored)
    predicted = whole.model.predict(lazy, mask=mask)
    np.testing.assert_array_equal(predicted.labels.compute(), whole.labels)
    assert chunked.params["smoothing"] == whole.params["smoothing"]


def test_cross_check_uses_the_recipes_features():
    image, _ = square(noise=20)
    seg = nk.segment(image, 2, seed=0, smooth=1.0)
    check = nk.cross_check(image, seg)
    assert check.adjusted_rand_index > 0.99
    assert check.inertia_ratio == pytest.approx(1.0, abs=1e-3)
    # unsmoothed features would be far from the centres ours converged to
    assert seg.inertia < nk.segment(image, 2, seed=0, smooth=None).inertia / 2
    chunked = nk.cross_check(da.from_array(image, chunks=(9, 72)), seg)
    assert chunked.adjusted_rand_index == check.adjusted_rand_index


# --- texture ---


def test_texture_columns_against_scipy():
    rng = np.random.default_rng(5)
    image = rng.random((40, 50))
    feats = tx.texture_features(image, 4.0, (1.0, 1.0))
    names = tx.feature_names(4.0, 2)
    assert feats.shape == (2000, len(names))

    def column(name):
        return feats[:, names.index(name)].reshape(image.shape)

    np.testing.assert_allclose(column("texture mean"), ndimage.gaussian_filter(image, 4.0))
    band = ndimage.gaussian_filter(image, 2.0) - ndimage.gaussian_filter(image, 4.0)
    energy = np.sqrt(ndimage.gaussian_filter(band**2, 4.0))
    np.testing.assert_allclose(column("texture DoG 2"), energy, atol=1e-12)
    gy = ndimage.gaussian_filter(image, 1.0, order=(1, 0))
    gx = ndimage.gaussian_filter(image, 1.0, order=(0, 1))
    np.testing.assert_allclose(
        column("texture gradient 1"), np.sqrt(ndimage.gaussian_filter(gx**2 + gy**2, 4.0))
    )
    # the structure tensor's anisotropy from its eigenvalues (2-D: (l1 - l2) / (l1 + l2))
    tensor = np.stack(
        [np.stack([ndimage.gaussian_filter(a * b, 4.0) for b in (gy, gx)], -1) for a in (gy, gx)],
        -2,
    )
    eig = np.linalg.eigvalsh(tensor)
    expected = (eig[..., 1] - eig[..., 0]) / (eig[..., 1] + eig[..., 0])
    np.testing.assert_allclose(column("texture anisotropy 1"), expected, atol=1e-9)


def test_texture_separates_regions_of_equal_mean():
    rng = np.random.default_rng(6)
    y, x = np.mgrid[:96, :96]
    truth = (x >= 48).astype(int)
    stripes = 100 + 60 * np.sin(x * 1.3)
    speckle = 100 + 8 * rng.normal(size=truth.shape)
    image = np.where(truth == 1, stripes, speckle).astype(np.float32)
    assert agreement(nk.segment(image, 2, seed=0, smooth=None).labels, truth) < 0.3
    seg = nk.segment(image, 2, seed=0, texture=8)
    assert agreement(seg.labels, truth) > 0.7
    assert seg.params["texture"] == 8.0
    assert seg.params["features"][1:3] == ["texture mean", "texture DoG 1"]


# --- options, command line ---


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"smooth": -1}, "smooth=-1 is not allowed"),
        ({"smooth": "blur"}, "smooth='blur' is not allowed"),
        ({"smooth": ("median", 0)}, "smooth=('median', 0) is not allowed"),
        ({"smooth": True}, "smooth=True is not allowed"),
        ({"texture": 1}, "texture=1 is not allowed"),
        ({"texture": "yes"}, "texture='yes' is not allowed"),
    ],
)
def test_bad_values_are_refused_with_their_name(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nk.segment(np.zeros((4, 4), np.uint8), 2, **options)


def test_optimal_method_refuses_texture():
    with pytest.raises(ValueError, match="no texture"):
        nk.segment(np.arange(64, dtype=np.uint8).reshape(8, 8), 2, method="optimal", texture=True)


def test_cli_flags(tmp_path, capsys):
    image, _ = square(noise=20)
    nk.save_image(tmp_path / "a.png", image)
    line = ["segment", str(tmp_path / "a.png"), "-k", "2", "--seed", "0", "--no-progress"]
    assert main([*line, "--smooth", "median:2", "--texture", "4"]) == 0
    params = json.loads((tmp_path / "a_clusters.json").read_text())["params"]
    expected = nk.segment(image, 2, seed=0, smooth=("median", 2), texture=4)
    assert params["smoothing"] == {"kind": "median", "size": 2.0}
    assert params["texture"] == 4.0
    labels = nk.load_image(tmp_path / "a_labels.png")
    np.testing.assert_array_equal(labels, expected.labels)
    assert main([*line, "--overwrite"]) == 0
    params = json.loads((tmp_path / "a_clusters.json").read_text())["params"]
    assert params["smooth"] == "auto"
    assert main([*line, "--overwrite", "--smooth", "none"]) == 0
    assert json.loads((tmp_path / "a_clusters.json").read_text())["params"]["smooth"] is None
    capsys.readouterr()
    assert main([*line, "--overwrite", "--smooth", "fuzzy"]) == 2
    assert "--smooth: 'fuzzy' is not allowed" in capsys.readouterr().err
    assert main([*line, "--overwrite", "--texture", "1"]) == 2
    assert "--texture: '1' is not allowed" in capsys.readouterr().err


def test_channel_layout_of_texture_uses_luma():
    rgb = np.zeros((8, 8, 4), np.uint8)  # RGBA: alpha never part of the grey image
    rgb[..., 3] = 255
    rgb[:, 4:, :3] = 200
    values = channel_layout(rgb.shape, "auto").table(rgb).values
    np.testing.assert_allclose(tx.grey(values).reshape(8, 8)[:, 5], 200, rtol=1e-6)
