"""Tests for napari_kmeans.io: files are made with cv2.imencode / tifffile / hand-written bytes,
and every expectation is an array built here or decoded by OpenCV directly."""

from __future__ import annotations

import importlib.util
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from napari_kmeans.io import SUPPORTED_EXTENSIONS, ImageLoadError, load_image, save_image

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
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


# How a viewer displays stored pixels for each EXIF orientation (EXIF 2.32, tag 0x0112).
VIEWER_ORIENTATION = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),  # rotate 90° clockwise
    7: lambda a: np.swapaxes(np.rot90(a, 2), 0, 1),
    8: lambda a: np.rot90(a, 1),  # rotate 90° counter-clockwise
}


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


@pytest.mark.parametrize("orientation", sorted(VIEWER_ORIENTATION))
def test_jpeg_exif_orientation_is_applied_as_a_viewer_would(tmp_path, orientation):
    rgb = np.zeros((16, 24, 3), np.uint8)  # asymmetric so every orientation differs
    rgb[:8, :12] = (255, 0, 0)
    rgb[:8, 12:] = (0, 255, 0)
    rgb[8:, :6] = (0, 0, 255)
    rgb[8:, 6:] = (255, 255, 0)
    plain = _encode(".jpg", rgb, (cv2.IMWRITE_JPEG_QUALITY, 95))
    stored = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]

    tagged = _with_exif_orientation(plain, orientation)
    image = load_image(_write(tmp_path / "photo.jpg", tagged))
    np.testing.assert_array_equal(image, VIEWER_ORIENTATION[orientation](stored))


def test_exif_orientation_big_endian_and_grey_jpeg(tmp_path):
    grey = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (16, 1))
    grey[:4] = 255
    plain = _encode(".jpg", grey)
    stored = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_UNCHANGED)
    assert stored.ndim == 2
    image = load_image(_write(tmp_path / "grey.jpg", _with_exif_orientation(plain, 6, ">")))
    assert image.ndim == 2
    np.testing.assert_array_equal(image, np.rot90(stored, -1))


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
