"""Reusable models: fit / predict / save / load, against segment() and NumPy."""

import json

import dask.array as da
import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans.features.recipe import FeatureRecipe


def colour_image(rng, shape, colours, noise=4):
    colours = np.asarray(colours, float)
    truth = rng.integers(0, len(colours), shape)
    img = np.clip(np.rint(colours[truth] + rng.normal(0, noise, (*shape, 3))), 0, 255)
    return img.astype(np.uint8), truth


COLOURS = [[230, 30, 30], [30, 220, 40], [20, 30, 230], [240, 240, 230]]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"color_space": "lab"},
        {"spatial_weight": 0.3},
        {"color_space": "gray", "method": "optimal"},
        {"standardize": True},
        {"standardize": True, "spatial_weight": 0.3, "color_space": "oklab"},
    ],
)
def test_segment_equals_fit_then_predict(options):
    img, _ = colour_image(np.random.default_rng(0), (40, 50), COLOURS)
    seg = nk.segment(img, 4, seed=1, **options)
    pred = nk.fit(img, 4, seed=1, **options).predict(img)
    np.testing.assert_array_equal(seg.labels, pred.labels)
    np.testing.assert_array_equal(seg.recolored, pred.recolored)
    np.testing.assert_array_equal(seg.counts, pred.counts)
    np.testing.assert_array_equal(seg.palette, pred.palette)
    assert seg.inertia == pytest.approx(pred.inertia, rel=1e-9)


def test_same_colour_gets_the_same_label_in_every_image():
    rng = np.random.default_rng(1)
    reference, _ = colour_image(rng, (30, 30), COLOURS)
    model = nk.fit(reference, 4, seed=0)
    other, truth = colour_image(rng, (20, 60), COLOURS)
    seg = model.predict(other)
    # each true colour maps to one label, the label the reference gave that colour
    ref_labels = model.predict(reference).labels
    ref_truth = np.array([np.argmin(((np.array(COLOURS) - p) ** 2).sum(1)) for p in model.palette])
    for colour in range(4):
        assert np.unique(seg.labels[truth == colour]).tolist() == [
            int(np.flatnonzero(ref_truth == colour)[0]) + 1
        ]
    assert ref_labels.max() == 4
    np.testing.assert_array_equal(seg.palette, model.palette)
    assert seg.counts.tolist() == np.bincount(seg.labels.ravel(), minlength=5)[1:].tolist()
    diff = other.reshape(-1, 3).astype(float) - model.centers[seg.labels.ravel() - 1]
    assert seg.inertia == pytest.approx((diff**2).sum(), rel=1e-9)


def test_fitting_several_images_pools_their_pixels():
    rng = np.random.default_rng(2)
    a, _ = colour_image(rng, (20, 20), COLOURS[:2])
    b, _ = colour_image(rng, (10, 30), COLOURS[2:])
    model = nk.fit([a, b], 4, seed=0, smooth=None)
    stacked = np.concatenate([a.reshape(-1, 3), b.reshape(-1, 3)])[None]
    pooled = nk.fit(stacked, 4, seed=0, smooth=None)
    np.testing.assert_allclose(model.centers, pooled.centers)
    assert model.counts.tolist() == pooled.counts.tolist()
    assert model.params["fitted_images"] == 2 and model.params["fitted_pixels"] == 700
    masks = [np.ones((20, 20), bool), np.zeros((10, 30), bool)]
    masks[1][:, :5] = True
    assert nk.fit([a, b], 3, seed=0, mask=masks).params["fitted_pixels"] == 450


def test_save_and_load_round_trip(tmp_path):
    img, _ = colour_image(np.random.default_rng(3), (30, 30), COLOURS)
    model = nk.fit(img, 4, seed=0, color_space="lab")
    path = tmp_path / "model.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "napari-kmeans-model" and data["version"] == 1
    loaded = nk.load_model(path)
    np.testing.assert_array_equal(loaded.predict(img).labels, model.predict(img).labels)
    np.testing.assert_allclose(loaded.palette, model.palette)
    assert loaded.params == model.params


def test_model_files_that_cannot_be_used_are_named(tmp_path):
    img, _ = colour_image(np.random.default_rng(4), (10, 10), COLOURS)
    model = nk.fit(img, 2, seed=0)
    good = tmp_path / "good.json"
    model.save(good)
    data = json.loads(good.read_text())
    cases = {
        "newer.json": json.dumps({**data, "version": 99}),
        "broken.json": good.read_text()[:-40],
        "other.json": json.dumps({"hello": 1}),
        "mismatch.json": json.dumps({**data, "palette": data["palette"][:1]}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(nk.ModelFileError, match=name):
            nk.load_model(tmp_path / name)
    with pytest.raises(nk.ModelFileError, match="missing.json"):
        nk.load_model(tmp_path / "missing.json")
    with pytest.raises(nk.ModelFileError, match="version 99"):
        nk.load_model(tmp_path / "newer.json")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10), np.uint8), "3 channel"),
        (np.zeros((10, 10, 3), np.uint16), "uint8"),
        (np.zeros((2, 10, 10, 3), np.uint8), "2-D"),
    ],
)
def test_an_image_that_does_not_fit_the_model_is_refused(image, message):
    img, _ = colour_image(np.random.default_rng(5), (10, 10), COLOURS)
    model = nk.fit(img, 2, seed=0)
    with pytest.raises(ValueError, match=message):
        model.predict(image)


def test_lab_models_apply_across_bit_depths():
    img, _ = colour_image(np.random.default_rng(6), (20, 20), COLOURS)
    model = nk.fit(img, 4, seed=0, color_space="lab")
    deep = img.astype(np.uint16) * 257
    np.testing.assert_array_equal(model.predict(deep).labels, model.predict(img).labels)


def test_fit_bad_arguments():
    img = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="images is empty"):
        nk.fit([], 2)
    with pytest.raises(ValueError, match="share their dtype"):
        nk.fit([img, img.astype(np.uint16)], 1)
    with pytest.raises(ValueError, match="mask has 1 entries for 2 images"):
        nk.fit([img, img], 1, mask=[None])


def _direct_model(centers_1d, dtype=np.float64, ndim=1):
    """A model built without fitting: one feature, the given centres."""
    centers = np.asarray(centers_1d, np.float64)[:, None]
    return nk.KMeansModel(
        FeatureRecipe("rgb", 0.0, (1.0,) * ndim, 1.0, np.dtype(dtype)),
        centers,
        centers.copy(),
        np.ones(len(centers), np.int64),
        0.0,
        1,
        None,
        1,
        np.dtype(dtype),
        {"channel_axis": None, "n_channels": 1, "fitted_dtype": np.dtype(dtype).name},
    )


def test_labels_are_wide_enough_for_any_number_of_clusters():
    k = 70_000
    model = _direct_model(np.arange(k, dtype=np.float64))
    image = np.array([0.0, 255.0, 256.0, 65_535.0, 65_536.0, 69_999.0, 69_999.4])
    seg = model.predict(image)
    assert seg.labels.dtype == np.uint32
    np.testing.assert_array_equal(seg.labels, [1, 256, 257, 65_536, 65_537, 70_000, 70_000])
    assert _direct_model(np.arange(300.0)).predict(np.array([299.0])).labels.dtype == np.uint16
    assert _direct_model(np.arange(255.0)).predict(np.array([254.0])).labels.dtype == np.uint8


def test_labelling_reports_progress_in_blocks_and_stops_on_the_callback():
    rng = np.random.default_rng(0)
    image = rng.random((1200, 1000))  # float: every pixel is its own row
    model = _direct_model([0.25, 0.75], ndim=2)
    seen = []
    seg = model.predict(image, progress=lambda *a: seen.append(a))
    assert {s[0] for s in seen} == {"labelling"}
    assert len(seen) > 3 and seen[-1][1] == seen[-1][2] == image.size
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)
    np.testing.assert_array_equal(seg.labels, np.where(image < 0.5, 1, 2))

    class Stop(Exception):
        pass

    calls = []

    def stop_at_second(stage, done, total):
        calls.append(done)
        if len(calls) == 2:
            raise Stop

    with pytest.raises(Stop):
        model.predict(image, progress=stop_at_second)
    assert len(calls) == 2
    seen.clear()
    nk.segment(image.astype(np.float32), 2, seed=0, progress=lambda *a: seen.append(a))
    assert "labelling" in {s[0] for s in seen}


# --------------------------------------------------------------------------- merging clusters

# values 10 (3 pixels), 100 (2), 200 (1), 250 (4): with k = 4 each value is a cluster
MERGE_IMAGE = np.repeat(np.array([10, 100, 200, 250], np.uint8), [3, 2, 1, 4])[None, :]


def test_merge_pools_centres_and_palette_and_renumbers_dark_to_bright(tmp_path):
    model = nk.fit(MERGE_IMAGE, 4, seed=0)
    np.testing.assert_array_equal(model.palette.ravel(), [10, 100, 200, 250])
    merged, relabel = model.merge([[3, 1]])
    # hand-computed: (3 * 10 + 1 * 200) / 4 = 57.5, then 100 and 250, darkest first
    np.testing.assert_allclose(merged.palette.ravel(), [57.5, 100, 250])
    np.testing.assert_allclose(merged.centers.ravel(), [57.5, 100, 250])
    assert merged.counts.tolist() == [4, 2, 4]
    assert relabel.tolist() == [0, 1, 2, 1, 3]
    assert merged.inertia == pytest.approx(3 * 47.5**2 + 142.5**2)  # 27,075
    assert merged.n_clusters == 3 and merged.params["n_clusters"] == 3
    assert merged.params["merged"] == [[[1, 3]]]
    # every pixel keeps its cluster: 200 is nearer 250 than 57.5 but stays with 10
    original = model.predict(MERGE_IMAGE)
    seg = merged.predict(MERGE_IMAGE)
    np.testing.assert_array_equal(seg.labels, relabel[original.labels])
    assert seg.counts.tolist() == [4, 2, 4]
    assert seg.inertia == pytest.approx(27075)
    np.testing.assert_array_equal(
        seg.recolored, np.array([[58] * 3 + [100] * 2 + [58] + [250] * 4])
    )
    # saved and loaded, on a dask array too
    merged.save(tmp_path / "merged.json")
    loaded = nk.load_model(tmp_path / "merged.json")
    np.testing.assert_array_equal(loaded.predict(MERGE_IMAGE).labels, seg.labels)
    lazy = loaded.predict(da.from_array(MERGE_IMAGE, chunks=(1, 4)))
    np.testing.assert_array_equal(lazy.labels.compute(), seg.labels)
    # merging again composes
    twice, relabel2 = merged.merge([[1, 2]])
    np.testing.assert_allclose(twice.palette.ravel(), [(4 * 57.5 + 2 * 100) / 6, 250])
    np.testing.assert_array_equal(twice.predict(MERGE_IMAGE).labels, relabel2[seg.labels])
    assert twice.params["merged"] == [[[1, 3]], [[1, 2]]]


@pytest.mark.parametrize("groups", [[2, 3], [[1, 5]], [[1, 2], [2, 3]], [[0, 1]], [["a"]]])
def test_merge_refuses_bad_groups(groups):
    model = nk.fit(MERGE_IMAGE, 4, seed=0)
    with pytest.raises(ValueError, match="groups=.* is not allowed"):
        model.merge(groups)


def test_a_merged_model_file_with_inconsistent_sources_is_refused(tmp_path):
    merged, _ = nk.fit(MERGE_IMAGE, 4, seed=0).merge([[1, 3]])
    merged.save(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    data["source_labels"] = [1, 1, 1, 1]
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(nk.ModelFileError, match="source_labels"):
        nk.load_model(tmp_path / "m.json")
