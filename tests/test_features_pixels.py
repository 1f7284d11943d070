"""Feature construction against hand-computed values."""

import numpy as np
import pytest

from napari_kmeans.engine.grid_rows import take
from napari_kmeans.features import pixels as ft


@pytest.mark.parametrize(
    ("rgb", "lab"),
    [  # CIELAB (D65) reference values of sRGB colours
        ([255, 255, 255], [100.0, 0.0, 0.0]),
        ([0, 0, 0], [0.0, 0.0, 0.0]),
        ([255, 0, 0], [53.24, 80.09, 67.20]),
        ([0, 255, 0], [87.73, -86.18, 83.18]),
        ([0, 0, 255], [32.30, 79.19, -107.86]),
    ],
)
def test_lab_of_reference_colours(rgb, lab):
    for dtype, scale in ((np.uint8, 1), (np.uint16, 257)):
        values = (np.array([rgb]) * scale).astype(dtype)
        got = ft.color_features(values, "lab", np.dtype(np.float64))
        np.testing.assert_allclose(got[0], lab, atol=0.6)
    unit = np.array([rgb], np.float32) / 255
    np.testing.assert_allclose(ft.color_features(unit, "lab", np.float64)[0], lab, atol=0.6)


def test_gray_is_bt601_luma_in_image_units():
    values = np.array([[100, 50, 200]], np.uint16)
    got = ft.color_features(values, "gray", np.dtype(np.float64))
    assert got.shape == (1, 1)
    assert got[0, 0] == pytest.approx(0.299 * 100 + 0.587 * 50 + 0.114 * 200)


def pixel_table(image, channel_axis):
    return ft.channel_layout(image.shape, channel_axis).table(image)


def test_pixel_table_layouts():
    img = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    rgba = pixel_table(img, "auto")
    assert rgba.values.shape == (6, 3) and rgba.alpha.tolist() == img[..., 3].ravel().tolist()
    four = pixel_table(img, -1)
    assert four.values.shape == (6, 4) and four.alpha is None
    first = pixel_table(img, 0)
    assert first.spatial_shape == (3, 4)
    np.testing.assert_array_equal(first.values[:, 1], img[1].ravel())
    assert pixel_table(img, None).values.shape == (24, 1)
    assert ft.resolve_channel_axis(np.zeros((5, 5, 5)), "auto") is None


def test_coordinates_follow_spacing_and_mask():
    coords = ft.coordinate_features(
        (3, 5), (2.0, 1.0), 1.0, 100.0, np.array([0, 7, 14]), np.dtype(np.float64)
    )
    scale = 100.0 / 4  # largest physical extent: y spans (3 - 1) * 2 = 4, x spans 4
    np.testing.assert_allclose(coords, [[0, 0], [1 * 2 * scale, 2 * scale], [4 * scale, 4 * scale]])


def test_spatial_feature_rows_are_built_without_image_sized_temporaries():
    import tracemalloc

    from napari_kmeans.model.fitting import pixel_rows

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1000, 1500, 3), dtype=np.uint8)
    values = img.reshape(-1, 3)
    tracemalloc.start()
    rows, recipe = pixel_rows([(values, img.shape[:2], None)], "lab", 0.5, (1.0, 2.0))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows.features.shape == (values.shape[0], 5)
    # before: int64 indices and coordinates of every pixel, then a concatenated copy (2.6x
    # the rows); then the rows written out (1x); now only the float32 colour features
    assert peak < 1.3 * values.shape[0] * 3 * 4
    # the rows are the colour features and the scaled coordinates, as one would compute them
    lab = ft.color_features(values[:7], "lab", np.float32)
    first = take(rows.features, np.arange(7))
    np.testing.assert_allclose(first[:, :3], lab)
    value_range = np.ptp(ft.color_features(values, "lab", np.float32), axis=0).max()
    assert recipe.value_range == pytest.approx(value_range)
    extent = max(999 * 1.0, 1499 * 2.0)
    scale = 0.5 * value_range / extent
    y, x = np.unravel_index(np.arange(7), img.shape[:2])
    np.testing.assert_allclose(first[:, 3], y * 1.0 * scale, rtol=1e-6)
    np.testing.assert_allclose(first[:, 4], x * 2.0 * scale, rtol=1e-6)
