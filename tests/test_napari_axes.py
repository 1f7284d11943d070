"""Outputs sit on the input's world axes: the labels shown at a position segment that position."""

from __future__ import annotations

import numpy as np
import pytest

from napari_kmeans._napari.segmentation import segment_layer

pytestmark = pytest.mark.gui

# three classes told apart by their two channels; ordered darkest first by channel mean
CLASS_VALUES = np.array([[0, 0], [1000, 0], [0, 3000]], np.uint16)
SCALE = (2.0, 1.0, 0.5, 0.25)
TRANSLATE = (10.0, 0.0, -3.0, 4.0)
AXIS_LABELS = ("z", "c", "y", "x")
UNITS = ("micrometer", "pixel", "micrometer", "micrometer")


def zcyx_stack(n_z=5, size=12):
    """A ZCYX stack whose class layout differs on every z: class = (y // 2 + x // 3 + z) % 3."""
    z, y, x = np.meshgrid(np.arange(n_z), np.arange(size), np.arange(size), indexing="ij")
    truth = (y // 2 + x // 3 + z) % 3
    stack = np.moveaxis(CLASS_VALUES[truth], -1, 1)  # (Z, C, Y, X)
    return stack, truth + 1  # labels 1..3 in the classes' order


def world(index, scale=SCALE, translate=TRANSLATE):
    return tuple(t + s * i for i, s, t in zip(index, scale, translate, strict=True))


@pytest.fixture
def stack_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    stack, truth = zcyx_stack()
    layer = viewer.add_image(
        stack,
        name="stack",
        scale=SCALE,
        translate=TRANSLATE,
        axis_labels=AXIS_LABELS,
        units=UNITS,
    )
    return viewer, layer, truth


def test_labels_shown_at_each_z_and_channel_are_that_z(stack_viewer):
    viewer, layer, truth = stack_viewer
    segment_layer(viewer, "stack", 3, channel_axis=1, seed=0)
    labels = viewer.layers["stack k-means labels"]
    recolored = viewer.layers["stack k-means recolored"]
    ranges = [(r.start, r.stop) for r in viewer.dims.range]
    assert viewer.dims.ndim == 4 and ranges[1] == (0.0, 1.0)  # the C slider did not grow
    for z in range(truth.shape[0]):
        for c in range(2):
            viewer.dims.current_step = (z, c, 0, 0)
            for y, x in [(0, 0), (5, 7), (11, 11), (3, 10)]:
                position = world((z, c, y, x))
                assert labels.get_value(position, world=True) == truth[z, y, x]
                expected = CLASS_VALUES[truth[z, y, x] - 1, c]
                assert recolored.get_value(position, world=True) == expected
            # what napari draws for this slice: the labels of this z
            np.testing.assert_array_equal(np.asarray(labels._slice.image.raw), truth[z])


def test_labels_keep_the_input_units_axis_labels_and_placement(stack_viewer):
    viewer, layer, truth = stack_viewer
    segment_layer(viewer, "stack", 3, channel_axis=1, seed=0)
    labels = viewer.layers["stack k-means labels"]
    assert tuple(labels.axis_labels) == AXIS_LABELS
    assert tuple(str(u) for u in labels.units) == tuple(str(u) for u in layer.units)
    np.testing.assert_allclose(labels.scale[[0, 2, 3]], np.asarray(SCALE)[[0, 2, 3]])
    np.testing.assert_allclose(labels.translate[[0, 2, 3]], np.asarray(TRANSLATE)[[0, 2, 3]])
    # pixel (z, y, x) of the labels lands on the input's pixel (z, *, y, x) in the world
    for c in range(2):
        data_point = layer.world_to_data(world((3, c, 7, 2)))
        assert np.allclose(np.asarray(data_point)[[0, 2, 3]], [3, 7, 2])
        label_point = labels.world_to_data(world((3, c, 7, 2)))
        assert np.allclose(np.asarray(label_point)[[0, 2, 3]], [3, 7, 2])
        assert round(float(label_point[1])) == 0


def test_slice_preview_lands_on_the_current_position(stack_viewer):
    viewer, layer, truth = stack_viewer
    viewer.dims.current_step = (3, 1, 0, 0)
    segment_layer(viewer, "stack", 3, channel_axis=1, current_slice=True, seed=0)
    preview = viewer.layers["stack k-means preview"]
    for y, x in [(0, 0), (6, 4), (11, 2)]:
        assert preview.get_value(world((3, 1, y, x)), world=True) == truth[3, y, x]
        assert preview.get_value(world((3, 0, y, x)), world=True) == truth[3, y, x]
    assert preview.data.shape[:2] == (1, 1)  # one z, the channel axis kept with length 1
    assert preview.data_to_world((0, 0, 0, 0))[0] == world((3, 0, 0, 0))[0]


def test_rgb_layer_labels_keep_scale_and_units(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, (10, 14))
    image = np.array([[20, 30, 40], [200, 210, 220]], np.uint8)[truth]
    viewer.add_image(
        image,
        name="rgb",
        rgb=True,
        scale=(0.5, 2.0),
        translate=(1, -1),
        axis_labels=("y", "x"),
        units=("mm", "mm"),
    )
    segment_layer(viewer, "rgb", 2, seed=0)
    labels = viewer.layers["rgb k-means labels"]
    recolored = viewer.layers["rgb k-means recolored"]
    assert recolored.rgb and tuple(labels.axis_labels) == ("y", "x")
    assert tuple(str(u) for u in labels.units) == ("millimeter", "millimeter")
    for y, x in [(0, 0), (9, 13), (4, 6)]:
        assert labels.get_value((1 + 0.5 * y, -1 + 2.0 * x), world=True) == truth[y, x] + 1
