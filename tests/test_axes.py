"""Images with their axes: real ImageJ, OME-TIFF, OME-Zarr, planar and EXIF files made here.

Files are written with tifffile, zarr and OpenCV directly; what is read back is compared with
tifffile's own reading, with the ground truth the test images were built from, and with
hand-computed downsampling.
"""

import json
import struct
import sys

import cv2
import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans import read_image
from napari_kmeans.cli.command import main
from napari_kmeans.io.axes import AxesImage, channel_axis_for

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")


def run(capsys, *args):
    code = main(["segment", *map(str, args), "--no-progress"])
    return code, capsys.readouterr()


def classes(shape, n, seed=0):
    return np.random.default_rng(seed).integers(0, n, shape)


def same_partition(labels, truth) -> bool:
    """Labels and truth split the pixels alike (one label per class and one class per label)."""
    pairs = set(zip(np.ravel(labels).tolist(), np.ravel(truth).tolist(), strict=True))
    return len(pairs) == len(set(np.ravel(labels).tolist())) == len(set(np.ravel(truth).tolist()))


def two_channel_stack(shape_zyx, seed=0):
    """(Z, C, Y, X) uint16: three classes told apart only by using both channels together."""
    truth = classes(shape_zyx, 3, seed)
    # channel 0 spans ~60000, channel 1 ~1200: 50x apart in range
    c0 = np.array([1000, 30000, 30000])[truth]
    c1 = np.array([100, 100, 1300])[truth]
    noise = np.random.default_rng(seed + 1).normal(0, 1, (2, *shape_zyx))
    stack = np.stack([c0 + 800 * noise[0], c1 + 40 * noise[1]], axis=1)
    return np.clip(stack, 0, 65535).astype(np.uint16), truth


def write_imagej(path, data, axes, spacing=None, pixel=None, **metadata):
    metadata = {"axes": axes, **metadata}
    kwargs = {}
    if spacing is not None:
        metadata["spacing"] = spacing
    if pixel is not None:
        metadata["unit"] = "um"
        kwargs["resolution"] = (1 / pixel, 1 / pixel)
    tifffile.imwrite(path, data, imagej=True, metadata=metadata, **kwargs)
    return path


# ---------------------------------------------------------------------------------------------
# Reading


def test_imagej_zcyx_hyperstack_has_its_axes_and_pixel_sizes(tmp_path):
    data, _ = two_channel_stack((5, 12, 16))
    path = write_imagej(tmp_path / "zcyx.tif", data, "ZCYX", spacing=2.5, pixel=0.5)
    image = read_image(path)
    assert image.axes == "ZCYX"
    np.testing.assert_array_equal(image.data, tifffile.imread(path))
    assert image.scale == pytest.approx((2.5, 1.0, 0.5, 0.5))
    assert image.units == ("micrometer", None, "micrometer", "micrometer")
    assert image.channel_axis == 1
    assert image.spacing() == pytest.approx((2.5, 0.5, 0.5))
    np.testing.assert_array_equal(nk.load_image(path), image.data)  # one reading everywhere


def test_imagej_tzcyx_hyperstack_has_time_and_depth(tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (3, 4, 2, 8, 10)).astype(np.uint16)
    path = write_imagej(tmp_path / "tzcyx.tif", data, "TZCYX", spacing=1.5, finterval=30.0)
    image = nk.read_image(path)
    assert image.axes == "TZCYX" and image.labels_axes == "TZYX"
    np.testing.assert_array_equal(image.data, data)
    assert image.scale[:2] == pytest.approx((30.0, 1.5))
    assert image.units[0] == "second"


def test_ome_tiff_physical_sizes(tmp_path):
    data = np.random.default_rng(1).integers(0, 255, (3, 2, 8, 9)).astype(np.uint8)
    path = tmp_path / "cells.ome.tif"
    metadata = {"axes": "ZCYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.4}
    metadata.update(PhysicalSizeZ=1.5, PhysicalSizeZUnit="nm")
    tifffile.imwrite(path, data, ome=True, metadata=metadata)
    image = read_image(path)
    assert image.axes == "ZCYX"
    np.testing.assert_array_equal(image.data, data)
    assert image.scale == pytest.approx((1.5, 1.0, 0.4, 0.3))
    assert image.units == ("nanometer", None, "micrometer", "micrometer")


def write_ome_zarr(path, data, axes, scale):
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", data=data, chunks=data.shape)
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": a, "type": kinds[a]} for a in axes],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
            ],
        }
    ]
    return path


def test_ome_zarr_input_is_read_with_its_axes_in_memory_and_lazily(tmp_path):
    from napari_kmeans.lazy.store import open_lazy_image

    data = np.random.default_rng(2).integers(0, 255, (2, 3, 6, 7)).astype(np.uint8)
    path = write_ome_zarr(tmp_path / "img.zarr", data, "czyx", [1, 2.0, 0.5, 0.5])
    image = read_image(path)
    assert image.axes == "CZYX" and image.scale == (1.0, 2.0, 0.5, 0.5)
    np.testing.assert_array_equal(image.data, data)
    lazy = open_lazy_image(path)
    assert lazy.axes == image.axes and lazy.scale == image.scale
    np.testing.assert_array_equal(lazy.data.compute(), data)
    assert lazy.data.chunks[0] == (2,)  # the channel axis stays whole in one chunk


def test_planar_rgb_tiff_is_rgb_in_memory_and_lazily(tmp_path):
    from napari_kmeans.lazy.store import open_lazy_image

    rgb = np.random.default_rng(3).integers(0, 255, (8, 9, 3)).astype(np.uint8)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    image = read_image(path)
    lazy = open_lazy_image(path)
    assert image.axes == lazy.axes == "YXS" and image.channel_axis == "rgb"
    np.testing.assert_array_equal(image.data, rgb)
    np.testing.assert_array_equal(lazy.data.compute(), rgb)


def test_png_and_plain_stacks_name_what_they_know(tmp_path):
    nk.save_image(tmp_path / "grey.png", np.zeros((4, 5), np.uint8))
    assert read_image(tmp_path / "grey.png").axes == "YX"
    pages = np.random.default_rng(0).integers(0, 255, (3, 4, 5)).astype(np.uint8)
    cv2.imwritemulti(str(tmp_path / "pages.tif"), list(pages))
    image = read_image(tmp_path / "pages.tif")
    assert image.axes == "IYX" and image.channel_axis is None
    np.testing.assert_array_equal(image.data, pages)


# ---------------------------------------------------------------------------------------------
# The channel axis: from the file, explicit values checked, no silent guesses


def test_explicit_channel_axis_is_checked_against_the_files_axes():
    image = AxesImage(np.zeros((3, 2, 4, 5)), "ZCYX", (1.0,) * 4, (None,) * 4)
    assert channel_axis_for(image, "auto") == 1 and channel_axis_for(image, 1) == 1
    for wrong, said in [(2, "Y axis"), (0, "Z axis"), (None, "leaves out"), ("rgb", "rgb does")]:
        with pytest.raises(ValueError, match=said) as error:
            channel_axis_for(image, wrong, name="--channel-axis")
        assert "--channel-axis" in str(error.value) and "axes ZCYX" in str(error.value)
    pages = AxesImage(np.zeros((3, 4, 5)), "IYX", (1.0,) * 3, (None,) * 3)
    assert channel_axis_for(pages, 0) == 0  # pages that are channels: the user says so


@pytest.mark.parametrize("shape", [(16, 16, 2), (20, 30, 6)])
def test_small_ambiguous_last_axis_is_refused_naming_channel_axis(shape):
    image = np.zeros(shape, np.uint8)
    with pytest.raises(ValueError, match=r"channel_axis='auto' cannot tell .* channel_axis=-1"):
        nk.segment(image, 2)
    assert nk.segment(image, 1, channel_axis=None).labels.shape == shape
    assert nk.segment(image, 1, channel_axis=-1).labels.shape == shape[:-1]


def test_data_channels_are_standardised_by_default():
    stack, truth = two_channel_stack((1, 40, 40))
    image = np.moveaxis(stack[0], 0, -1)  # (Y, X, 2)
    seg = nk.segment(image, 3, channel_axis=-1, seed=0)
    assert seg.params["standardize"] is True
    assert same_partition(seg.labels, truth[0])
    plain = nk.segment(image, 3, channel_axis=-1, standardize=False, seed=0)
    assert plain.params["standardize"] is False and not same_partition(plain.labels, truth[0])
    rgb = nk.segment(np.zeros((4, 4, 3), np.uint8), 1)
    assert rgb.params["standardize"] is False


# ---------------------------------------------------------------------------------------------
# The command line


def test_cli_zcyx_gives_zyx_labels_with_the_files_channel_axis(tmp_path, capsys):
    data, truth = two_channel_stack((5, 24, 32))
    path = write_imagej(tmp_path / "zcyx.tif", data, "ZCYX", spacing=2.0, pixel=0.25)
    for extra in ((), ("--channel-axis", "1")):
        code, out = run(capsys, path, "-k", "3", "--overwrite", *extra)
        assert code == 0, out.err
        with tifffile.TiffFile(tmp_path / "zcyx_labels.tif") as labels_file:
            labels = labels_file.asarray()
            assert labels_file.series[0].axes == "ZYX"
            assert labels_file.imagej_metadata["spacing"] == pytest.approx(2.0)
        assert labels.shape == (5, 24, 32)
        assert same_partition(labels, truth)
        summary = json.loads((tmp_path / "zcyx_clusters.json").read_text())
        assert summary["params"]["channel_axis"] == 1
        assert summary["params"]["standardize"] is True
        assert summary["axes"]["input"] == "ZCYX" and summary["axes"]["labels"] == "ZYX"
        assert summary["params"]["spacing"] == pytest.approx([2.0, 0.25, 0.25])


def test_cli_refuses_a_channel_axis_that_contradicts_the_file(tmp_path, capsys):
    data, _ = two_channel_stack((4, 8, 8))
    path = write_imagej(tmp_path / "zcyx.tif", data, "ZCYX")
    code, out = run(capsys, path, "-k", "3", "--channel-axis", "2")
    assert code == 1
    assert "--channel-axis 2 is the Y axis" in out.err and "axis 1 (C)" in out.err
    assert not (tmp_path / "zcyx_labels.tif").exists()


def test_cli_small_stack_without_channel_axis_uses_the_files_channels(tmp_path, capsys):
    data, truth = two_channel_stack((5, 64, 64))
    path = write_imagej(tmp_path / "small.tif", data, "ZCYX")
    code, out = run(capsys, path, "-k", "3")
    assert code == 0, out.err
    labels = tifffile.imread(tmp_path / "small_labels.tif")
    assert labels.shape == (5, 64, 64) and same_partition(labels, truth)


def test_cli_time_points_share_one_model_and_keep_their_own_coordinates(tmp_path, capsys):
    frames = [two_channel_stack((2, 16, 20), seed=s) for s in (0, 1, 2)]
    data = np.stack([f[0] for f in frames])  # (T, Z, C, Y, X)
    truth = np.stack([f[1] for f in frames])
    path = write_imagej(tmp_path / "tzcyx.tif", data, "TZCYX")
    code, out = run(capsys, path, "-k", "3", "--spatial-weight", "0.01", "--seed", "0")
    assert code == 0, out.err
    labels = tifffile.imread(tmp_path / "tzcyx_labels.tif")
    assert labels.shape == (3, 2, 16, 20)
    assert same_partition(labels, truth)  # one label per class in every frame
    model = nk.fit(list(data), 3, channel_axis=1, spatial_weight=0.01, seed=0)
    for t in range(3):  # each frame labelled by the shared model on its own coordinates
        np.testing.assert_array_equal(labels[t], model.predict(data[t]).labels)
    code, out = run(capsys, path, "-k", "3", "--overwrite")  # no coordinates: one stack
    assert code == 0, out.err
    whole = nk.segment(data, 3, channel_axis=2, seed=0).labels
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "tzcyx_labels.tif"), whole)


def test_planar_rgb_tiff_is_rgb_with_a_folder_and_with_a_zarr_out(tmp_path, capsys):
    truth = np.zeros((12, 16), int)
    truth[:, 8:] = 1
    truth[6:, :] = 2
    rgb = np.array([[0, 0, 0], [200, 30, 40], [20, 30, 220]], np.uint8)[truth]
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    code, out = run(capsys, path, "-k", "3", "--out", tmp_path / "dir")
    assert code == 0, out.err
    in_memory = cv2.imread(str(tmp_path / "dir" / "planar_labels.png"), cv2.IMREAD_UNCHANGED)
    assert in_memory.shape == (12, 16) and same_partition(in_memory, truth)
    code, out = run(capsys, path, "-k", "3", "--out", tmp_path / "labels.zarr")
    assert code == 0, out.err
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "labels.zarr")["0"][:], in_memory)


def mode_halving(labels):
    """Most frequent label of each 2 x 2 block (ties: top-left), the slow obvious way."""
    padded = np.pad(
        labels, [(0, 0)] * (labels.ndim - 2) + [(0, n % 2) for n in labels.shape[-2:]], mode="edge"
    )
    out = np.empty((*labels.shape[:-2], *(-(-n // 2) for n in labels.shape[-2:])), labels.dtype)
    for index in np.ndindex(out.shape):
        *lead, y, x = index
        block = padded[(*lead, slice(2 * y, 2 * y + 2), slice(2 * x, 2 * x + 2))].ravel().tolist()
        out[index] = max(block, key=lambda v: (block.count(v), -block.index(v)))
    return out


@pytest.mark.slow
def test_zarr_out_is_an_ome_ngff_multiscale_labels_image(tmp_path, capsys):
    truth = classes((2, 1101, 2101), 3)
    data = np.array([20, 120, 220], np.uint8)[truth]
    source = write_ome_zarr(tmp_path / "in.zarr", data, "zyx", [3.0, 0.5, 0.25])
    out = tmp_path / "labels.zarr"
    code, err = run(capsys, source, "-k", "3", "--out", out)
    assert code == 0, err.err
    group = zarr.open_group(out, mode="r")
    assert group.metadata.zarr_format == 2
    meta = group.attrs["multiscales"][0]
    assert meta["version"] == "0.4" and "image-label" in group.attrs
    assert [a["name"] for a in meta["axes"]] == ["z", "y", "x"]
    assert [a["type"] for a in meta["axes"]] == ["space"] * 3
    paths = [d["path"] for d in meta["datasets"]]
    assert paths == ["0", "1", "2"]  # 2101 -> 1051 -> 526: below 1024 after two halvings
    assert [group[p].shape for p in paths] == [(2, 1101, 2101), (2, 551, 1051), (2, 276, 526)]
    scales = [d["coordinateTransformations"][0]["scale"] for d in meta["datasets"]]
    assert scales[0] == [3.0, 0.5, 0.25]
    assert scales[1:] == [[3.0, 1.0, 0.5], [3.0, 2.0, 1.0]]
    level0 = group["0"][:]
    assert same_partition(level0, truth)
    np.testing.assert_array_equal(group["1"][:, :50, :100], mode_halving(level0[:, :100, :200]))
    corner = level0[:, -101:, -201:]  # the odd last row and column: padded by repetition
    np.testing.assert_array_equal(group["1"][:, -51:, -101:], mode_halving(corner))
    napari_builtins = pytest.importorskip("napari_builtins.io")
    layers = napari_builtins.napari_get_reader(str(out))(str(out))
    assert [level.shape for level in layers[0][0]] == [group[p].shape for p in paths]


# ---------------------------------------------------------------------------------------------
# Orientation: pixels as stored, as napari's own reader shows them


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF APP1 segment holding only the Orientation tag after SOI."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    payload = b"Exif\x00\x00" + b"II" + struct.pack("<HI", 42, 8) + ifd + struct.pack("<I", 0)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_rotated_jpeg_is_read_as_stored_like_napari_and_masks_land_there(tmp_path, capsys):
    stored = np.zeros((16, 24, 3), np.uint8)
    stored[:, 12:] = 255
    plain = cv2.imencode(".jpg", stored, (cv2.IMWRITE_JPEG_QUALITY, 100))[1].tobytes()
    path = tmp_path / "rotated.jpg"
    path.write_bytes(with_exif_orientation(plain, 6))
    as_stored = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    image = nk.load_image(path)
    np.testing.assert_array_equal(image, as_stored)
    builtins = pytest.importorskip("napari_builtins.io")
    np.testing.assert_array_equal(builtins.imread(str(path)), image)  # napari's own reader

    mask = np.zeros((16, 24), np.uint8)
    mask[:8, 8:16] = 255  # drawn over the stored pixels (black and white), as in napari
    nk.save_image(tmp_path / "mask.png", mask)
    code, out = run(capsys, path, "-k", "2", "--mask", tmp_path / "mask.png")
    assert code == 0, out.err
    labels = cv2.imread(str(tmp_path / "rotated_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels != 0, mask != 0)
    nk.save_image(tmp_path / "turned.png", np.ones((24, 16), np.uint8))
    code, out = run(capsys, path, "-k", "2", "--mask", tmp_path / "turned.png", "--overwrite")
    assert code == 1 and "mask has shape (24, 16)" in out.err


# ---------------------------------------------------------------------------------------------
# Without the extras


def test_without_tifffile_hyperstacks_are_refused_and_plain_files_still_read(tmp_path, monkeypatch):
    data, _ = two_channel_stack((3, 8, 8))
    hyperstack = write_imagej(tmp_path / "zcyx.tif", data, "ZCYX")
    nk.save_image(tmp_path / "plain.tif", np.ones((4, 5), np.uint8))
    monkeypatch.setitem(sys.modules, "tifffile", None)
    with pytest.raises(
        nk.ImageLoadError, match=r"needs tifffile: pip install .napari-kmeans\[all\]"
    ):
        nk.load_image(hyperstack)
    assert read_image(tmp_path / "plain.tif").axes == "YX"
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(nk.ImageLoadError, match=r"needs zarr"):
        from napari_kmeans.io.axes import zarr_axes

        zarr_axes(tmp_path)


def test_lazy_time_points_and_the_ome_zarr_labels_read_back_with_their_axes(tmp_path, capsys):
    frames = [two_channel_stack((2, 16, 20), seed=s) for s in (3, 4)]
    data = np.stack([f[0] for f in frames])  # (T, Z, C, Y, X)
    path = write_imagej(tmp_path / "tzcyx.tif", data, "TZCYX", spacing=2.0, pixel=0.5)
    weight = ("--spatial-weight", "0.01")
    code, out = run(capsys, path, "-k", "3", *weight, "--out", tmp_path / "memory")
    assert code == 0, out.err
    code, out = run(capsys, path, "-k", "3", *weight, "--out", tmp_path / "lazy.zarr")
    assert code == 0, out.err
    in_memory = tifffile.imread(tmp_path / "memory" / "tzcyx_labels.tif")
    labels = read_image(tmp_path / "lazy.zarr")
    assert labels.axes == "TZYX" and labels.scale == (1.0, 2.0, 0.5, 0.5)
    assert labels.units[1:] == ("micrometer",) * 3
    np.testing.assert_array_equal(labels.data, in_memory)


def test_standardize_switches_on_the_command_line(tmp_path, capsys):
    data, _ = two_channel_stack((2, 12, 12))
    path = write_imagej(tmp_path / "zcyx.tif", data, "ZCYX")
    for flags, expected in [((), True), (("--no-standardize",), False)]:
        code, out = run(capsys, path, "-k", "2", "--overwrite", *flags)
        assert code == 0, out.err
        record = json.loads((tmp_path / "zcyx_clusters.json").read_text())
        assert record["params"]["standardize"] is expected
    nk.save_image(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    code, out = run(capsys, tmp_path / "rgb.png", "-k", "1", "--standardize")
    assert code == 0, out.err
    assert json.loads((tmp_path / "rgb_clusters.json").read_text())["params"]["standardize"]


def test_ome_zarr_channels_are_the_channel_axis_on_the_command_line(tmp_path, capsys):
    stack, truth = two_channel_stack((3, 16, 20))  # (Z, C, Y, X)
    source = write_ome_zarr(tmp_path / "cells.zarr", np.swapaxes(stack, 0, 1), "czyx", [1, 2, 1, 1])
    code, out = run(capsys, source, "-k", "3", "--out", tmp_path / "labels.zarr")
    assert code == 0, out.err
    labels = read_image(tmp_path / "labels.zarr")
    assert labels.axes == "ZYX" and labels.scale == (2.0, 1.0, 1.0)
    assert same_partition(labels.data, truth)
    record = json.loads((tmp_path / "labels_clusters.json").read_text())
    assert record["params"]["channel_axis"] == 0 and record["axes"]["input"] == "CZYX"


def test_a_tiff_holding_two_series_is_refused_not_misread(tmp_path):
    path = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tiff:
        for seed in (0, 1):
            tiff.write(np.full((2, 6, 7), seed, np.uint8), metadata={"axes": "ZYX"})
    assert len(tifffile.TiffFile(path).series) == 2
    with pytest.raises(nk.ImageLoadError, match="several series"):
        read_image(path)
