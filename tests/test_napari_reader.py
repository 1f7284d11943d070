"""The reader claims only formats napari's built-in reader leaves out or reads worse.

Every file here is written byte by byte from its format's specification (an oracle that shares
nothing with OpenCV), so a channel-order or byte-order slip in the reader shows.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from napari.components import ViewerModel
from napari.plugins._npe2 import get_readers
from npe2 import PluginManifest
from npe2 import read as npe2_read

from napari_kmeans import ImageLoadError
from napari_kmeans._napari.reader import SIGNATURES, get_reader, read_images

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
SAMPLE_IMAGES = sorted(SAMPLE_DIR.glob("*.png"))
RNG = np.random.default_rng(0)
RGB16 = RNG.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
GREY16 = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
BITS = RNG.integers(0, 2, (5, 11), dtype=np.uint8)  # PBM: 1 is black
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
RGB_FLOAT = (RNG.random((5, 7, 3)) * 1000).astype(np.float32)
RGBE_MANTISSA = RNG.integers(128, 256, (5, 3, 3), dtype=np.uint8)
RGBE_EXPONENT = 140  # Radiance: value = mantissa * 2 ** (exponent - 136) = 16 * mantissa


def netpbm(magic: bytes, image: np.ndarray, data: bytes, maxval: int | None) -> bytes:
    height, width = image.shape[:2]
    header = magic + b"\n%d %d\n" % (width, height) + (b"%d\n" % maxval if maxval else b"")
    return header + data


def pfm(rgb: np.ndarray) -> bytes:  # rows bottom to top; a negative scale means little-endian
    height, width = rgb.shape[:2]
    return b"PF\n%d %d\n-1.0\n" % (width, height) + np.flipud(rgb).astype("<f4").tobytes()


def radiance_hdr(mantissa: np.ndarray, exponent: int) -> bytes:  # flat (uncompressed) RGBE
    height, width = mantissa.shape[:2]
    rgbe = np.concatenate([mantissa, np.full((height, width, 1), exponent, np.uint8)], axis=2)
    header = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (height, width)
    return header + rgbe.tobytes()


def sun_raster(rgb: np.ndarray) -> bytes:  # RT_STANDARD 24-bit: BGR, rows padded to 16 bits
    height, width = rgb.shape[:2]
    row = width * 3 + (width * 3) % 2
    data = np.zeros((height, row), np.uint8)
    data[:, : width * 3] = rgb[..., ::-1].reshape(height, -1)
    return struct.pack(">8I", 0x59A66A95, width, height, 24, data.size, 1, 0, 0) + data.tobytes()


def windows_dib(rgb: np.ndarray) -> bytes:  # BMP 24-bit: BGR, bottom-up, rows padded to 4
    height, width = rgb.shape[:2]
    row = (width * 3 + 3) // 4 * 4
    data = np.zeros((height, row), np.uint8)
    data[:, : width * 3] = np.flipud(rgb[..., ::-1]).reshape(height, -1)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, data.size, 2835, 2835, 0, 0)
    return struct.pack("<2sIHHI", b"BM", 54 + data.size, 0, 0, 54) + info + data.tobytes()


# name -> (file bytes, the array a faithful reader returns)
CLAIMED = {
    "rgb16.ppm": (netpbm(b"P6", RGB16, RGB16.astype(">u2").tobytes(), 65535), RGB16),
    "rgb16.pnm": (netpbm(b"P6", RGB16, RGB16.astype(">u2").tobytes(), 65535), RGB16),
    "grey16.pgm": (netpbm(b"P5", GREY16, GREY16.astype(">u2").tobytes(), 65535), GREY16),
    "bitmap.pbm": (
        netpbm(b"P4", BITS, np.packbits(BITS, axis=1).tobytes(), None),
        (1 - BITS) * np.uint8(255),
    ),
    "float.pfm": (pfm(RGB_FLOAT), RGB_FLOAT),
    "radiance.hdr": (
        radiance_hdr(RGBE_MANTISSA, RGBE_EXPONENT),
        RGBE_MANTISSA.astype(np.float32) * 2.0 ** (RGBE_EXPONENT - 136),
    ),
    "sun.sr": (sun_raster(RGB8), RGB8),
    "windows.dib": (windows_dib(RGB8), RGB8),
}


@pytest.fixture(autouse=True)
def plugins(npe2pm):
    """napari's built-in plugin and this one, in npe2's test plugin manager (no discovery)."""
    for distribution in ("napari", "napari-kmeans"):
        npe2pm.register(PluginManifest.from_distribution(distribution))
    return npe2pm


@pytest.fixture
def claimed_files(tmp_path) -> dict[str, tuple[Path, np.ndarray]]:
    files = {}
    for name, (content, expected) in CLAIMED.items():
        (tmp_path / name).write_bytes(content)
        files[name] = (tmp_path / name, expected)
    return files


@pytest.fixture
def ordinary_files(tmp_path) -> dict[str, Path]:
    """Files napari's built-in reader opens: they must not offer this plugin."""
    import cv2

    image = np.zeros((64, 64, 3), np.uint8)
    paths = {}
    for ext in (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".jp2", ".ras"):
        paths[ext] = tmp_path / f"photo{ext}"
        ok, encoded = cv2.imencode(ext, image)
        assert ok, ext
        paths[ext].write_bytes(encoded.tobytes())
    for ext in (".tif", ".tiff"):  # uncompressed: napari reads LZW only with imagecodecs
        paths[ext] = tmp_path / f"photo{ext}"
        tifffile.imwrite(paths[ext], image)
    return paths


def test_manifest_claims_exactly_the_signature_checked_extensions():
    manifest = PluginManifest.from_distribution("napari-kmeans")
    (reader,) = manifest.contributions.readers
    assert sorted(reader.filename_patterns) == sorted(f"*{ext}" for ext in SIGNATURES)
    assert not reader.accepts_directories


def test_ordinary_images_are_left_to_napari_without_asking(ordinary_files):
    for path in ordinary_files.values():
        assert "napari-kmeans" not in get_readers(str(path)), path.name
        assert get_reader(str(path)) is None
    viewer = ViewerModel()
    for ext in (".png", ".jpg", ".tif"):
        # plugin=None is File > Open: several compatible readers raise MultipleReaderError,
        # which the GUI turns into the "Choose reader" dialog.
        (layer,) = viewer.open(ordinary_files[ext], plugin=None)
        assert layer.data.shape == (64, 64, 3)


def test_imagej_stack_is_left_to_napari_with_its_axes(tmp_path):
    """The reported case: a ZCYX stack opened here as (z * c, y, x). This plugin reads no TIFF;
    napari's reader opens it with z and c as separate axes (its scale is napari's business)."""
    stack = RNG.integers(0, 4096, (6, 2, 16, 16), dtype=np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(2, 2), metadata={"axes": "ZCYX"})
    assert "napari-kmeans" not in get_readers(str(path))
    assert get_reader(str(path)) is None
    (layer,) = ViewerModel().open(path, plugin=None)
    np.testing.assert_array_equal(layer.data, stack)


def test_claimed_formats_open_in_rgb_order_with_their_pixel_type(claimed_files):
    for name, (path, expected) in claimed_files.items():
        ((data, settings, kind),) = npe2_read([path], stack=False, plugin_name="napari-kmeans")
        assert kind == "image" and settings["name"] == path.stem, name
        assert data.dtype == expected.dtype and settings["rgb"] == (expected.ndim == 3), name
        np.testing.assert_array_equal(data, expected, err_msg=name)


def test_claimed_formats_are_ones_napari_cannot_read_as_well(claimed_files):
    """Why each format is claimed: napari's reader skips the extension or loses information.

    If napari learns to read one faithfully, this fails: stop claiming that extension.
    """
    for name, (path, expected) in claimed_files.items():
        readers = get_readers(str(path))
        assert "napari-kmeans" in readers, name
        if "napari" not in readers:
            continue
        with warnings.catch_warnings():  # imageio warns about the formats it half-reads
            warnings.simplefilter("ignore")
            ((data, *_),) = npe2_read([path], stack=False, plugin_name="napari")
        faithful = data.dtype == expected.dtype and np.array_equal(data, expected)
        assert not faithful, f"napari reads {name} as well: no need to claim it"


def test_unclaimed_extensions_open_without_a_dialog(claimed_files):
    viewer = ViewerModel()
    for name in ("rgb16.pnm", "sun.sr", "windows.dib"):
        path, expected = claimed_files[name]
        assert list(get_readers(str(path))) == ["napari-kmeans"], name
        (layer,) = viewer.open(path, plugin=None)
        np.testing.assert_array_equal(layer.data, expected)


def test_reader_declines_what_it_does_not_claim(tmp_path):
    tiff = tmp_path / "renamed_tiff.pgm"
    tifffile.imwrite(tiff, GREY16)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.ppm").write_bytes(b"")
    (tmp_path / "ok.ppm").write_bytes(CLAIMED["rgb16.ppm"][0])
    assert get_reader(str(tiff)) is None  # never decodes a TIFF, whatever its name
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "empty.ppm")) is None
    assert get_reader(str(tmp_path / "missing.ppm")) is None
    assert get_reader(str(tmp_path)) is None
    assert get_reader([str(tmp_path / "ok.ppm"), str(tiff)]) is None
    assert get_reader([str(tmp_path / "ok.ppm")]) is read_images


def test_corrupt_file_raises_a_message_naming_it(tmp_path):
    path = tmp_path / "truncated.ppm"
    path.write_bytes(CLAIMED["rgb16.ppm"][0][:20])
    reader = get_reader(str(path))
    assert reader is read_images
    with pytest.raises(ImageLoadError, match="truncated.ppm"):
        reader(str(path))


def test_every_sample_image_is_offered_with_a_name():
    manifest = PluginManifest.from_distribution("napari-kmeans")
    commands = {c.id for c in manifest.contributions.commands}
    samples = manifest.contributions.sample_data
    assert {s.key for s in samples} == {p.stem for p in SAMPLE_IMAGES}
    for sample in samples:
        assert sample.command in commands and len(sample.display_name) > len(sample.key) // 2


@pytest.mark.parametrize("path", SAMPLE_IMAGES, ids=lambda p: p.stem)
def test_open_sample_gives_the_image_in_rgb_order(path):
    import cv2

    (layer,) = ViewerModel().open_sample("napari-kmeans", path.stem)
    expected = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if expected.ndim == 3:
        expected = expected[..., ::-1]
    np.testing.assert_array_equal(layer.data, expected)
    assert layer.rgb == (expected.ndim == 3)
