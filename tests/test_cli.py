"""The ``napari-kmeans`` command, run in-process through ``main`` and once as a console script.

Inputs are written and outputs read back with OpenCV directly (not our io module); palettes
and recoloured pixels are checked against means computed here.
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans.cli.command import main
from napari_kmeans.io.model_file import MODEL_VERSION

SEGMENT_OPTIONS = (
    "-k",
    "--n-clusters",
    "--method",
    "--color-space",
    "--channel-axis",
    "--spatial-weight",
    "--spacing",
    "--standardize",
    "--mask",
    "--seed",
    "--n-init",
    "--max-iter",
    "--tol",
    "--cross-check",
    "--out",
    "--save-model",
    "--no-progress",
    "--overwrite",
    "--max-pixels",
)


def blobs(shape=(12, 16), dtype=np.uint8, channels=3, seed=0):
    """Three well-separated colour levels plus a little noise, in the given dtype."""
    rng = np.random.default_rng(seed)
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    # the fourth column is alpha for RGBA images (ignored by clustering, kept in the output)
    levels = np.array([[0.1, 0.2, 0.15, 1.0], [0.5, 0.45, 0.6, 0.4], [0.9, 0.85, 0.8, 0.7]])
    levels = levels[:, :channels]
    truth = rng.integers(0, 3, shape)
    image = (levels[truth] + rng.normal(0, 0.02, (*shape, channels))).clip(0, 1) * top
    if dtype != np.float32:
        image = np.rint(image)
    image = image.astype(dtype)
    return image[..., 0] if channels == 1 else image


def bgr(image):
    """RGB(A) -> the channel order cv2.imwrite expects."""
    if image.ndim == 3 and image.shape[2] == 3:
        return image[..., ::-1]
    if image.ndim == 3 and image.shape[2] == 4:
        return image[..., [2, 1, 0, 3]]
    return image


def write(path, image, ext=None):
    """Write ``image`` (RGB order) with OpenCV, encoded as ``ext`` (default: path's suffix)."""
    ok, encoded = cv2.imencode(ext or path.suffix, np.ascontiguousarray(bgr(image)))
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def read(path):
    """Read an output with OpenCV, back to RGB(A) order."""
    return bgr(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))


def summary(path):
    return json.loads(path.read_text(encoding="utf-8"))


def expected_recolored(image, labels, palette):
    """Each clustered pixel's colour channels replaced by its palette row; others unchanged."""
    expected = image.copy()
    colour = expected[..., :3] if image.ndim == 3 and image.shape[2] == 4 else expected
    if image.dtype.kind in "ui":
        palette = np.clip(np.rint(palette), 0, np.iinfo(image.dtype).max)
    palette = palette.astype(image.dtype)
    clustered = labels > 0
    colour[clustered] = palette[labels[clustered] - 1].reshape(colour[clustered].shape)
    return expected


def assert_palette_is_mean_per_label(image, labels, palette):
    colour = image[..., :3] if image.ndim == 3 and image.shape[2] == 4 else image
    values = colour.reshape(labels.size, -1).astype(np.float64)
    flat = labels.ravel()
    assert len(palette) == flat.max()
    for label in range(1, flat.max() + 1):
        np.testing.assert_allclose(
            palette[label - 1], values[flat == label].mean(axis=0), rtol=1e-9, atol=1e-9
        )


def run(capsys, *args):
    code = main(["segment", *map(str, args), "--no-progress"])
    return code, capsys.readouterr()


def test_outputs_match_api_and_palette(tmp_path, capsys):
    image = blobs()
    path = write(tmp_path / "photo.png", image)
    code, out = run(capsys, path, "-k", "3", "--color-space", "lab", "--seed", "7")
    assert code == 0, out.err

    labels = read(tmp_path / "photo_labels.png")
    api = nk.segment(image, 3, color_space="lab", seed=7)
    assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
    np.testing.assert_array_equal(labels, api.labels)

    record = summary(tmp_path / "photo_clusters.json")
    palette = np.array(record["palette"])
    assert_palette_is_mean_per_label(image, labels, palette)
    recolored = read(tmp_path / "photo_recolored.png")
    assert recolored.dtype == image.dtype and recolored.shape == image.shape
    np.testing.assert_array_equal(recolored, expected_recolored(image, labels, palette))

    assert record["params"]["n_clusters"] == 3 and record["params"]["color_space"] == "lab"
    assert record["params"]["seed"] == 7
    assert record["counts"] == np.bincount(labels.ravel())[1:].tolist()
    assert record["input"] == str(path.resolve())
    assert record["outputs"] == {
        "labels": str((tmp_path / "photo_labels.png").resolve()),
        "recolored": str((tmp_path / "photo_recolored.png").resolve()),
        "clusters": str((tmp_path / "photo_clusters.json").resolve()),
    }
    assert record["inertia"] > 0 and record["n_iter"] >= 1 and record["seconds"] >= 0
    assert "cross_check" not in record


def test_standardize_reaches_segment(tmp_path, capsys):
    # two channels of very different ranges: only standardised features see the second one
    rng = np.random.default_rng(3)
    image = np.zeros((12, 16, 3), np.uint16)
    levels = rng.choice([5000, 60000], size=(12, 16)) + rng.normal(0, 2000, (12, 16))
    image[..., 0] = np.clip(levels, 0, 65535)
    image[..., 1] = np.where(np.arange(16) < 8, 10, 40)[None, :] + rng.integers(0, 3, (12, 16))
    path = write(tmp_path / "two.png", image)
    code, out = run(capsys, path, "-k", "4", "--standardize", "--seed", "2")
    assert code == 0, out.err
    expected = nk.segment(image, 4, standardize=True, seed=2)
    plain = nk.segment(image, 4, seed=2)
    assert not np.array_equal(expected.labels, plain.labels)  # the option changes the result
    np.testing.assert_array_equal(read(tmp_path / "two_labels.png"), expected.labels)
    assert summary(tmp_path / "two_clusters.json")["params"]["standardize"] is True


@pytest.mark.parametrize(
    ("name", "encode_as", "dtype", "channels", "recolored_name"),
    [
        ("grey16.png", ".png", np.uint16, 1, "grey16_recolored.png"),
        ("rgba.png", ".png", np.uint8, 4, "rgba_recolored.png"),
        ("rgbf.tif", ".tif", np.float32, 3, "rgbf_recolored.tif"),
        ("rgb8.bmp", ".bmp", np.uint8, 3, "rgb8_recolored.bmp"),
        # the file's extension cannot hold the dtype it really contains: PNG, else TIFF
        ("deep.jpg", ".png", np.uint16, 3, "deep_recolored.png"),
        ("floaty.png", ".tif", np.float32, 1, "floaty_recolored.tif"),
    ],
)
def test_recolored_keeps_dtype_and_a_format_that_holds_it(
    tmp_path, capsys, name, encode_as, dtype, channels, recolored_name
):
    image = blobs(dtype=dtype, channels=channels)
    write(tmp_path / name, image, ext=encode_as)
    code, out = run(capsys, tmp_path / name, "-k", "3", "--out", tmp_path / "out")
    assert code == 0, out.err
    stem = name.rsplit(".", 1)[0]
    labels = read(tmp_path / "out" / f"{stem}_labels.png")
    recolored = read(tmp_path / "out" / recolored_name)
    assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
    assert recolored.dtype == image.dtype and recolored.shape == image.shape
    palette = np.array(summary(tmp_path / "out" / f"{stem}_clusters.json")["palette"])
    assert_palette_is_mean_per_label(image, labels, palette)
    np.testing.assert_array_equal(recolored, expected_recolored(image, labels, palette))
    np.testing.assert_array_equal(labels, nk.segment(image, 3, seed=0).labels)


def test_jpeg_input_keeps_jpeg(tmp_path, capsys):
    write(tmp_path / "shot.jpg", blobs())
    code, out = run(capsys, tmp_path / "shot.jpg", "-k", "2")
    assert code == 0, out.err
    recolored = read(tmp_path / "shot_recolored.jpg")
    assert recolored.dtype == np.uint8 and recolored.shape == (12, 16, 3)


def test_more_than_255_clusters_gives_16_bit_labels(tmp_path, capsys):
    image = (np.random.default_rng(1).permutation(400).reshape(20, 20) * 100).astype(np.uint16)
    write(tmp_path / "many.png", image)
    code, out = run(capsys, tmp_path / "many.png", "-k", "300", "--method", "optimal")
    assert code == 0, out.err
    labels = read(tmp_path / "many_labels.png")
    assert labels.dtype == np.uint16 and labels.max() == 300
    np.testing.assert_array_equal(labels, nk.segment(image, 300, method="optimal").labels)


def test_mask_excludes_pixels(tmp_path, capsys):
    image = blobs()
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[:, 5:] = 255
    write(tmp_path / "img.png", image)
    write(tmp_path / "roi.png", mask)
    code, out = run(capsys, tmp_path / "img.png", "-k", "3", "--mask", tmp_path / "roi.png")
    assert code == 0, out.err
    labels = read(tmp_path / "img_labels.png")
    recolored = read(tmp_path / "img_recolored.png")
    assert (labels[:, :5] == 0).all() and (labels[:, 5:] > 0).all()
    np.testing.assert_array_equal(recolored[:, :5], image[:, :5])
    record = summary(tmp_path / "img_clusters.json")
    assert record["params"]["masked"] is True
    palette = np.array(record["palette"])
    for label in range(1, 4):
        np.testing.assert_allclose(palette[label - 1], image[labels == label].mean(axis=0))
    np.testing.assert_array_equal(recolored, expected_recolored(image, labels, palette))
    np.testing.assert_array_equal(labels, nk.segment(image, 3, mask=mask, seed=0).labels)


def test_colour_mask_uses_any_colour_channel(tmp_path, capsys):
    image = blobs()
    mask = np.zeros((*image.shape[:2], 3), np.uint8)
    mask[3:, :, 2] = 1  # only blue non-zero: still included
    write(tmp_path / "img.png", image)
    write(tmp_path / "roi.png", mask)
    code, out = run(capsys, tmp_path / "img.png", "-k", "2", "--mask", tmp_path / "roi.png")
    assert code == 0, out.err
    labels = read(tmp_path / "img_labels.png")
    assert (labels[:3] == 0).all() and (labels[3:] > 0).all()


def test_mask_of_the_wrong_shape_is_an_error_for_that_image(tmp_path, capsys):
    write(tmp_path / "small.png", blobs((6, 8)))
    write(tmp_path / "big.png", blobs((12, 16)))
    write(tmp_path / "roi.png", np.full((12, 16), 255, np.uint8))
    code, out = run(
        capsys,
        tmp_path / "small.png",
        tmp_path / "big.png",
        "-k",
        "2",
        "--mask",
        tmp_path / "roi.png",
    )
    assert code == 1
    errors = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and str(tmp_path / "small.png") in errors[0]
    assert "mask" in errors[0] and "(12, 16)" in errors[0] and "(6, 8)" in errors[0]
    assert (tmp_path / "big_labels.png").exists()
    assert not (tmp_path / "small_labels.png").exists()


def test_unreadable_mask_is_a_usage_error(tmp_path, capsys):
    write(tmp_path / "img.png", blobs())
    code, out = run(capsys, tmp_path / "img.png", "--mask", tmp_path / "nothing.png")
    assert code == 2
    assert "--mask" in out.err and "nothing.png" in out.err
    assert not (tmp_path / "img_labels.png").exists()


def test_bad_files_are_reported_and_the_rest_written(tmp_path, capsys):
    good = [write(tmp_path / f"good{i}.png", blobs(seed=i)) for i in range(2)]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image at all")
    missing = tmp_path / "missing.png"
    code, out = run(capsys, good[0], corrupt, missing, good[1], "-k", "3")
    assert code == 1
    errors = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {corrupt}: ")
    assert errors[1].startswith(f"error: {missing}: ") and "no such file" in errors[1]
    for path in good:
        assert (tmp_path / f"{path.stem}_labels.png").exists()
        assert (tmp_path / f"{path.stem}_clusters.json").exists()
    assert not list(tmp_path.glob("corrupt_*")) and not list(tmp_path.glob("missing_*"))


def test_segment_errors_name_the_option(tmp_path, capsys):
    write(tmp_path / "img.png", blobs())
    code, out = run(capsys, tmp_path / "img.png", "-k", "3", "--method", "optimal")
    assert code == 1 and "method='optimal'" in out.err
    code, out = run(capsys, tmp_path / "img.png", "-k", "1000")
    assert code == 1 and "n_clusters=1000" in out.err
    assert not (tmp_path / "img_labels.png").exists()


def test_cross_check_goes_into_the_json(tmp_path, capsys):
    write(tmp_path / "img.png", blobs((20, 20)))
    code, out = run(capsys, tmp_path / "img.png", "-k", "3", "--cross-check")
    assert code == 0, out.err
    check = summary(tmp_path / "img_clusters.json")["cross_check"]
    # three well-separated levels: OpenCV must find the same partition
    assert check["adjusted_rand_index"] == pytest.approx(1.0)
    assert check["inertia_ratio"] == pytest.approx(1.0)
    assert check["opencv_seconds"] >= 0


def test_segment_help_lists_every_option_default_and_example(capsys):
    assert main(["segment", "--help"]) == 0
    text = capsys.readouterr().out
    for option in SEGMENT_OPTIONS:
        assert f" {option}" in text, option
    for value in ("kmeans++", "optimal", "rgb", "lab", "gray", "auto", "none"):
        assert value in text, value
    options_text = text.split("options:")[1].split("examples:")[0]
    n_options = len([o for o in SEGMENT_OPTIONS if o.startswith("--")]) - 1  # -k = --n-clusters
    assert options_text.count("(default:") >= n_options
    assert "examples:" in text and "napari-kmeans segment " in text.split("examples:")[1]


def test_top_level_help_and_version(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "segment" in text and "--version" in text
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"napari-kmeans {nk.__version__}"


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("-k", "0"),
        ("-k", "two"),
        ("--color-space", "foo"),
        ("--method", "kmeans"),
        ("--channel-axis", "x"),
        ("--n-init", "0"),
        ("--max-iter", "0"),
        ("--tol", "-1"),
        ("--spatial-weight", "-0.5"),
        ("--spacing", "1,0"),
        ("--seed", "-1"),
    ],
)
def test_bad_option_values_are_usage_errors(tmp_path, capsys, option, value):
    write(tmp_path / "img.png", blobs())
    code, out = run(capsys, tmp_path / "img.png", option, value)
    assert code == 2
    assert option in out.err and value in out.err
    assert not (tmp_path / "img_labels.png").exists()


def test_same_names_in_different_folders_do_not_overwrite(tmp_path, capsys):
    images = {}
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        images[folder] = blobs(seed=ord(folder))
        write(tmp_path / folder / "img.png", images[folder])
    write(tmp_path / "a" / "img.tif", blobs(seed=5))
    out_dir = tmp_path / "out"
    code, out = run(
        capsys,
        tmp_path / "a" / "img.png",
        tmp_path / "b" / "img.png",
        tmp_path / "a" / "img.tif",
        "-k",
        "3",
        "--out",
        out_dir,
    )
    assert code == 0, out.err
    assert len(list(out_dir.glob("*_clusters.json"))) == 3
    for folder, image in images.items():
        record = summary(out_dir / f"{folder}_img_png_clusters.json")
        assert record["input"] == str((tmp_path / folder / "img.png").resolve())
        labels = read(record["outputs"]["labels"])
        np.testing.assert_array_equal(labels, nk.segment(image, 3, seed=0).labels)
    assert "note:" in out.err


def test_two_folders_get_their_folder_names(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write(tmp_path / folder / "img.png", blobs())
    code, out = run(
        capsys,
        tmp_path / "a" / "img.png",
        tmp_path / "b" / "img.png",
        "-k",
        "2",
        "--out",
        tmp_path / "out",
    )
    assert code == 0, out.err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(
        f"{f}_img_{kind}" for f in "ab" for kind in ("labels.png", "recolored.png", "clusters.json")
    )


def test_an_output_never_overwrites_an_input(tmp_path, capsys):
    write(tmp_path / "x.png", blobs())
    victim = write(tmp_path / "x_labels.png", blobs(seed=3))
    before = victim.read_bytes()
    code, out = run(capsys, tmp_path / "x.png", victim, "-k", "2")
    # refused before any work (it used to be an error for x.png alone, after x_labels.png's
    # own outputs were written): nothing is written at all
    assert code == 2
    assert f"{victim} (an output of {tmp_path / 'x.png'}) would replace the IMAGE" in out.err
    assert victim.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png", "x_labels.png"]


def test_tiff_outputs_open_without_imagecodecs(tmp_path, capsys):
    """napari's own reader decodes TIFFs with tifffile, which reads LZW (OpenCV's default)
    only with the optional imagecodecs package: our outputs must not need it."""
    tifffile = pytest.importorskip("tifffile")
    pages = np.stack([blobs(channels=1, seed=s) for s in range(2)])
    ok, encoded = cv2.imencodemulti(".tif", list(pages))
    (tmp_path / "stack.tif").write_bytes(encoded.tobytes())
    write(tmp_path / "photo.tif", blobs(seed=3))
    code, out = run(capsys, tmp_path / "stack.tif", tmp_path / "photo.tif", "-k", "3")
    assert code == 0, out.err
    # a single image's labels are PNG; stacks and the recoloured TIFFs are TIFF
    for name in ("stack_labels", "stack_recolored", "photo_recolored"):
        with tifffile.TiffFile(tmp_path / f"{name}.tif") as tif:
            assert all(page.compression == 8 for page in tif.pages), name  # Adobe Deflate
            decoded = tif.asarray()
        ok, pages_read = cv2.imreadmulti(str(tmp_path / f"{name}.tif"), flags=cv2.IMREAD_UNCHANGED)
        expected = np.stack(pages_read) if len(pages_read) > 1 else pages_read[0]
        if expected.ndim == decoded.ndim and expected.shape[-1:] == (3,):
            expected = expected[..., ::-1]  # OpenCV gives BGR
        np.testing.assert_array_equal(decoded, expected)


def test_multi_page_tiff_is_one_stack(tmp_path, capsys):
    pages = [blobs(channels=1, seed=s) for s in range(3)]
    ok, encoded = cv2.imencodemulti(".tif", pages)
    assert ok
    (tmp_path / "stack.tif").write_bytes(encoded.tobytes())
    mask = np.full(pages[0].shape, 255, np.uint8)
    mask[:2] = 0
    write(tmp_path / "roi.png", mask)
    code, out = run(capsys, tmp_path / "stack.tif", "-k", "3", "--mask", tmp_path / "roi.png")
    assert code == 0, out.err
    stack = np.stack(pages)
    expected = nk.segment(stack, 3, mask=np.broadcast_to(mask, stack.shape), seed=0)
    ok, labels = cv2.imreadmulti(str(tmp_path / "stack_labels.tif"), flags=cv2.IMREAD_UNCHANGED)
    assert ok and len(labels) == 3
    np.testing.assert_array_equal(np.stack(labels), expected.labels)
    assert (np.stack(labels)[:, :2] == 0).all()
    ok, recolored = cv2.imreadmulti(
        str(tmp_path / "stack_recolored.tif"), flags=cv2.IMREAD_UNCHANGED
    )
    assert ok
    palette = np.array(summary(tmp_path / "stack_clusters.json")["palette"])
    np.testing.assert_array_equal(
        np.stack(recolored), expected_recolored(stack, np.stack(labels), palette)
    )


def test_colour_stack_keeps_rgb_pages(tmp_path, capsys):
    stack = np.stack([blobs(seed=s) for s in range(2)])
    ok, encoded = cv2.imencodemulti(".tif", [bgr(page) for page in stack])
    assert ok
    (tmp_path / "rgb.tif").write_bytes(encoded.tobytes())
    code, out = run(capsys, tmp_path / "rgb.tif", "-k", "3")
    assert code == 0, out.err
    ok, labels = cv2.imreadmulti(str(tmp_path / "rgb_labels.tif"), flags=cv2.IMREAD_UNCHANGED)
    assert ok and np.stack(labels).shape == stack.shape[:3]
    np.testing.assert_array_equal(np.stack(labels), nk.segment(stack, 3, seed=0).labels)
    ok, pages = cv2.imreadmulti(str(tmp_path / "rgb_recolored.tif"), flags=cv2.IMREAD_UNCHANGED)
    palette = np.array(summary(tmp_path / "rgb_clusters.json")["palette"])
    assert_palette_is_mean_per_label(stack, np.stack(labels), palette)
    np.testing.assert_array_equal(
        np.stack([bgr(page) for page in pages]),
        expected_recolored(stack, np.stack(labels), palette),
    )


def test_non_ascii_path(tmp_path, capsys):
    path = write(tmp_path / "röd bild.png", blobs())
    code, out = run(capsys, path, "-k", "2")
    assert code == 0, out.err
    assert (tmp_path / "röd bild_labels.png").exists()


def test_seed_none_is_recorded_and_reproduces(tmp_path, capsys):
    image = blobs((16, 16), seed=4)
    write(tmp_path / "img.png", image)
    code, out = run(capsys, tmp_path / "img.png", "-k", "4", "--seed", "none")
    assert code == 0, out.err
    seed = summary(tmp_path / "img_clusters.json")["params"]["seed"]
    assert isinstance(seed, int)
    np.testing.assert_array_equal(
        read(tmp_path / "img_labels.png"), nk.segment(image, 4, seed=seed).labels
    )


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("extra", [[], ["--no-progress"]])
def test_progress_bar_on_a_terminal_unless_disabled(tmp_path, monkeypatch, extra):
    write(tmp_path / "img.png", blobs())
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["segment", str(tmp_path / "img.png"), "-k", "2", *extra]) == 0
    assert ("1/1" in terminal.getvalue()) == (not extra)


# the script installed beside this interpreter, not whichever one PATH finds first
CONSOLE_SCRIPT = shutil.which("napari-kmeans", path=sysconfig.get_path("scripts"))


@pytest.mark.slow
@pytest.mark.skipif(CONSOLE_SCRIPT is None, reason="napari-kmeans console script not installed")
def test_console_script(tmp_path):
    image = blobs()
    write(tmp_path / "img.png", image)
    (tmp_path / "bad.png").write_bytes(b"")
    result = subprocess.run(
        [CONSOLE_SCRIPT, "segment", "img.png", "bad.png", "-k", "3", "--out", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "error: bad.png: the file is empty" in result.stderr.splitlines()
    np.testing.assert_array_equal(
        read(tmp_path / "out" / "img_labels.png"), nk.segment(image, 3, seed=0).labels
    )
    version = subprocess.run(
        [CONSOLE_SCRIPT, "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.strip().endswith(nk.__version__)


def test_zarr_stack_is_segmented_chunk_by_chunk_into_zarr(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    stack = np.stack([blobs(dtype=np.uint16, channels=1, seed=s) for s in range(4)])
    zarr.create_array(tmp_path / "stack.zarr", data=stack, chunks=(1, 6, 16))
    mask = np.ones(stack.shape[1:], np.uint8) * 255
    mask[:, :3] = 0
    code, out = run(
        capsys,
        tmp_path / "stack.zarr",
        "-k",
        "3",
        "--seed",
        "4",
        "--mask",
        write(tmp_path / "roi.png", mask),
    )
    assert code == 0, out.err
    labels = zarr.open_group(tmp_path / "stack_labels.zarr")["0"]
    expected = nk.segment(stack, 3, seed=4, mask=np.broadcast_to(mask != 0, stack.shape))
    np.testing.assert_array_equal(labels[:], expected.labels)
    record = summary(tmp_path / "stack_clusters.json")
    assert record["counts"] == expected.counts.tolist()
    assert set(record["outputs"]) == {"labels", "clusters"}
    assert not list(tmp_path.glob("stack_recolored*"))


def test_tiff_with_zarr_out_is_read_lazily(tmp_path, capsys):
    tifffile = pytest.importorskip("tifffile")
    zarr = pytest.importorskip("zarr")
    stack = np.stack([blobs(seed=s) for s in range(3)])
    tifffile.imwrite(tmp_path / "cells.tif", stack, photometric="rgb")
    out = tmp_path / "results" / "cells_labels.zarr"
    code, output = run(capsys, tmp_path / "cells.tif", "-k", "3", "--seed", "0", "--out", out)
    assert code == 0, output.err
    np.testing.assert_array_equal(zarr.open_group(out)["0"][:], nk.segment(stack, 3, seed=0).labels)
    assert summary(tmp_path / "results" / "cells_labels_clusters.json")["outputs"]["labels"] == (
        str(out.resolve())
    )


def test_zarr_out_takes_one_image_and_unreadable_zarr_is_reported(tmp_path, capsys):
    first, second = write(tmp_path / "a.png", blobs()), write(tmp_path / "b.png", blobs())
    code, out = run(capsys, first, second, "--out", tmp_path / "x.zarr")
    assert code == 2 and "--out" in out.err and "one IMAGE" in out.err
    code, out = run(capsys, tmp_path / "missing.zarr", "-k", "2")
    assert code == 1 and f"error: {tmp_path / 'missing.zarr'}: " in out.err


def test_gui_opens_the_given_images_through_the_launcher(monkeypatch, tmp_path):
    import napari_kmeans._napari.launch as launch_module

    opened = []
    monkeypatch.setattr(launch_module, "launch", lambda paths: opened.append(list(paths)))
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((4, 4), np.uint8))
    assert main(["gui", str(image)]) == 0
    assert opened == [[image]]


def test_gui_with_an_unreadable_image_fails_naming_it(tmp_path, capsys):
    missing = tmp_path / "missing.png"
    assert main(["gui", str(missing)]) == 1
    assert "missing.png" in capsys.readouterr().err


# --- models: segment --save-model and apply ----------------------------------------------------


def apply(capsys, model, *args):
    code = main(["apply", "--model", str(model), *map(str, args), "--no-progress"])
    return code, capsys.readouterr()


def colour_of_each_pixel(image):
    return [tuple(pixel) for pixel in image.reshape(-1, image.shape[-1])]


def test_save_model_reproduces_the_labels_written(tmp_path, capsys):
    image = blobs((20, 24))
    path = write(tmp_path / "ref.png", image)
    model_path = tmp_path / "models" / "ref model.json"
    model_path.parent.mkdir()
    code, out = run(capsys, path, "-k", "3", "--save-model", model_path)
    assert code == 0, out.err
    model = nk.load_model(model_path)
    assert model.n_clusters == 3
    labels = read(tmp_path / "ref_labels.png")
    np.testing.assert_array_equal(model.predict(image).labels, labels)
    # palette: the mean colour of each written label, computed here
    assert_palette_is_mean_per_label(image, labels, np.asarray(model.palette))


def test_save_model_of_a_chunked_run(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    tifffile = pytest.importorskip("tifffile")
    stack = np.stack([blobs(seed=s) for s in range(2)])
    tifffile.imwrite(tmp_path / "cells.tif", stack, photometric="rgb")
    out = tmp_path / "cells_labels.zarr"
    code, output = run(
        capsys, tmp_path / "cells.tif", "-k", "3", "--out", out, "--save-model", tmp_path / "m.json"
    )
    assert code == 0, output.err
    model = nk.load_model(tmp_path / "m.json")
    np.testing.assert_array_equal(model.predict(stack).labels, zarr.open_group(out)["0"][:])


def test_save_model_takes_exactly_one_image(tmp_path, capsys):
    first, second = write(tmp_path / "a.png", blobs()), write(tmp_path / "b.png", blobs(seed=1))
    code, out = run(capsys, first, second, "--save-model", tmp_path / "m.json")
    assert code == 2 and "--save-model" in out.err and "one IMAGE" in out.err
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "a_labels.png").exists()
    code, out = run(capsys, first, first, "-k", "3", "--save-model", tmp_path / "m.json")
    assert code == 0, out.err  # the same file twice is one image
    assert (tmp_path / "m.json").exists()


def test_apply_gives_the_same_label_to_the_same_colour_in_every_file(tmp_path, capsys):
    palette = np.array([[20, 30, 40], [200, 40, 60], [90, 180, 120]], np.uint8)
    rng = np.random.default_rng(0)
    reference = palette[rng.integers(0, 3, (16, 16))]
    # the others share the colours in other proportions, one lacks the middle colour
    others = [
        palette[rng.choice([0, 2], (10, 12), p=[0.8, 0.2])],
        palette[rng.choice(3, (14, 9), p=[0.1, 0.1, 0.8])],
    ]
    model_path = tmp_path / "m.json"
    code, out = run(
        capsys, write(tmp_path / "ref.png", reference), "-k", "3", "--save-model", model_path
    )
    assert code == 0, out.err
    paths = [write(tmp_path / f"other{i}.png", image) for i, image in enumerate(others)]
    code, out = apply(capsys, model_path, *paths, "--out", tmp_path / "out")
    assert code == 0, out.err

    label_of_colour = {}
    for name, image in [("ref", reference), ("other0", others[0]), ("other1", others[1])]:
        folder = tmp_path if name == "ref" else tmp_path / "out"
        labels = read(folder / f"{name}_labels.png")
        assert labels.shape == image.shape[:2]
        for colour, label in zip(colour_of_each_pixel(image), labels.ravel(), strict=True):
            assert label_of_colour.setdefault(colour, label) == label, (name, colour)
    assert sorted(label_of_colour.values()) == [1, 2, 3]
    record = summary(tmp_path / "out" / "other1_clusters.json")
    assert record["model"] == str(model_path.resolve())
    labels = read(tmp_path / "out" / "other1_labels.png")
    recolored = read(tmp_path / "out" / "other1_recolored.png")
    np.testing.assert_array_equal(
        recolored, expected_recolored(others[1], labels, np.array(record["palette"]))
    )


def test_apply_with_a_mask(tmp_path, capsys):
    image = blobs((12, 16))
    model_path = tmp_path / "m.json"
    code, out = run(
        capsys, write(tmp_path / "ref.png", image), "-k", "3", "--save-model", model_path
    )
    assert code == 0, out.err
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[2:8, 3:12] = 255
    other = write(tmp_path / "other.png", blobs((12, 16), seed=3))
    code, out = apply(capsys, model_path, other, "--mask", write(tmp_path / "roi.png", mask))
    assert code == 0, out.err
    labels = read(tmp_path / "other_labels.png")
    np.testing.assert_array_equal(labels != 0, mask != 0)


@pytest.mark.parametrize("problem", ["missing", "corrupt", "newer"])
def test_bad_model_file_is_a_usage_error_naming_it(tmp_path, capsys, problem):
    image = write(tmp_path / "img.png", blobs())
    model_path = tmp_path / f"{problem} model.json"
    if problem == "corrupt":
        model_path.write_text('{"format": "napari-kmeans-model", "vers', encoding="utf-8")
    if problem == "newer":
        assert run(capsys, image, "-k", "3", "--save-model", model_path)[0] == 0
        saved = json.loads(model_path.read_text(encoding="utf-8"))
        saved["version"] = MODEL_VERSION + 1
        model_path.write_text(json.dumps(saved), encoding="utf-8")
        (tmp_path / "img_labels.png").unlink()
    code, out = apply(capsys, model_path, image)
    assert code == 2
    assert str(model_path) in out.err and "Traceback" not in out.err
    assert not (tmp_path / "img_labels.png").exists()


def test_an_image_that_does_not_fit_the_model_fails_and_the_others_are_written(tmp_path, capsys):
    model_path = tmp_path / "m.json"
    code, out = run(
        capsys, write(tmp_path / "ref.png", blobs()), "-k", "3", "--save-model", model_path
    )
    assert code == 0, out.err
    grey = write(tmp_path / "grey.png", blobs(channels=1))
    good = write(tmp_path / "good.png", blobs(seed=2))
    code, out = apply(capsys, model_path, grey, good)
    assert code == 1
    errors = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {grey}: ")
    assert str(model_path) in errors[0] and "3 channel(s), this image has 1" in errors[0]
    assert not (tmp_path / "grey_labels.png").exists()
    assert (tmp_path / "good_labels.png").exists()


def test_apply_help_and_registration(capsys):
    assert main(["--help"]) == 0
    assert "apply" in capsys.readouterr().out
    assert main(["apply", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--model", "--mask", "--out", "--no-progress"):
        assert f" {option}" in text, option
    assert main(["apply", "img.png"]) == 2
    assert "--model" in capsys.readouterr().err


# ---------------------------------------------------------------- nothing lost


def listing(folder):
    """Every path under ``folder`` (hidden temporary files included), relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_zarr_out_that_holds_the_input_is_refused_before_any_work(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    project = tmp_path / "project.zarr"
    stack = np.stack([blobs(dtype=np.uint16, channels=1, seed=s) for s in range(2)])
    zarr.create_array(project / "raw.zarr", data=stack, chunks=(1, 6, 16))
    (project / "notes.txt").write_text("keep me")
    before = listing(tmp_path)
    for extra in ((), ("--overwrite",)):
        code, out = run(capsys, project / "raw.zarr", "-k", "3", "--out", project, *extra)
        assert code == 2
        output = f"{project} (an output of {project / 'raw.zarr'})"
        assert f"{output} would replace a folder holding the IMAGE" in out.err
        assert listing(tmp_path) == before
        np.testing.assert_array_equal(zarr.open_array(project / "raw.zarr")[:], stack)
    # nor may the labels go inside the input store
    code, out = run(
        capsys, project / "raw.zarr", "-k", "3", "--out", project / "raw.zarr" / "l.zarr"
    )
    assert code == 2 and "would be written inside the IMAGE" in out.err
    assert listing(tmp_path) == before


def test_existing_zarr_out_is_replaced_only_with_overwrite(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    stack = np.stack([blobs(dtype=np.uint16, channels=1, seed=s) for s in range(2)])
    zarr.create_array(tmp_path / "in.zarr", data=stack, chunks=(1, 6, 16))
    old = tmp_path / "old.zarr"  # labels of an earlier run
    assert run(capsys, tmp_path / "in.zarr", "-k", "2", "--out", old)[0] == 0
    earlier = zarr.open_group(old)["0"][:]
    code, out = run(capsys, tmp_path / "in.zarr", "-k", "3", "--out", old)
    assert code == 2 and f"{old}, " in out.err and "already exist" in out.err
    assert "--overwrite" in out.err
    np.testing.assert_array_equal(zarr.open_group(old)["0"][:], earlier)
    code, out = run(
        capsys, tmp_path / "in.zarr", "-k", "3", "--seed", "1", "--out", old, "--overwrite"
    )
    assert code == 0, out.err
    labels = zarr.open_group(old)["0"][:]
    np.testing.assert_array_equal(labels, nk.segment(stack, 3, seed=1).labels)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_mask_model_and_own_summary_are_never_outputs(tmp_path, capsys):
    image = write(tmp_path / "x.png", blobs())
    mask = write(tmp_path / "x_labels.png", np.full((12, 16), 255, np.uint8))
    before = mask.read_bytes()
    code, out = run(capsys, image, "-k", "2", "--mask", mask)
    assert code == 2 and f"would replace the --mask {mask}" in out.err
    assert mask.read_bytes() == before and listing(tmp_path) == ["x.png", "x_labels.png"]

    mask.unlink()
    model = tmp_path / "m_clusters.json"
    code, out = run(capsys, image, "-k", "2", "--save-model", model)
    assert code == 0, out.err
    saved = model.read_bytes()
    code, out = apply(capsys, model, write(tmp_path / "m.png", blobs(seed=1)))
    assert code == 2 and f"would replace the --model {model}" in out.err
    assert model.read_bytes() == saved and not (tmp_path / "m_labels.png").exists()

    code, out = run(
        capsys, image, "-k", "2", "--save-model", tmp_path / "x_clusters.json", "--overwrite"
    )
    assert code == 2 and "are the same path" in out.err and "--save-model" in out.err


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, capsys):
    image = write(tmp_path / "x.png", blobs())
    assert run(capsys, image, "-k", "2")[0] == 0
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, out = run(capsys, image, "-k", "3")
    assert code == 2 and "x_clusters.json" in out.err and "--overwrite" in out.err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first
    code, out = run(capsys, image, "-k", "3", "--overwrite")
    assert code == 0, out.err
    assert read(tmp_path / "x_labels.png").max() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(first)


def test_one_existing_output_fails_that_image_and_writes_none_of_its_files(tmp_path, capsys):
    # a 16-bit TIFF's recolored image goes to <name>_recolored.tif: not known before loading
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "t.tif", blobs(dtype=np.uint16), photometric="rgb")
    (tmp_path / "t_recolored.tif").write_bytes(b"mine")
    good = write(tmp_path / "g.png", blobs())
    code, out = run(capsys, tmp_path / "t.tif", good, "-k", "2")
    assert code == 1
    assert f"error: {tmp_path / 't.tif'}: {tmp_path / 't_recolored.tif'} exists" in out.err
    assert (tmp_path / "t_recolored.tif").read_bytes() == b"mine"
    assert not (tmp_path / "t_labels.png").exists() and not (tmp_path / "t_clusters.json").exists()
    assert (tmp_path / "g_clusters.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_any_error_of_one_input_is_reported_and_the_batch_goes_on(tmp_path, capsys):
    loop = tmp_path / "loop.png"
    loop.symlink_to(tmp_path / "loop2.png")
    (tmp_path / "loop2.png").symlink_to(loop)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    good = write(tmp_path / "good.png", blobs())
    code, out = run(capsys, loop, fifo, "/dev/zero", tmp_path, good, "-k", "2")
    assert code == 1, out.err
    errors = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and "Traceback" not in out.err
    assert f"error: {fifo}: a FIFO" in out.err
    assert "error: /dev/zero: a character device" in out.err
    assert f"error: {tmp_path}: it is a directory" in out.err
    assert (tmp_path / "good_labels.png").exists()


@pytest.mark.parametrize("kind", [KeyError, IndexError, MemoryError, RecursionError, RuntimeError])
def test_run_jobs_survives_any_exception_of_one_job(tmp_path, capsys, kind):
    from napari_kmeans.cli.batch import Job, run_jobs

    jobs = [Job(tmp_path / name, tmp_path / name) for name in ("a", "b", "c")]
    done = []

    def process(job):
        if job.image.name == "b":
            raise kind("boom")
        done.append(job.image.name)

    assert run_jobs("test", jobs, process, no_progress=True) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'b'}: " in err and "boom" in err and "1 of 3 images failed" in err
    assert done == ["a", "c"]

    def interrupted(job):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_jobs("test", jobs, interrupted, no_progress=True)


def test_max_pixels_option(tmp_path, capsys):
    image = write(tmp_path / "x.png", blobs())
    code, out = run(capsys, image, "-k", "2", "--max-pixels", "100")
    assert code == 1 and "192 pixels, more than the budget of 100" in out.err
    assert run(capsys, image, "-k", "2", "--max-pixels", "192")[0] == 0


def _child(script: str, *args: str) -> subprocess.Popen:
    """The command in a child process, after ``script`` (which may patch the package).

    The child sets Python's Ctrl-C handler itself: a shell starts background jobs (``&``,
    ``nohup``) with SIGINT ignored, and Python then installs none.
    """
    code = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
    code += textwrap.dedent(script) + "\nimport sys\nfrom napari_kmeans.cli.command import main\n"
    code += f"sys.exit(main({list(args)!r}))\n"
    src = str(Path(nk.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(process: subprocess.Popen, marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if marker in line:
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"the child never printed {marker!r}: {process.stderr.read()}")


# The child writes one output file, says so, then waits to be interrupted.
_PAUSE_AFTER_FIRST_FILE = """
import time
import napari_kmeans.cli.batch as batch
original = batch.save_image
def save_then_wait(*args, **kwargs):
    original(*args, **kwargs)
    print("WROTE", flush=True)
    time.sleep(60)
batch.save_image = save_then_wait
"""


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_output_and_exits_130(tmp_path):
    write(tmp_path / "x.png", blobs())
    child = _child(_PAUSE_AFTER_FIRST_FILE, "segment", str(tmp_path / "x.png"), "-k", "2")
    _wait_for(child, "WROTE")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert listing(tmp_path) == ["x.png"]  # not even a temporary file


@pytest.mark.slow
def test_ctrl_c_during_apply_leaves_earlier_images_whole_and_exits_130(tmp_path):
    model = tmp_path / "model.json"
    assert main(["segment", str(write(tmp_path / "ref.png", blobs())), "-k", "3",
                 "--save-model", str(model), "--out", str(tmp_path / "ref"),
                 "--no-progress"]) == 0  # fmt: skip
    images = [write(tmp_path / f"{name}.png", blobs(seed=seed)) for seed, name in enumerate("ab")]
    script = _PAUSE_AFTER_FIRST_FILE.replace(  # pause at b's first file, not a's
        "original(*args, **kwargs)\n",
        "original(*args, **kwargs)\n    if not Path(args[0]).name.startswith('.b_'):\n"
        "        return\n",
    ).replace("import time\n", "import time\nfrom pathlib import Path\n")
    args = ("apply", "--model", str(model), *map(str, images), "--out", str(tmp_path / "out"))
    child = _child(script, *args, "--no-progress")
    _wait_for(child, "WROTE")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "1 of 2 images were done before it" in err
    assert listing(tmp_path / "out") == ["a_clusters.json", "a_labels.png", "a_recolored.png"]


# The child writes chunks of a Zarr store, says so after the first, then waits.
_PAUSE_AFTER_FIRST_CHUNK = """
import time
import napari_kmeans.lazy.store as lazy_io
original = lazy_io._write_block
def write_then_wait(block, *, target, block_info=None):
    result = original(block, target=target, block_info=block_info)
    print("CHUNK", flush=True)
    time.sleep(60)
    return result
lazy_io._write_block = write_then_wait
import dask
dask.config.set(scheduler="synchronous")
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT", "SIGTERM"])
def test_an_interrupted_zarr_store_never_looks_complete(tmp_path, how):
    zarr = pytest.importorskip("zarr")
    stack = np.stack([blobs(dtype=np.uint16, channels=1, seed=s) for s in range(4)])
    zarr.create_array(tmp_path / "in.zarr", data=stack, chunks=(1, 12, 16))
    out = tmp_path / "labels.zarr"
    args = ("segment", str(tmp_path / "in.zarr"), "-k", "3", "--out", str(out), "--no-progress")
    child = _child(_PAUSE_AFTER_FIRST_CHUNK, *args)
    _wait_for(child, "CHUNK")
    child.send_signal(getattr(signal, how))
    child.communicate(timeout=60)
    expected = {"SIGKILL": -signal.SIGKILL, "SIGINT": 130, "SIGTERM": 143}[how]
    assert child.returncode == expected
    assert not out.exists() and not (tmp_path / "labels_clusters.json").exists()
    with pytest.raises(Exception):  # noqa: B017 - zarr raises its own kinds for a missing store
        zarr.open_array(out, mode="r")
    if how != "SIGKILL":  # the temporary store and the lock file are removed too
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr"]


@pytest.mark.slow
def test_writing_on_a_full_disk_leaves_old_files_whole_and_no_partial_ones(tmp_path):
    # file-size limit in the child (writes past 500 bytes fail with EFBIG), as a full disk
    image = write(tmp_path / "x.png", blobs(shape=(64, 64)))
    model = tmp_path / "model.json"
    assert (
        main(
            [
                "segment",
                str(image),
                "-k",
                "3",
                "--save-model",
                str(model),
                "--no-progress",
                "--out",
                str(tmp_path / "first"),
            ]
        )
        == 0
    )
    old_model = model.read_bytes()
    assert len(old_model) > 500
    child = _child(
        """
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))
        """,
        "segment",
        str(image),
        "-k",
        "3",
        "--save-model",
        str(model),
        "--overwrite",
        "--no-progress",
    )
    _, err = child.communicate(timeout=120)
    assert child.returncode == 1, err
    assert model.read_bytes() == old_model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "model.json", "x.png"]


def test_save_model_into_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    image = write(tmp_path / "x.png", blobs())
    code, out = run(capsys, image, "-k", "2", "--save-model", tmp_path / "no" / "m.json")
    assert code == 2 and "its folder does not exist" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_channel_axis_rgb_keeps_alpha_out_of_the_clusters(tmp_path, capsys):
    rgba = blobs(channels=4)
    image = write(tmp_path / "x.png", rgba)
    code, out = run(capsys, image, "-k", "3", "--channel-axis", "rgb", "--seed", "2")
    assert code == 0, out.err
    expected = nk.segment(rgba, 3, seed=2, channel_axis="rgb")
    np.testing.assert_array_equal(read(tmp_path / "x_labels.png"), expected.labels)
    assert summary(tmp_path / "x_clusters.json")["params"]["channel_axis"] == "rgb"
    assert np.array(summary(tmp_path / "x_clusters.json")["palette"]).shape == (3, 3)
