"""The OpenCV reader and the sample data, through napari's own plugin machinery."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from npe2 import PluginManifest

from napari_kmeans._napari.reader import get_reader, read_images
from napari_kmeans.io import SUPPORTED_EXTENSIONS

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
SAMPLE_IMAGES = sorted(p for p in SAMPLE_DIR.iterdir() if p.suffix.lower() in SUPPORTED_EXTENSIONS)


def opencv_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_manifest_reader_patterns_cover_every_supported_extension():
    manifest = PluginManifest.from_distribution("napari-kmeans")
    (reader,) = manifest.contributions.readers
    assert {f"*{ext}" for ext in SUPPORTED_EXTENSIONS} <= set(reader.filename_patterns)


def test_viewer_opens_rgb_16bit_and_multipage_files(make_napari_viewer, tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    deep = rng.integers(0, 65535, (20, 30), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.TIF"), deep)
    pages = rng.integers(0, 255, (3, 20, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "pages.tiff", pages, photometric="minisblack")

    viewer = make_napari_viewer()
    (photo,) = viewer.open(tmp_path / "photo.png", plugin="napari-kmeans")
    (deep_layer,) = viewer.open(tmp_path / "deep.TIF", plugin="napari-kmeans")
    (stack,) = viewer.open(tmp_path / "pages.tiff", plugin="napari-kmeans")
    assert photo.rgb and photo.name == "photo"
    np.testing.assert_array_equal(photo.data, rgb)
    assert deep_layer.data.dtype == np.uint16 and not deep_layer.rgb
    np.testing.assert_array_equal(deep_layer.data, deep)
    assert stack.ndim == 3
    np.testing.assert_array_equal(stack.data, pages)


def test_reader_declines_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "missing.png")) is None
    assert get_reader(str(tmp_path)) is None
    reader = get_reader(str(tmp_path / "broken.png"))
    assert reader is not None and reader(str(tmp_path / "broken.png")) == []
    assert read_images([str(tmp_path / "broken.png")]) == []


def test_every_sample_image_is_offered_with_a_name():
    manifest = PluginManifest.from_distribution("napari-kmeans")
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    samples = manifest.contributions.sample_data
    assert {s.key for s in samples} == {p.stem for p in SAMPLE_IMAGES}
    for sample in samples:
        assert sample.command in commands and len(sample.display_name) > len(sample.key) // 2


@pytest.mark.parametrize("path", SAMPLE_IMAGES, ids=lambda p: p.stem)
def test_open_sample_through_the_viewer(make_napari_viewer, path):
    viewer = make_napari_viewer()
    (layer,) = viewer.open_sample("napari-kmeans", path.stem)
    expected = opencv_rgb(path)
    np.testing.assert_array_equal(layer.data, expected)
    assert layer.rgb == (expected.ndim == 3)
