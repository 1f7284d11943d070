"""n-D stacks, channels anywhere and dask arrays in and out.

Oracles: the in-memory ``segment`` (the dask path must give the same model and labels for
integer data), the known phases of synthetic stacks (adjusted Rand index from scikit-learn)
and NumPy computations of counts, palette and inertia written here.
"""

import subprocess
import sys
import threading

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from sklearn.metrics import adjusted_rand_score

import napari_kmeans as nk
from napari_kmeans.io.images import ImageLoadError
from napari_kmeans.lazy.store import open_lazy, write_labels_zarr
from synthetic import phase_image


def assert_same_segmentation(lazy, eager):
    assert isinstance(lazy.labels, da.Array) and isinstance(lazy.recolored, da.Array)
    np.testing.assert_array_equal(lazy.labels.compute(), eager.labels)
    np.testing.assert_array_equal(lazy.recolored.compute(), eager.recolored)
    np.testing.assert_array_equal(lazy.counts, eager.counts)
    np.testing.assert_array_equal(lazy.palette, eager.palette)
    np.testing.assert_array_equal(lazy.centers, eager.centers)
    assert lazy.inertia == eager.inertia
    assert lazy.labels.dtype == eager.labels.dtype and lazy.recolored.dtype == eager.recolored.dtype


def check_against_numpy(img, labels, seg):
    """Counts and palette over every pixel, from the labels, computed here."""
    values = img.reshape(labels.size, -1).astype(np.float64)
    flat = labels.ravel()
    k = seg.n_clusters
    np.testing.assert_array_equal(seg.counts, np.bincount(flat, minlength=k + 1)[1:])
    for c in range(1, k + 1):
        np.testing.assert_allclose(seg.palette[c - 1], values[flat == c].mean(axis=0), rtol=1e-9)


RGB = [[250, 20, 20], [20, 200, 30], [30, 40, 220], [240, 240, 240], [90, 90, 90]]


@pytest.mark.parametrize("chunks", [(80, 60, 3), (25, 60, 3), (17, 13, 3)])
def test_uint8_rgb_matches_in_memory(chunks):
    rng = np.random.default_rng(0)
    img, _ = phase_image(rng, (80, 60), RGB, 12, np.uint8)
    for seed in (0, 1):
        eager = nk.segment(img, 5, seed=seed)
        lazy = nk.segment(da.from_array(img, chunks=chunks), 5, seed=seed)
        assert_same_segmentation(lazy, eager)
        assert lazy.labels.chunks == da.from_array(img, chunks=chunks).chunks[:2]
    check_against_numpy(img, lazy.labels.compute(), lazy)


@pytest.mark.parametrize("chunks", [(6, 30, 40), (2, 30, 40), (4, 11, 7)])
@pytest.mark.parametrize("method", ["kmeans++", "optimal"])
def test_uint16_stack_matches_in_memory(chunks, method):
    rng = np.random.default_rng(1)
    img, _ = phase_image(rng, (6, 30, 40), [[500], [20000], [45000], [60000]], 3000, np.uint16)
    eager = nk.segment(img, 4, seed=2, method=method)
    lazy = nk.segment(da.from_array(img, chunks=chunks), 4, seed=2, method=method)
    assert_same_segmentation(lazy, eager)
    assert lazy.labels.chunks == da.from_array(img, chunks=chunks).chunks
    assert lazy.params["fitted_pixels"] == img.size


@pytest.mark.parametrize("lazy_mask", [False, True])
def test_mask_numpy_or_dask_matches_in_memory(lazy_mask):
    rng = np.random.default_rng(2)
    img, _ = phase_image(rng, (5, 24, 30), [[30, 30], [220, 100], [120, 10]], 6, np.uint8)
    mask = rng.random((5, 24, 30)) > 0.4
    eager = nk.segment(img, 3, seed=0, mask=mask, channel_axis=-1)
    given = da.from_array(mask, chunks=(2, 5, 7)) if lazy_mask else mask
    lazy = nk.segment(
        da.from_array(img, chunks=(2, 10, 30, 2)), 3, seed=0, mask=given, channel_axis=-1
    )
    assert_same_segmentation(lazy, eager)
    labels = lazy.labels.compute()
    assert np.all(labels[~mask] == 0) and np.all(labels[mask] > 0)
    np.testing.assert_array_equal(lazy.recolored.compute()[~mask], img[~mask])


def test_channel_axis_first_and_rgba_match_in_memory():
    rng = np.random.default_rng(3)
    img, _ = phase_image(rng, (40, 30), RGB[:3], 5, np.uint8)
    first = np.moveaxis(img, -1, 0).copy()
    eager = nk.segment(first, 3, seed=0, channel_axis=0)
    assert_same_segmentation(
        nk.segment(da.from_array(first, chunks=(3, 15, 10)), 3, seed=0, channel_axis=0), eager
    )
    rgba = np.concatenate([img, rng.integers(0, 256, (40, 30, 1), dtype=np.uint8)], axis=-1)
    eager = nk.segment(rgba, 3, seed=0)
    lazy = nk.segment(da.from_array(rgba, chunks=(9, 30, 4)), 3, seed=0)
    assert_same_segmentation(lazy, eager)
    np.testing.assert_array_equal(lazy.recolored.compute()[..., 3], rgba[..., 3])


def test_float_stack_is_fitted_on_a_sample_and_recovers_the_phases():
    rng = np.random.default_rng(4)
    levels = [[0.1, 0.8], [0.5, 0.2], [0.9, 0.9]]
    img, truth = phase_image(rng, (8, 40, 50), levels, 0.03, np.float32)
    image = da.from_array(img, chunks=(3, 20, 25, 2))
    options = {"sample_size": 2_000, "channel_axis": -1, "standardize": False}
    seg = nk.segment(image, 3, seed=0, **options)
    labels = seg.labels.compute()
    assert adjusted_rand_score(truth.ravel(), labels.ravel()) == 1.0
    assert seg.params["fitted_pixels"] == 2_000
    check_against_numpy(img, labels, seg)
    feats = img.reshape(-1, 2).astype(np.float64)
    inertia = ((feats - seg.centers[labels.ravel() - 1]) ** 2).sum()
    assert seg.inertia == pytest.approx(inertia, rel=1e-9)
    again = nk.segment(image, 3, seed=0, **options)
    np.testing.assert_array_equal(again.centers, seg.centers)


def test_float_image_smaller_than_the_sample_is_fitted_on_every_pixel_like_in_memory():
    rng = np.random.default_rng(5)
    img, _ = phase_image(rng, (30, 40), [[0.1, 0.2, 0.3], [0.8, 0.7, 0.1]], 0.05, np.float32)
    eager = nk.segment(img, 2, seed=0)
    lazy = nk.segment(da.from_array(img, chunks=(7, 9, 3)), 2, seed=0)
    np.testing.assert_array_equal(lazy.labels.compute(), eager.labels)
    np.testing.assert_allclose(lazy.centers, eager.centers, rtol=1e-12)
    assert lazy.inertia == pytest.approx(eager.inertia, rel=1e-6)


def test_spatial_features_use_each_chunks_place_in_the_image():
    rng = np.random.default_rng(6)
    img, _ = phase_image(rng, (6, 20, 24), [[1000], [40000]], 300, np.uint16)
    kwargs = {"spatial_weight": 2.0, "spacing": (3.0, 1.0, 0.5), "seed": 0}
    eager = nk.segment(img, 4, **kwargs)
    lazy = nk.segment(da.from_array(img, chunks=(4, 7, 10)), 4, **kwargs)
    np.testing.assert_array_equal(lazy.labels.compute(), eager.labels)
    np.testing.assert_allclose(lazy.centers, eager.centers, rtol=1e-12)


def test_labels_are_lazy_and_one_chunk_reads_one_chunk():
    rng = np.random.default_rng(7)
    img, _ = phase_image(rng, (4, 20, 30), [[10], [100], [200]], 3, np.uint8)
    read = []
    lock = threading.Lock()

    def reading(block, block_info=None):
        with lock:
            read.append(block_info[0]["chunk-location"])
        return block

    image = da.from_array(img, chunks=(2, 10, 15)).map_blocks(reading, dtype=img.dtype)
    seg = nk.segment(image, 3, seed=0, smooth=None)  # no overlap: one chunk read
    assert sorted(read) == sorted(np.ndindex(2, 2, 2))  # the fit read every chunk once
    read.clear()
    block = seg.labels.blocks[1, 0, 1].compute()
    assert read == [(1, 0, 1)]
    np.testing.assert_array_equal(
        block, nk.segment(img, 3, seed=0, smooth=None).labels[2:, :10, 15:]
    )


def test_two_segmentations_computed_together_keep_their_own_results():
    rng = np.random.default_rng(12)
    first, _ = phase_image(rng, (20, 30), [[10], [100], [200]], 3, np.uint8)
    second = first[::-1].copy()
    one = nk.segment(da.from_array(first, chunks=10), 3, seed=0)
    two = nk.segment(da.from_array(second, chunks=10), 3, seed=0)
    labels_one, labels_two, recolored_two = dask.compute(one.labels, two.labels, two.recolored)
    np.testing.assert_array_equal(labels_one, nk.segment(first, 3, seed=0).labels)
    np.testing.assert_array_equal(labels_two, nk.segment(second, 3, seed=0).labels)
    np.testing.assert_array_equal(recolored_two, nk.segment(second, 3, seed=0).recolored)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel_axis": 4}, "channel_axis=4"),
        ({"spacing": (1.0, 1.0)}, "spacing=.*3 positive"),
        ({"spacing": (1.0, 0.0, 1.0)}, "spacing=.*positive"),
        ({"mask": np.ones((4, 6), bool)}, r"mask has shape \(4, 6\).*\(4, 6, 5\)"),
        ({"mask": da.ones((4, 6, 4), bool)}, r"mask has shape \(4, 6, 4\)"),
        ({"mask": np.zeros((4, 6, 5), bool)}, "mask excludes every pixel"),
        ({"sample_size": 0}, "sample_size=0"),
        ({"method": "optimal", "spatial_weight": 1.0}, "method='optimal'"),
        ({"n_clusters": 0}, "n_clusters=0"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    image = da.from_array(np.arange(120, dtype=np.uint8).reshape(4, 6, 5), chunks=2)
    with pytest.raises(ValueError, match=message):
        nk.segment(image, **{"n_clusters": 2, **kwargs})


def test_chunks_along_the_channel_axis_are_refused_with_rechunk_advice():
    image = da.zeros((10, 10, 3), np.uint8, chunks=(5, 5, 1))
    with pytest.raises(ValueError, match=r"channel_axis='auto'.*rechunk\(\{2: -1\}\)"):
        nk.segment(image, 2)
    image = da.zeros((4, 10, 10), np.uint16, chunks=(2, 10, 10))
    with pytest.raises(ValueError, match=r"channel_axis=0.*chunks \(2, 2\)"):
        nk.segment(image, 2, channel_axis=0)


def test_non_finite_floats_are_refused():
    img = np.zeros((10, 10), np.float32)
    img[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        nk.segment(da.from_array(img, chunks=5), 2, seed=0)


def test_distributed_client_gives_the_in_memory_result(tmp_path):
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(8)
    img, _ = phase_image(rng, (4, 30, 40), [[500], [20000], [45000]], 2000, np.uint16)
    eager = nk.segment(img, 3, seed=1)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert dask.base.get_scheduler() == client.get
        lazy = nk.segment(da.from_array(img, chunks=(2, 15, 40)), 3, seed=1)
        assert_same_segmentation(lazy, eager)
        sampled = nk.segment(
            da.from_array(img.astype(np.float32), chunks=(2, 15, 40)), 3, seed=1, sample_size=500
        )
        assert adjusted_rand_score(eager.labels.ravel(), sampled.labels.compute().ravel()) == 1
        write_labels_zarr(lazy.labels, tmp_path / "labels.zarr", progress=False)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "labels.zarr")[:], eager.labels)


def test_open_lazy_reads_tiff_and_zarr_without_loading(tmp_path):
    rng = np.random.default_rng(9)
    stack = rng.integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", stack, tile=(32, 32), photometric="rgb")
    image = open_lazy(tmp_path / "stack.tif")
    assert isinstance(image, da.Array) and image.chunks[-1] == (3,)
    np.testing.assert_array_equal(image.compute(), stack)

    planes = np.moveaxis(stack, -1, 0)  # channels first, stored one plane per chunk
    zarr.create_array(
        tmp_path / "planes.zarr", data=np.ascontiguousarray(planes), chunks=(1, 1, 32, 48)
    )
    image = open_lazy(tmp_path / "planes.zarr", channel_axis=0)
    assert image.chunks[0] == (3,)
    np.testing.assert_array_equal(image.compute(), planes)

    group = zarr.open_group(tmp_path / "ome.zarr", mode="w")
    group.create_array("0", data=stack[0, ..., 0])
    group.create_array("1", data=stack[0, ::2, ::2, 0])
    np.testing.assert_array_equal(open_lazy(tmp_path / "ome.zarr").compute(), stack[0, ..., 0])


@pytest.mark.parametrize("name", ["missing.zarr", "not_an_image.zarr", "broken.tif"])
def test_open_lazy_unreadable_path_names_it(tmp_path, name):
    path = tmp_path / name
    if name == "not_an_image.zarr":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    if name == "broken.tif":
        path.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageLoadError, match=f"cannot load image '{path}'"):
        open_lazy(path)


def test_write_labels_zarr_writes_every_chunk_with_a_progress_bar(tmp_path, capsys):
    labels = da.from_array(np.arange(7 * 10, dtype=np.uint16).reshape(7, 10), chunks=(3, 4))
    write_labels_zarr(labels, tmp_path / "out.zarr")
    stored = zarr.open_array(tmp_path / "out.zarr")
    np.testing.assert_array_equal(stored[:], labels.compute())
    assert stored.chunks == (3, 4) and stored.dtype == np.uint16
    assert "9/9" in capsys.readouterr().err  # 3 x 3 chunks


# --------------------------------------------------------------------------- n-D in memory


def test_channel_axis_in_any_position_of_a_stack_gives_the_same_labels():
    rng = np.random.default_rng(10)
    img, truth = phase_image(rng, (4, 12, 16), [[10, 200], [200, 10], [120, 120]], 6, np.uint8)
    last = nk.segment(img, 3, seed=0, channel_axis=-1)
    assert adjusted_rand_score(truth.ravel(), last.labels.ravel()) == 1.0
    for axis in range(3):
        moved = np.moveaxis(img, -1, axis).copy()
        seg = nk.segment(moved, 3, seed=0, channel_axis=axis)
        np.testing.assert_array_equal(seg.labels, last.labels)
        np.testing.assert_array_equal(np.moveaxis(seg.recolored, axis, -1), last.recolored)


def test_anisotropic_spacing_scales_the_coordinate_features():
    # one value everywhere: the two clusters split the stack by position only
    img = np.zeros((3, 4, 5), np.uint8)
    img[..., 2:] = 90
    weight, spacing = 0.5, (4.0, 1.0, 0.5)
    seg = nk.segment(img, 2, spatial_weight=weight, spacing=spacing, seed=0)
    # features: value, then z*4, y*1, x*0.5 scaled so the largest extent (z: 2*4 = 8) is 0.5*90
    scale = weight * 90 / 8
    expected = []
    for cluster in (img == 0, img == 90):
        z, y, x = np.nonzero(cluster)
        expected.append(
            [img[cluster].mean(), *(np.array(spacing) * scale * [z.mean(), y.mean(), x.mean()])]
        )
    np.testing.assert_allclose(seg.centers, expected, rtol=1e-6)


def test_segment_dispatches_dask_arrays_and_importing_the_package_does_not_import_dask():
    rng = np.random.default_rng(11)
    img, _ = phase_image(rng, (3, 20, 30), RGB[:3], 5, np.uint8)
    lazy = nk.segment(da.from_array(img, chunks=(1, 10, 30, 3)), 3, seed=0)
    assert_same_segmentation(lazy, nk.segment(img, 3, seed=0))
    code = "import sys, napari_kmeans, napari_kmeans.cli.command; print('dask' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_fit_on_a_dask_array_fits_like_segment_on_it():
    rng = np.random.default_rng(21)
    img, _ = phase_image(rng, (3, 30, 40), [[10], [100], [200]], 3, np.uint8)
    lazy = da.from_array(img, chunks=(1, 15, 20))
    model = nk.fit(lazy, 3, seed=0)  # integers: the exact histogram, like in memory
    np.testing.assert_allclose(model.centers, nk.fit(img, 3, seed=0).centers)
    # floats: a sample of the default size, then statistics over every pixel
    floats = rng.random((1100, 1000), dtype=np.float32)
    lazy = da.from_array(floats, chunks=(550, 500))
    model = nk.fit(lazy, 2, seed=3)
    seg = nk.segment(lazy, 2, seed=3)
    assert model.params["fitted_pixels"] == 1_000_000 == seg.params["fitted_pixels"]
    np.testing.assert_array_equal(model.centers, seg.centers)
    np.testing.assert_array_equal(model.counts, seg.counts)


def test_fit_on_several_dask_arrays_pools_them_like_the_concatenated_pixels():
    rng = np.random.default_rng(22)
    a, _ = phase_image(rng, (2, 30, 40), [[10], [100], [200]], 6, np.uint16)
    b, _ = phase_image(rng, (25, 20), [[10], [100], [200]], 6, np.uint16)
    mask_b = rng.random(b.shape) < 0.7
    pooled = np.concatenate([a.ravel(), b[mask_b]])[None, :]  # the oracle: one row of pixels
    lazy = nk.fit(
        [da.from_array(a, chunks=(1, 15, 20)), da.from_array(b, chunks=10)],
        3,
        mask=[None, mask_b],
        seed=0,
    )
    oracle = nk.fit(pooled, 3, seed=0)  # integers: pooled histograms are exact
    np.testing.assert_array_equal(lazy.centers, oracle.centers)
    np.testing.assert_array_equal(lazy.palette, oracle.palette)
    np.testing.assert_array_equal(lazy.counts, oracle.counts)
    assert lazy.params["fitted_images"] == 2 and lazy.params["fitted_pixels"] == pooled.size
    # floats with coordinates: one sample from both images (here every pixel), each pixel
    # with its own image's coordinates, then statistics over every pixel of both
    fa, fb = a.astype(np.float32), b[None].astype(np.float32)  # both 3-D for coordinates
    options = {"spatial_weight": 0.2, "seed": 1, "mask": [None, mask_b[None]]}
    lazy = nk.fit([da.from_array(fa, chunks=(1, 15, 20)), fb], 3, **options)
    memory = nk.fit([fa, fb], 3, **options)
    np.testing.assert_allclose(lazy.centers, memory.centers, rtol=1e-6)
    np.testing.assert_array_equal(lazy.counts, memory.counts)
    np.testing.assert_allclose(lazy.palette, memory.palette, rtol=1e-9)
    assert lazy.inertia == pytest.approx(memory.inertia, rel=1e-6)
    with pytest.raises(ValueError, match="must share their dtype"):
        nk.fit([da.from_array(a), da.from_array(fb)], 3)


def test_predict_on_a_dask_array_stays_lazy_and_matches_in_memory():
    rng = np.random.default_rng(22)
    img, _ = phase_image(rng, (4, 20, 30), [[10], [100], [200]], 3, np.uint8)
    model = nk.fit(img[:1], 3, seed=0)
    read = []
    lock = threading.Lock()

    def reading(block, block_info=None):
        with lock:
            read.append(block_info[0]["chunk-location"])
        return block

    image = da.from_array(img, chunks=(2, 10, 15)).map_blocks(reading, dtype=img.dtype)
    mask = np.ones(img.shape, bool)
    mask[0, :5] = False
    seg = model.predict(image, mask=mask)
    assert read == []  # nothing computed yet
    for lazy in (seg.labels, seg.recolored, seg.counts, seg.inertia):
        assert isinstance(lazy, da.Array)
    eager = model.predict(img, mask=mask)
    labels, counts, inertia = dask.compute(seg.labels, seg.counts, seg.inertia)
    np.testing.assert_array_equal(labels, eager.labels)
    np.testing.assert_array_equal(counts, eager.counts)
    assert float(inertia) == pytest.approx(eager.inertia, rel=1e-9)
    np.testing.assert_array_equal(seg.recolored.compute(), eager.recolored)
    assert seg.to_dict()["counts"] == eager.counts.tolist()
    read.clear()
    seg.labels.blocks[1, 0, 1].compute()
    assert read == [(1, 0, 1)]


def test_one_sample_is_drawn_across_several_dask_arrays():
    from napari_kmeans.lazy.segment import fit_dask
    from napari_kmeans.options import make_options

    rng = np.random.default_rng(23)
    a, _ = phase_image(rng, (40, 50), [[0.1], [0.5], [0.9]], 0.02, np.float32)
    b, truth_b = phase_image(rng, (30, 60), [[0.1], [0.5], [0.9]], 0.02, np.float32)
    images = [da.from_array(a, chunks=20), da.from_array(b, chunks=30)]
    model = fit_dask(images, make_options(3, seed=0, sample_size=400), [None, None])
    assert model.params["fitted_pixels"] == 400
    assert model.counts.sum() == a.size + b.size  # statistics over every pixel of both
    np.testing.assert_allclose(model.palette.ravel(), [0.1, 0.5, 0.9], atol=0.01)
    labels_b = model.predict(b).labels
    assert adjusted_rand_score(truth_b.ravel(), labels_b.ravel()) == 1.0
    # the same seed draws the same sample
    again = fit_dask(images, make_options(3, seed=0, sample_size=400), [None, None])
    np.testing.assert_array_equal(again.centers, model.centers)
