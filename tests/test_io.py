"""Tests for napari_kmeans.io: files are made with cv2.imencode / tifffile / hand-written bytes,
and every expectation is an array built here or decoded by OpenCV directly."""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from napari_kmeans.io.images import SUPPORTED_EXTENSIONS, ImageLoadError, load_image, save_image

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
SRC = Path(__file__).resolve().parents[1] / "src"
RNG = np.random.default_rng(12345)


def _random_image(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.random(shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def _to_bgr(rgb: np.ndarray) -> np.ndarray:
    """Channel order OpenCV expects, written out by hand (not via the module under test)."""
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        return np.ascontiguousarray(rgb[..., ::-1])
    if rgb.ndim == 3 and rgb.shape[2] == 4:
        return np.ascontiguousarray(rgb[..., [2, 1, 0, 3]])
    return rgb


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _encode(extension: str, rgb: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, encoded = cv2.imencode(extension, _to_bgr(rgb), list(params))
    assert ok
    return encoded.tobytes()


def _tiff(array: np.ndarray, **kwargs) -> bytes:
    tifffile = pytest.importorskip("tifffile")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def _png_grey_alpha(grey_alpha: np.ndarray) -> bytes:
    """A PNG of colour type 4 (grey + alpha), written by hand: OpenCV cannot encode one."""
    height, width, _ = grey_alpha.shape
    bit_depth = grey_alpha.dtype.itemsize * 8
    big_endian = grey_alpha.astype(grey_alpha.dtype.newbyteorder(">"))
    rows = b"".join(b"\x00" + big_endian[row].tobytes() for row in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, 4, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _with_exif_orientation(jpeg: bytes, orientation: int, byte_order: str = "<") -> bytes:
    """Insert an EXIF APP1 segment holding only the Orientation tag (0x0112) after SOI."""
    tiff_header = (b"II" if byte_order == "<" else b"MM") + struct.pack(byte_order + "HI", 42, 8)
    ifd = (
        struct.pack(byte_order + "H", 1)
        + struct.pack(byte_order + "HHIHH", 0x0112, 3, 1, orientation, 0)
        + struct.pack(byte_order + "I", 0)
    )
    payload = b"Exif\x00\x00" + tiff_header + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + app1 + jpeg[2:]


# Every EXIF orientation (EXIF 2.32, tag 0x0112); pixels are read as stored for each.
EXIF_ORIENTATIONS = range(1, 9)


# ---------------------------------------------------------------- load_image: content


def test_pure_red_pixel_is_rgb_not_bgr(tmp_path):
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[0, 0] = (0, 0, 255)  # red in OpenCV's BGR order
    ok, encoded = cv2.imencode(".png", bgr)
    assert ok
    image = load_image(_write(tmp_path / "red.png", encoded.tobytes()))
    assert image[0, 0].tolist() == [255, 0, 0]
    assert image[1, 2].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("extension", "dtype", "shape"),
    [
        (".png", np.uint8, (5, 7)),
        (".png", np.uint8, (5, 7, 3)),
        (".png", np.uint8, (5, 7, 4)),
        (".png", np.uint16, (5, 7)),
        (".png", np.uint16, (5, 7, 3)),
        (".png", np.uint16, (5, 7, 4)),
        (".tif", np.uint8, (5, 7, 3)),
        (".tif", np.uint16, (5, 7, 4)),
        (".tif", np.float32, (5, 7)),
        (".tif", np.float32, (5, 7, 3)),
        (".bmp", np.uint8, (5, 7, 3)),
        (".pgm", np.uint16, (5, 7)),
        (".ppm", np.uint16, (5, 7, 3)),
    ],
)
def test_lossless_round_trip_keeps_values_dtype_and_alpha(tmp_path, extension, dtype, shape):
    rgb = _random_image(shape, dtype)
    image = load_image(_write(tmp_path / f"image{extension}", _encode(extension, rgb)))
    assert image.dtype == np.dtype(dtype)
    assert image.shape == shape
    np.testing.assert_array_equal(image, rgb)


def test_lossy_formats_decode_like_opencv_in_rgb_order(tmp_path):
    rgb = _random_image((64, 64, 3), np.uint8)
    for extension in (".jpg", ".webp", ".jp2"):
        data = _encode(extension, rgb)
        expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
        image = load_image(_write(tmp_path / f"x{extension}", data))
        np.testing.assert_array_equal(image, expected)


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "données ñandú"
    folder.mkdir()
    rgb = _random_image((4, 6, 3), np.uint8)
    path = _write(folder / "画像 çà.png", _encode(".png", rgb))
    np.testing.assert_array_equal(load_image(path), rgb)
    np.testing.assert_array_equal(load_image(str(path)), rgb)


def test_grey_alpha_png_becomes_rgba_with_grey_in_every_colour_channel(tmp_path):
    for dtype in (np.uint8, np.uint16):
        grey_alpha = _random_image((3, 5, 2), dtype)
        image = load_image(_write(tmp_path / "ga.png", _png_grey_alpha(grey_alpha)))
        assert image.shape == (3, 5, 4) and image.dtype == np.dtype(dtype)
        for channel in range(3):
            np.testing.assert_array_equal(image[..., channel], grey_alpha[..., 0])
        np.testing.assert_array_equal(image[..., 3], grey_alpha[..., 1])


def test_multipage_tiff_is_a_stack_of_every_page(tmp_path):
    stack = _random_image((3, 4, 5, 3), np.uint16)
    path = _write(tmp_path / "stack.tif", _tiff(stack, photometric="rgb"))
    image = load_image(path)
    assert image.shape == (3, 4, 5, 3) and image.dtype == np.uint16
    np.testing.assert_array_equal(image, stack)

    grey_stack = _random_image((2, 4, 5), np.float32)
    path = _write(tmp_path / "grey_stack.tif", _tiff(grey_stack, photometric="minisblack"))
    np.testing.assert_array_equal(load_image(path), grey_stack)


def test_single_page_tiff_is_not_stacked(tmp_path):
    page = _random_image((4, 5), np.uint16)
    image = load_image(_write(tmp_path / "page.tif", _tiff(page, photometric="minisblack")))
    assert image.shape == (4, 5)
    np.testing.assert_array_equal(image, page)


@pytest.mark.parametrize("orientation", EXIF_ORIENTATIONS)
def test_jpeg_exif_orientation_is_not_applied_as_napari_does_not(tmp_path, orientation):
    rgb = np.zeros((16, 24, 3), np.uint8)  # asymmetric so every orientation differs
    rgb[:8, :12] = (255, 0, 0)
    rgb[:8, 12:] = (0, 255, 0)
    rgb[8:, :6] = (0, 0, 255)
    rgb[8:, 6:] = (255, 255, 0)
    plain = _encode(".jpg", rgb, (cv2.IMWRITE_JPEG_QUALITY, 95))
    stored = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]

    tagged = _with_exif_orientation(plain, orientation)
    image = load_image(_write(tmp_path / "photo.jpg", tagged))
    np.testing.assert_array_equal(image, stored)


def test_exif_orientation_big_endian_and_grey_jpeg_read_as_stored(tmp_path):
    grey = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (16, 1))
    grey[:4] = 255
    plain = _encode(".jpg", grey)
    stored = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_UNCHANGED)
    assert stored.ndim == 2
    image = load_image(_write(tmp_path / "grey.jpg", _with_exif_orientation(plain, 6, ">")))
    assert image.ndim == 2
    np.testing.assert_array_equal(image, stored)


# ---------------------------------------------------------------- load_image: errors


def _error_cases(tmp_path: Path) -> dict[str, Path]:
    png = _encode(".png", _random_image((32, 32, 3), np.uint8))
    jpeg = _encode(".jpg", _random_image((32, 32, 3), np.uint8))
    tiff = _tiff(_random_image((32, 32), np.uint16), photometric="minisblack")
    (tmp_path / "a folder.png").mkdir()
    uneven = io.BytesIO()
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffWriter(uneven) as writer:
        writer.write(_random_image((4, 5), np.uint8))
        writer.write(_random_image((6, 5), np.uint8))
    return {
        "missing": tmp_path / "missing.png",
        "directory": tmp_path / "a folder.png",
        "empty": _write(tmp_path / "empty.png", b""),
        "truncated png": _write(tmp_path / "cut.png", png[: len(png) // 2]),
        "truncated jpeg": _write(tmp_path / "cut.jpg", jpeg[: len(jpeg) * 3 // 4]),
        "truncated tiff": _write(tmp_path / "cut.tif", tiff[: len(tiff) // 2]),
        "not an image": _write(tmp_path / "notes.png", b"just some text, not pixels\n"),
        "int32 tiff": _write(
            tmp_path / "int32.tif", _tiff(np.ones((4, 5), np.int32), photometric="minisblack")
        ),
        "float64 tiff": _write(
            tmp_path / "float64.tif", _tiff(np.ones((4, 5), np.float64), photometric="minisblack")
        ),
        "float16 tiff": _write(
            tmp_path / "float16.tif", _tiff(np.ones((4, 5), np.float16), photometric="minisblack")
        ),
        "grey+alpha tiff": _write(
            tmp_path / "ga.tif",
            _tiff(
                _random_image((4, 5, 2), np.uint16),
                photometric="minisblack",
                planarconfig="contig",
                extrasamples=["unassalpha"],
            ),
        ),
        "pages of different shapes": _write(tmp_path / "uneven.tif", uneven.getvalue()),
    }


ERROR_CASES = [
    ("missing", "no such file"),
    ("directory", "directory"),
    ("empty", "empty"),
    ("truncated png", "cannot decode"),
    ("truncated jpeg", "cannot decode"),
    ("truncated tiff", "cannot decode"),
    ("not an image", "cannot decode"),
    ("int32 tiff", "int32"),
    ("float64 tiff", "float64"),
    ("float16 tiff", "cannot decode"),
    ("grey+alpha tiff", "2 samples per pixel"),
    ("pages of different shapes", "differ"),
]


@pytest.mark.parametrize(("case", "reason"), ERROR_CASES)
def test_errors_raise_image_load_error_naming_path_and_reason(tmp_path, case, reason):
    path = _error_cases(tmp_path)[case]
    with pytest.raises(ImageLoadError) as raised:
        load_image(path)
    assert isinstance(raised.value, ValueError)
    assert str(path) in str(raised.value)
    assert reason in str(raised.value)


# ---------------------------------------------------------------- save_image


def _decode_file(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize(
    ("extension", "dtype", "shape"),
    [
        (".png", np.uint8, (5, 7)),
        (".png", np.uint8, (5, 7, 3)),
        (".png", np.uint8, (5, 7, 4)),
        (".png", np.uint16, (5, 7, 3)),
        (".png", np.uint16, (5, 7, 4)),
        (".tiff", np.uint16, (5, 7)),
        (".tif", np.float32, (5, 7, 3)),
        (".bmp", np.uint8, (5, 7, 3)),
        (".pgm", np.uint16, (5, 7)),
    ],
)
def test_save_image_writes_what_opencv_reads_back_in_bgr(tmp_path, extension, dtype, shape):
    rgb = _random_image(shape, dtype)
    original = rgb.copy()
    path = tmp_path / f"out{extension}"
    assert save_image(path, rgb) is None
    np.testing.assert_array_equal(_decode_file(path), _to_bgr(rgb))
    np.testing.assert_array_equal(rgb, original)  # input untouched


def test_save_image_non_ascii_path_and_round_trip_with_load(tmp_path):
    rgba = _random_image((6, 4, 4), np.uint16)
    path = tmp_path / "résultat 結果.png"
    save_image(str(path), rgba)
    np.testing.assert_array_equal(load_image(path), rgba)


def test_save_image_jpeg_is_8_bit_only_and_says_where_16_bit_fits(tmp_path):
    path = tmp_path / "deep.jpg"
    with pytest.raises(ValueError, match="uint16") as raised:
        save_image(path, _random_image((4, 4, 3), np.uint16))
    message = str(raised.value)
    assert str(path) in message and ".png" in message and ".tif" in message
    assert not path.exists()


@pytest.mark.parametrize(
    ("name", "array", "fragment"),
    [
        ("float.png", np.zeros((4, 4), np.float32), ".tif"),
        ("alpha.jpg", np.zeros((4, 4, 4), np.uint8), "4-channel"),
        ("wide.png", np.zeros((4, 4, 2), np.uint8), "shape"),
        ("volume.png", np.zeros((2, 4, 4, 3), np.uint8), "shape"),
        ("double.tif", np.zeros((4, 4), np.float64), "float64"),
        ("image.gif", np.zeros((4, 4), np.uint8), ".gif"),
        ("no_extension", np.zeros((4, 4), np.uint8), "(none)"),
    ],
)
def test_save_image_rejects_what_the_format_cannot_hold(tmp_path, name, array, fragment):
    path = tmp_path / name
    with pytest.raises(ValueError) as raised:
        save_image(path, array)
    assert str(path) in str(raised.value) and fragment in str(raised.value)
    assert not path.exists()


def test_save_image_does_not_create_folders(tmp_path):
    path = tmp_path / "not there" / "out.png"
    with pytest.raises(FileNotFoundError):
        save_image(path, np.zeros((2, 2), np.uint8))
    assert not path.parent.exists()


# ---------------------------------------------------------------- SUPPORTED_EXTENSIONS


def test_every_supported_extension_decodes(tmp_path):
    assert all(ext.startswith(".") and ext == ext.lower() for ext in SUPPORTED_EXTENSIONS)
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2"} <= set(
        SUPPORTED_EXTENSIONS
    )
    grey = np.zeros((64, 64), np.uint8)
    grey[16:48, 16:48] = 255  # survives the 1-bit PBM and lossy codecs unchanged in shape
    for extension in SUPPORTED_EXTENSIONS:
        source = grey.astype(np.float32) / 255 if extension == ".exr" else grey
        if extension == ".ppm":
            source = np.dstack([grey] * 3)
        path = _write(tmp_path / f"probe{extension}", _encode(extension, source))
        assert load_image(path).shape[:2] == (64, 64), extension


def test_exr_listed_only_if_this_opencv_build_has_openexr():
    build_has_exr = any(
        line.split(":")[0].strip() == "OpenEXR" and "NO" not in line.split(":", 1)[1]
        for line in cv2.getBuildInformation().splitlines()
        if ":" in line
    )
    if not build_has_exr:
        assert ".exr" not in SUPPORTED_EXTENSIONS


# ---------------------------------------------------------------- sample_data


@pytest.mark.parametrize(
    ("name", "shape", "dtype"),
    [
        ("astronaut.png", (512, 512, 3), np.uint8),
        ("chelsea.png", (300, 451, 3), np.uint8),
        ("ihc_slide.png", (512, 512, 3), np.uint8),
        ("synthetic_cells_16bit.png", (384, 512), np.uint16),
    ],
)
def test_sample_images_load_as_the_readme_states(name, shape, dtype):
    image = load_image(SAMPLE_DATA / name)
    assert image.shape == shape and image.dtype == np.dtype(dtype)
    assert "| `" + name + "` |" in (SAMPLE_DATA / "README.md").read_text(encoding="utf-8")


def test_synthetic_cells_script_reproduces_the_committed_image():
    spec = importlib.util.spec_from_file_location(
        "make_synthetic_cells", SAMPLE_DATA / "make_synthetic_cells.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    image, truth = module.make_synthetic_cells()
    np.testing.assert_array_equal(load_image(SAMPLE_DATA / "synthetic_cells_16bit.png"), image)
    class_means = [image[truth == label].mean() for label in range(4)]
    assert class_means == sorted(class_means)  # background < dim < medium < bright
    assert image.max() > 0.75 * np.iinfo(np.uint16).max  # uses most of the 16-bit range


# ---------------------------------------------------------------- hostile inputs


def _in_subprocess(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with this tree's package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def attempt():
        try:
            load_image(fifo)
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(error)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # the old code blocks in open(): give it a writer, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
        pytest.fail("load_image blocked on a FIFO")
    assert isinstance(outcome[0], ImageLoadError)
    assert str(fifo) in str(outcome[0]) and "FIFO" in str(outcome[0])


def test_dev_zero_is_refused_before_reading():
    # memory capped at 1 GiB in the child: reading /dev/zero would die of MemoryError there
    result = _in_subprocess(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        from napari_kmeans.io import ImageLoadError, load_image
        try:
            load_image("/dev/zero")
        except ImageLoadError as error:
            print("refused:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "refused: cannot load image '/dev/zero': a character device" in result.stdout


def test_symlink_loop_is_an_image_load_error(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(ImageLoadError, match="a.png"):
        load_image(tmp_path / "a.png")


def _png_header_only(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", crc)


def _jpeg_header_only(width: int, height: int) -> bytes:
    sof = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"\x00\x00" + b"\xff\xc0" + sof


def _tiff_header_only(width: int, height: int, big_endian: bool = False) -> bytes:
    order = ">" if big_endian else "<"
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (277, 3, 1, 1)]
    ifd = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        field = struct.pack(order + ("I" if kind == 4 else "H2x"), value)
        ifd += struct.pack(order + "HHI", tag, kind, count) + field
    magic = b"MM\x00*" if big_endian else b"II*\x00"
    return magic + struct.pack(order + "I", 8) + ifd + struct.pack(order + "I", 0)


@pytest.mark.parametrize(
    "make", [_png_header_only, _jpeg_header_only, _tiff_header_only], ids=["png", "jpeg", "tiff"]
)
def test_header_claiming_a_huge_image_is_refused_before_decoding(tmp_path, make):
    path = _write(tmp_path / "bomb.img", make(20000, 20000))
    with pytest.raises(ImageLoadError) as raised:
        load_image(path)
    message = str(raised.value)
    assert str(path) in message and "400,000,000 pixels" in message
    assert "max_pixels=" in message and "--max-pixels" in message
    assert "NAPARI_KMEANS_MAX_PIXELS" in message


def test_pixel_budget_argument_and_environment(tmp_path, monkeypatch):
    rgb = _random_image((30, 50, 3), np.uint8)
    for extension, params in [
        *((e, ()) for e in (".png", ".jpg", ".tif", ".bmp", ".ppm", ".webp")),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),  # lossy WebP: a VP8 chunk, not VP8L
    ]:
        path = _write(tmp_path / f"small{extension}", _encode(extension, rgb, params))
        with pytest.raises(ImageLoadError, match="1,500 pixels, more than the budget of 1,499"):
            load_image(path, max_pixels=1499)
        assert load_image(path, max_pixels=1500).shape == (30, 50, 3)
        monkeypatch.setenv("NAPARI_KMEANS_MAX_PIXELS", "1000")
        with pytest.raises(ImageLoadError, match="budget of 1,000"):
            load_image(path)
        monkeypatch.delenv("NAPARI_KMEANS_MAX_PIXELS")
    monkeypatch.setenv("NAPARI_KMEANS_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="NAPARI_KMEANS_MAX_PIXELS='lots' is not allowed"):
        load_image(path)
    with pytest.raises(ValueError, match="max_pixels=0 is not allowed"):
        load_image(path, max_pixels=0)


def test_budget_counts_every_page_of_a_tiff(tmp_path):
    stack = _random_image((3, 30, 50), np.uint16)
    path = _write(tmp_path / "stack.tif", _tiff(stack, photometric="minisblack"))
    with pytest.raises(ImageLoadError, match="4,500 pixels"):
        load_image(path, max_pixels=4499)
    np.testing.assert_array_equal(load_image(path, max_pixels=4500), stack)


def _rgba_128() -> np.ndarray:
    image = np.empty((4, 5, 4), np.uint8)
    image[...] = (200, 100, 50, 128)
    image[0, 0] = (10, 20, 30, 0)
    return image


def test_unassociated_alpha_tiff_keeps_its_colours(tmp_path):
    rgba = _rgba_128()
    written = {
        "tifffile": _tiff(rgba, photometric="rgb", extrasamples=["unassalpha"]),
        "tifffile zlib": _tiff(
            rgba, photometric="rgb", extrasamples=["unassalpha"], compression="zlib"
        ),
        "tifffile stack": _tiff(
            np.stack([rgba, rgba[::-1]]), photometric="rgb", extrasamples=["unassalpha"]
        ),
    }
    pil = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    pil.fromarray(rgba).save(buffer, format="TIFF")  # PIL writes ExtraSamples = 2 too
    written["PIL"] = buffer.getvalue()
    for name, data in written.items():
        loaded = load_image(_write(tmp_path / f"{name}.tif", data))
        expected = np.stack([rgba, rgba[::-1]]) if "stack" in name else rgba
        np.testing.assert_array_equal(loaded, expected, err_msg=name)
    # associated (premultiplied) alpha is stored as is, and read as stored
    associated = _tiff(rgba, photometric="rgb", extrasamples=["assocalpha"])
    np.testing.assert_array_equal(load_image(_write(tmp_path / "a.tif", associated)), rgba)


def test_separate_colour_planes_are_read_in_rgb_order(tmp_path):
    for dtype in (np.uint8, np.uint16):
        rgb = _random_image((6, 7, 3), dtype)
        planar = _tiff(np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
        np.testing.assert_array_equal(load_image(_write(tmp_path / "p.tif", planar)), rgb)


def test_without_tifffile_unassociated_alpha_is_refused_not_misread(tmp_path, monkeypatch):
    path = _write(
        tmp_path / "ua.tif", _tiff(_rgba_128(), photometric="rgb", extrasamples=["unassalpha"])
    )
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import tifffile -> ImportError
    with pytest.raises(ImageLoadError, match="pip install tifffile"):
        load_image(path)


@pytest.mark.parametrize(
    ("dtype", "extension"), [(">u2", ".png"), (">u2", ".tif"), (">f4", ".tif"), ("<u2", ".png")]
)
def test_save_image_writes_big_endian_arrays_by_value(tmp_path, dtype, extension):
    grey = np.array([[1, 2, 256, 1000]], dtype)
    save_image(tmp_path / f"grey{extension}", grey)
    np.testing.assert_array_equal(_decode_file(tmp_path / f"grey{extension}"), grey)
    rgb = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 300).astype(dtype)
    before = rgb.copy()
    save_image(tmp_path / f"rgb{extension}", rgb)
    np.testing.assert_array_equal(load_image(tmp_path / f"rgb{extension}"), rgb)
    assert rgb.dtype == np.dtype(dtype) and rgb.tobytes() == before.tobytes()  # left alone


def test_save_image_is_atomic_and_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    import napari_kmeans.io.safe_files as safe_files

    old = _random_image((4, 5, 3), np.uint8)
    save_image(tmp_path / "x.png", old)

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safe_files.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_image(tmp_path / "x.png", _random_image((4, 5, 3), np.uint8))
    np.testing.assert_array_equal(load_image(tmp_path / "x.png"), old)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    monkeypatch.undo()
    with pytest.raises(FileExistsError):
        save_image(tmp_path / "x.png", old, overwrite=False)


def test_save_image_on_a_full_disk_leaves_no_partial_file(tmp_path):
    # a file-size limit in the child: writes beyond 1000 bytes fail (EFBIG), like a full disk
    result = _in_subprocess(
        f"""
        import resource, signal
        import numpy as np
        from napari_kmeans.io import save_image
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        rng = np.random.default_rng(0)
        save_image({str(tmp_path / "old.png")!r}, np.zeros((4, 4), np.uint8))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        for name in ("old.png", "new.png"):
            try:
                noise = rng.integers(0, 255, (64, 64, 3), np.uint8)
                save_image({str(tmp_path)!r} + "/" + name, noise)
            except OSError as error:
                print("failed:", error.errno)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("failed:") == 2
    assert [p.name for p in tmp_path.iterdir()] == ["old.png"]
    np.testing.assert_array_equal(load_image(tmp_path / "old.png"), np.zeros((4, 4), np.uint8))


def _peak_growth(path: Path, load: str) -> tuple[int, int]:
    """(bytes of the array, growth of a fresh child's peak RSS while ``load`` runs)."""
    result = _in_subprocess(
        f"""
        import re
        import cv2
        import numpy as np
        import napari_kmeans.io.decode as decode_module
        from napari_kmeans.io import load_image

        def status(field):
            text = open("/proc/self/status").read()
            return int(re.search(field + r":\\s+(\\d+) kB", text).group(1)) * 1024

        data = np.fromfile({str(path)!r}, np.uint8)
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # the peak (VmHWM) starts again from the current RSS
        before = status("VmRSS")
        image = {load}
        print(image.nbytes, status("VmHWM") - before)
        """
    )
    assert result.returncode == 0, result.stderr
    nbytes, growth = map(int, result.stdout.split())
    return nbytes, growth


def test_loading_adds_no_copy_to_what_opencv_needs_to_decode(tmp_path):
    # OpenCV's own decoder peaks at about twice the image here (its internal buffers): the
    # red/blue swap must add nothing to that (it works in place, a block at a time)
    ramp = np.add.outer(np.arange(1500), np.arange(2000))
    colour = np.stack([ramp % 256, ramp // 3 % 256, ramp // 7 % 256], axis=-1).astype(np.uint8)
    for name, rgb in (("c8.png", colour), ("c16.png", colour.astype(np.uint16) * 257)):
        path = _write(tmp_path / name, _encode(".png", rgb))
        nbytes, ours = _peak_growth(path, f"load_image({str(path)!r})")
        _, opencv = _peak_growth(path, "cv2.imdecode(data, cv2.IMREAD_UNCHANGED)")
        assert nbytes == rgb.nbytes and ours < 1.1 * opencv + 2**20, (name, ours, opencv)


def test_a_tiff_stack_is_not_held_twice(tmp_path):
    # pages are decoded a group at a time (here 4 MiB, 2 pages, or an eighth of the stack)
    # straight into the stack: OpenCV decoding all 16 at once would need twice the stack
    pages = np.add.outer(np.arange(16), np.add.outer(np.arange(1000), np.arange(1000)))
    path = _write(
        tmp_path / "stack.tif",
        _tiff(pages.astype(np.uint16), photometric="minisblack", compression="zlib"),
    )
    load = f"(setattr(decode_module, '_PAGE_GROUP_BYTES', 4 * 2**20), load_image({str(path)!r}))[1]"
    nbytes, growth = _peak_growth(path, load)
    assert nbytes == 16 * 2 * 10**6 and growth < 1.5 * nbytes, growth
    np.testing.assert_array_equal(load_image(path), pages)


def test_many_small_pages_load_in_linear_time(tmp_path):
    pages = RNG.integers(0, 65536, (1000, 8, 8), dtype=np.uint16)
    path = _write(tmp_path / "many.tif", _tiff(pages, photometric="minisblack"))
    started = time.perf_counter()
    np.testing.assert_array_equal(load_image(path), pages)
    assert time.perf_counter() - started < 5  # one decode call per page took 25 s here


# ---------------------------------------------------------------- lazy_io: same refusals


def test_lazy_tiff_with_pages_of_different_shapes_is_refused_like_load_image(tmp_path):
    from napari_kmeans.lazy.store import open_lazy

    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "uneven.tif"
    with tifffile.TiffWriter(path) as writer:
        writer.write(_random_image((4, 5), np.uint8))
        writer.write(_random_image((6, 5), np.uint8))
    for load in (load_image, open_lazy):
        with pytest.raises(ImageLoadError, match="differ in shape") as raised:
            load(path)
        assert str(path) in str(raised.value)


def test_lazy_tiff_must_be_a_regular_file(tmp_path):
    from napari_kmeans.lazy.store import open_lazy

    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    with pytest.raises(ImageLoadError, match="FIFO"):
        open_lazy(fifo)


def test_write_labels_zarr_never_replaces_a_store_unless_told(tmp_path):
    da = pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    from napari_kmeans.lazy.store import write_labels_zarr

    store = tmp_path / "labels.zarr"
    zarr.create_array(store, data=np.full((2, 3), 7, np.uint8))
    (store / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        write_labels_zarr(da.ones((4, 6), np.uint8, chunks=3), store, progress=False)
    assert (store / "mine.txt").read_text() == "keep"
    assert zarr.open_array(store)[:].tolist() == [[7] * 3] * 2
    write_labels_zarr(da.ones((4, 6), np.uint8, chunks=3), store, progress=False, overwrite=True)
    assert int(zarr.open_array(store)[:].sum()) == 24 and not (store / "mine.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.zarr"]


@pytest.mark.parametrize("make", [_png_header_only, _tiff_header_only], ids=["png", "tiff"])
def test_budget_is_checked_before_the_file_is_read(tmp_path, make):
    # an 8 GiB sparse file behind a bomb header, loaded in a child limited to 1 GiB of memory
    path = _write(tmp_path / "huge.img", make(20000, 20000))
    with open(path, "r+b") as file:
        file.truncate(8 * 2**30)
    result = _in_subprocess(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        from napari_kmeans.io import ImageLoadError, load_image
        try:
            load_image({str(path)!r})
        except ImageLoadError as error:
            print("refused:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "400,000,000 pixels" in result.stdout


def test_opencv_own_pixel_limit_is_explained(tmp_path):
    # a BMP header of 40000 x 40000 (1.6e9 pixels): past our budget when raised, OpenCV refuses
    info = struct.pack("<IiiHHIIiiII", 40, 40000, 40000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    path = _write(tmp_path / "big.bmp", b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info)
    with pytest.raises(ImageLoadError, match="OPENCV_IO_MAX_IMAGE_PIXELS"):
        load_image(path, max_pixels=2 * 10**9)


# ---------------------------------------------------------------- TIFFs of many pages


def _grey_tiff_of_pages(n_pages: int, height: int, width: int) -> bytes:
    """An uncompressed 8-bit TIFF whose page ``i`` is filled with ``i % 256``, written here."""
    entries = 9
    ifd_size = 2 + 12 * entries + 4
    page_size = ifd_size + height * width
    parts = [struct.pack("<2sHI", b"II", 42, 8)]
    for index in range(n_pages):
        ifd = 8 + index * page_size
        following = ifd + page_size if index + 1 < n_pages else 0
        tags = [
            (256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, ifd + ifd_size), (277, 3, 1), (278, 4, height), (279, 4, height * width),
        ]  # fmt: skip
        parts.append(struct.pack("<H", entries))
        parts += [struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags]
        parts.append(struct.pack("<I", following))
        parts.append(bytes([index % 256]) * (height * width))
    return b"".join(parts)


@pytest.mark.slow
def test_every_page_of_a_tiff_of_more_than_100000_pages_is_read(tmp_path):
    from napari_kmeans.io.headers import header_pixels

    n_pages = 100_001
    data = _grey_tiff_of_pages(n_pages, 1, 2)
    assert header_pixels(data) == 2 * n_pages
    stack = load_image(_write(tmp_path / "pages.tif", data))
    expected = (np.arange(n_pages) % 256).astype(np.uint8)
    np.testing.assert_array_equal(stack, np.broadcast_to(expected[:, None, None], (n_pages, 1, 2)))
    with pytest.raises(ImageLoadError, match="200,002 pixels, more than the budget of 200,001"):
        load_image(tmp_path / "pages.tif", max_pixels=2 * n_pages - 1)


@pytest.mark.slow
def test_decoding_time_grows_linearly_with_the_pages(tmp_path):
    # 60,000 pages: libtiff's walk of the page chain from its start made this ~90 s here
    n_pages = 60_000
    path = _write(tmp_path / "pages.tif", _grey_tiff_of_pages(n_pages, 4, 4))
    started = time.perf_counter()
    stack = load_image(path)
    assert time.perf_counter() - started < 30
    assert stack.shape == (n_pages, 4, 4)
    np.testing.assert_array_equal(stack[:, 0, 0], np.arange(n_pages) % 256)
