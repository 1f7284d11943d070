"""Label clean-up on every path: segment, predict, models, dask, cross-check, CLI.

The clean-up does not yet combine with smoothing: every call here passes ``smooth=None``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_kmeans as nk_module
from napari_kmeans.cli.command import main
from napari_kmeans.io.model_file import model_to_dict
from napari_kmeans.options import segment_options


class _NoSmoothing:
    """napari_kmeans with smooth=None unless given (the clean-up is measured alone)."""

    def __getattr__(self, name):
        attr = getattr(nk_module, name)
        if name in ("segment", "fit"):
            return lambda *a, **k: attr(*a, **{"smooth": None, **k})
        return attr


nk = _NoSmoothing()

CLEANUPS = [
    {"regularize": "majority"},
    {"regularize": ("majority", 2)},
    {"regularize": ("potts", 2.0)},
    {"min_size": 6},
    {"regularize": "potts", "min_size": 4},
]
LAZY_CLEANUPS = [c for c in CLEANUPS if "min_size" not in c]


def noisy_blobs(shape=(40, 44), channels=None, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.indices(shape)
    truth = np.zeros(shape, np.intp)
    truth[(grids[0] - shape[0] // 3) ** 2 + (grids[1] - shape[1] // 3) ** 2 < 80] = 1
    truth[tuple(slice(s // 2, s - 3) for s in shape)] = 2
    levels = np.array([40.0, 120.0, 200.0])
    image = levels[truth] + rng.normal(0, 35, shape)
    if channels:
        image = np.stack([image, 255 - image, image / 2][:channels], axis=-1)
    if np.dtype(dtype).kind in "ui":
        image = np.clip(np.rint(image), 0, 255)
    return image.astype(dtype), truth


def test_final_statistics_are_those_of_the_final_labels():
    image, _ = noisy_blobs()
    plain = nk.segment(image, 3, seed=0)
    seg = nk.segment(image, 3, seed=0, regularize="potts", min_size=5)
    labels = seg.labels
    assert (labels != plain.labels).any()
    k = seg.n_clusters
    # independent oracles: NumPy bincount and means, squared distances written out
    np.testing.assert_array_equal(seg.counts, np.bincount(labels.ravel(), minlength=k + 1)[1:])
    means = [image[labels == label].mean() for label in range(1, k + 1)]
    np.testing.assert_allclose(seg.palette[:, 0], means)
    inertia = sum(
        float(((image[labels == label] - seg.centers[label - 1, 0]) ** 2).sum())
        for label in range(1, k + 1)
    )
    assert seg.inertia == pytest.approx(inertia, rel=1e-12)
    np.testing.assert_array_equal(seg.recolored, np.rint(seg.palette[labels - 1, 0]))
    assert seg.fit_inertia == pytest.approx(plain.inertia, rel=1e-12)
    assert seg.inertia > seg.fit_inertia  # the nearest centre minimises each pixel's term
    assert plain.fit_inertia == plain.inertia
    assert seg.params["regularize"] == ["potts", 1.0] and seg.params["min_size"] == 5
    # the model keeps the fit's own figures
    assert seg.model.inertia == plain.model.inertia


@pytest.mark.parametrize("cleanup", CLEANUPS)
@pytest.mark.parametrize(
    "kind", ["grey", "rgb_lab", "float", "masked", "spatial", "3d_anisotropic"]
)
def test_predict_equals_segment(kind, cleanup):
    options = {}
    mask = None
    if kind == "rgb_lab":
        image, _ = noisy_blobs(channels=3)
        options["color_space"] = "lab"
    elif kind == "float":
        image, _ = noisy_blobs(dtype=np.float32)
    elif kind == "masked":
        image, _ = noisy_blobs()
        mask = np.ones(image.shape, bool)
        mask[5:15, 20:40] = False
    elif kind == "spatial":
        image, _ = noisy_blobs()
        options["spatial_weight"] = 0.2
    elif kind == "3d_anisotropic":
        image, _ = noisy_blobs(shape=(6, 20, 22))
        options["spacing"] = (2.5, 1.0, 1.0)
    else:
        image, _ = noisy_blobs()
    seg = nk.segment(image, 3, seed=1, mask=mask, **options, **cleanup)
    model = nk.fit(image, 3, seed=1, mask=mask, **options, **cleanup)
    again = model.predict(image, mask=mask)
    np.testing.assert_array_equal(again.labels, seg.labels)
    np.testing.assert_array_equal(again.counts, seg.counts)
    np.testing.assert_allclose(again.palette, seg.palette)
    np.testing.assert_array_equal(again.recolored, seg.recolored)
    assert again.inertia == pytest.approx(seg.inertia, rel=1e-9)
    if mask is not None:
        assert (seg.labels[~mask] == 0).all() and (seg.labels[mask] > 0).all()
        np.testing.assert_array_equal(seg.recolored[~mask], image[~mask])
    # the recorded params repeat the run
    repeat = nk.segment(image, mask=mask, **segment_options(seg.params))
    np.testing.assert_array_equal(repeat.labels, seg.labels)


def test_min_size_leaves_no_small_component():
    ndimage = pytest.importorskip("scipy.ndimage")
    image, _ = noisy_blobs(seed=3)
    seg = nk.segment(image, 3, seed=0, min_size=8)
    plain = nk.segment(image, 3, seed=0)

    def pieces(labels):
        return [ndimage.label(labels == label)[1] for label in range(1, 4)]

    sizes = [
        np.bincount(ndimage.label(seg.labels == label)[0].ravel())[1:] for label in range(1, 4)
    ]
    assert all((s >= 8).all() for s in sizes)
    assert sum(pieces(seg.labels)) < sum(pieces(plain.labels))


def test_model_file_round_trip_and_older_files(tmp_path):
    image, _ = noisy_blobs()
    model = nk.fit(image, 3, seed=0, regularize=("majority", 2), min_size=3.5, spacing=(0.5, 2))
    path = tmp_path / "model.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["version"] == 2
    assert data["cleanup"] == {"regularize": ["majority", 2], "min_size": 3.5}
    loaded = nk.load_model(path)
    assert loaded.cleanup == model.cleanup
    np.testing.assert_array_equal(loaded.predict(image).labels, model.predict(image).labels)
    # a file written before the clean-up existed: version 1, no entry
    old = model_to_dict(nk.fit(image, 3, seed=0))
    assert old["version"] == 1 and "cleanup" not in old
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert not nk.load_model(tmp_path / "old.json").cleanup.active
    broken = {**data, "cleanup": {"regularize": ["potts", -1], "min_size": None}}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(nk.ModelFileError, match="cleanup"):
        nk.load_model(tmp_path / "broken.json")


@pytest.mark.parametrize("cleanup", LAZY_CLEANUPS)
@pytest.mark.parametrize(
    ("shape", "chunks", "spacing", "channels"),
    [
        ((40, 44), (7, 9), None, None),
        ((40, 44), (40, 11), None, 3),
        ((6, 20, 22), (2, 7, 8), (2.5, 1.0, 1.0), None),
    ],
)
def test_chunked_equals_in_memory(cleanup, shape, chunks, spacing, channels):
    da = pytest.importorskip("dask.array")
    image, _ = noisy_blobs(shape=shape, channels=channels)
    mask = np.ones(shape, bool)
    mask[tuple(slice(2, 5) for _ in shape)] = False
    lazy = da.from_array(image, chunks=(*chunks, channels) if channels else chunks)
    options = {"spacing": spacing, **cleanup}
    model = nk.fit(image, 3, seed=2, **options)
    expected = model.predict(image, mask=mask)
    got = model.predict(lazy, mask=mask)
    np.testing.assert_array_equal(got.labels.compute(), expected.labels)
    np.testing.assert_array_equal(np.asarray(got.counts), expected.counts)
    np.testing.assert_allclose(got.palette, expected.palette)
    np.testing.assert_array_equal(got.recolored.compute(), expected.recolored)
    assert float(got.inertia) == pytest.approx(expected.inertia, rel=1e-9)
    # segment on dask fits the same histogram: the same result as in memory
    seg = nk.segment(lazy, 3, seed=2, mask=mask, **options)
    in_memory = nk.segment(image, 3, seed=2, mask=mask, **options)
    np.testing.assert_array_equal(seg.labels.compute(), in_memory.labels)


def test_min_size_is_refused_on_dask_before_any_work():
    da = pytest.importorskip("dask.array")
    image, _ = noisy_blobs()
    lazy = da.from_array(image, chunks=10)
    with pytest.raises(ValueError, match="min_size=5 is not available for dask arrays"):
        nk.segment(lazy, 3, min_size=5)
    model = nk.fit(image, 3, seed=0, min_size=5)
    with pytest.raises(ValueError, match="min_size=5 is not available for dask arrays"):
        model.predict(lazy)


def test_cross_check_compares_the_k_means_labels():
    image, _ = noisy_blobs()
    seg = nk.segment(image, 3, seed=0, regularize=("potts", 3.0), min_size=4)
    plain = nk.segment(image, 3, seed=0)
    check = nk.cross_check(image, seg)
    reference = nk.cross_check(image, plain)
    assert check.adjusted_rand_index == pytest.approx(reference.adjusted_rand_index)
    assert check.inertia_ratio == pytest.approx(reference.inertia_ratio)


@pytest.mark.parametrize(
    ("flags", "options"),
    [
        (["--regularize", "majority"], {"regularize": "majority"}),
        (
            ["--regularize", "potts:2.5", "--min-size", "5"],
            {"regularize": ("potts", 2.5), "min_size": 5},
        ),
        (["--min-size", "2.5", "--spacing", "0.5,2"], {"min_size": 2.5, "spacing": (0.5, 2.0)}),
    ],
)
def test_cli_flags(tmp_path, flags, options):
    image, _ = noisy_blobs()
    nk.save_image(tmp_path / "a.png", image)
    status = main(
        ["segment", str(tmp_path / "a.png"), "-k", "3", "--no-progress", "--smooth", "none", *flags]
    )
    assert status == 0
    labels = nk.load_image(tmp_path / "a_labels.png")
    expected = nk.segment(image, 3, seed=0, **options)
    np.testing.assert_array_equal(labels, expected.labels)
    summary = json.loads((tmp_path / "a_clusters.json").read_text())
    assert summary["inertia"] == pytest.approx(expected.inertia)
    assert summary["fit_inertia"] == pytest.approx(expected.fit_inertia)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--regularize", "median"], "--regularize"),
        (["--regularize", "majority:0"], "--regularize"),
        (["--min-size", "0"], "--min-size"),
        (["--min-size", "-3.5"], "--min-size"),
        (["--min-size", "4", "--out", "labels.zarr"], "labels.zarr"),
    ],
)
def test_cli_refuses_bad_values_before_work(tmp_path, capsys, flags, message):
    image, _ = noisy_blobs()
    nk.save_image(tmp_path / "a.png", image)
    flags = [str(tmp_path / f) if f.endswith(".zarr") else f for f in flags]
    status = main(["segment", str(tmp_path / "a.png"), "-k", "3", "--no-progress", *flags])
    assert status == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("regularize", "smooth"), ("regularize", ("potts", 0)), ("min_size", 0), ("min_size", True)],
)
def test_api_refuses_bad_values(name, value):
    image, _ = noisy_blobs()
    with pytest.raises(ValueError, match=f"{name}="):
        nk.segment(image, 3, **{name: value})
    with pytest.raises(ValueError, match=f"{name}="):
        nk.fit(image, 3, **{name: value})


def test_merged_model_keeps_its_clean_up():
    image, _ = noisy_blobs()
    model = nk.fit(image, 3, seed=0, regularize=("potts", 2.0), min_size=4)
    merged, relabel = model.merge([[2, 3]])
    assert merged.cleanup == model.cleanup
    seg = merged.predict(image)
    # the Potts data term of a merged label is its nearest fitted centre: a 2-label model
    # fitted the same way is no oracle, but the clean-up must leave no component under 4
    ndimage = pytest.importorskip("scipy.ndimage")
    for label in (1, 2):
        sizes = np.bincount(ndimage.label(seg.labels == label)[0].ravel())[1:]
        assert (sizes >= 4).all()
    np.testing.assert_array_equal(seg.counts, np.bincount(seg.labels.ravel(), minlength=3)[1:])
