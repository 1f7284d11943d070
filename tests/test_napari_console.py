"""``napari_kmeans.segment_layer`` from the napari console or a script, and the launcher."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans._napari.launch import open_viewer
from napari_kmeans._napari.segmentation import segment_layer


@pytest.fixture(autouse=True)
def own_settings(tmp_path):
    """The widget the launcher docks remembers its settings in a fresh folder."""
    from qtpy.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))


@pytest.mark.slow
def test_segment_layer_gives_the_widgets_layers(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    cells = rng.integers(1000, 60000, (50, 60), dtype=np.uint16)
    source = viewer.add_image(cells, name="cells", scale=(2, 3))
    seg = segment_layer(viewer, "cells", n_clusters=4, seed=1)
    expected = nk.segment(cells, 4, seed=1)
    np.testing.assert_array_equal(seg.labels, expected.labels)
    labels = viewer.layers["cells k-means labels"]
    np.testing.assert_array_equal(labels.data, expected.labels)
    np.testing.assert_allclose(labels.scale, source.scale)
    recolored = viewer.layers["cells k-means recolored"]
    assert recolored.data.dtype == np.uint16
    np.testing.assert_allclose(
        labels.metadata["napari_kmeans"]["palette"],
        [[cells[expected.labels == i].mean()] for i in range(1, 5)],
    )
    segment_layer(viewer, source, n_clusters=3, seed=1)
    assert len(viewer.layers) == 3 and labels.data.max() == 3


def test_segment_layer_raises_plain_errors(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_points([[1, 1]], name="dots")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        segment_layer(viewer, "nope")
    with pytest.raises(ValueError, match="Points layer: choose an Image layer"):
        segment_layer(viewer, "dots")


@pytest.mark.slow
def test_segment_layer_is_public_without_importing_napari():
    probe = (
        "import sys, napari_kmeans\n"
        "assert 'napari' not in sys.modules, 'import napari_kmeans imported napari'\n"
        "assert callable(napari_kmeans.segment_layer)\n"
        "assert napari_kmeans.segment_layer.__module__ == 'napari_kmeans._napari.segmentation'\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_launcher_opens_the_image_with_the_widget_docked(tmp_path, qtbot):
    import cv2

    image = np.zeros((10, 12, 3), np.uint8)
    image[:, 6:] = (255, 0, 0)
    cv2.imwrite(str(tmp_path / "half red.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    viewer, widget = open_viewer([tmp_path / "half red.png"])
    try:
        assert [layer.name for layer in viewer.layers] == ["half red"]
        np.testing.assert_array_equal(viewer.layers["half red"].data, image)
        assert widget.controls.images.value == [viewer.layers["half red"]]
        assert "K-means segmentation" in viewer.window.dock_widgets
    finally:
        viewer.close()
    with pytest.raises(nk.ImageLoadError):
        open_viewer([tmp_path / "missing.png"])


def test_apply_model_labels_layers_with_one_model(make_napari_viewer):
    from napari_kmeans._napari.segmentation import apply_model

    viewer = make_napari_viewer()
    levels = np.array([20, 120, 230], np.uint16)
    rng = np.random.default_rng(0)
    reference = levels[rng.integers(0, 3, (20, 30))]
    others = [levels[rng.choice(3, (15, 10), p=[0.7, 0.2, 0.1])], levels[[[2, 0], [0, 2]]]]
    viewer.add_image(others[0], name="one", scale=(2, 2))
    viewer.add_image(others[1], name="two")
    model = nk.fit(reference, 3, seed=0)
    segs = apply_model(viewer, ["one", viewer.layers["two"]], model)
    for name, image, seg in zip(["one", "two"], others, segs, strict=True):
        labels = viewer.layers[f"{name} k-means labels"]
        # the model orders its clusters darkest first: level i is label i + 1
        np.testing.assert_array_equal(labels.data, np.searchsorted(levels, image) + 1)
        np.testing.assert_array_equal(seg.labels, labels.data)
        np.testing.assert_allclose(labels.scale, viewer.layers[name].scale)
        assert f"{name} k-means recolored" in viewer.layers


def test_apply_model_checks_every_layer_before_changing_any(make_napari_viewer):
    from napari_kmeans._napari.segmentation import apply_model

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((8, 8), np.uint8), name="grey")
    viewer.add_image(np.zeros((8, 8, 3), np.uint8), name="colour", rgb=True)
    model = nk.fit(np.arange(64, dtype=np.uint8).reshape(8, 8), 2, seed=0)
    with pytest.raises(ValueError, match="layer 'colour'"):
        apply_model(viewer, ["grey", "colour"], model)
    assert [layer.name for layer in viewer.layers] == ["grey", "colour"]


def test_segment_layer_without_blocking_returns_the_worker(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    cells = np.random.default_rng(2).integers(0, 4000, (30, 40), dtype=np.uint16)
    viewer.add_image(cells, name="cells")
    # computed first: a cold compile cache then costs its time here, not in the worker
    expected = nk.segment(cells, 3, seed=0)  # the same default seed as the widget
    worker = segment_layer(viewer, "cells", 3, blocking=False)
    assert worker is not None and "cells k-means labels" not in viewer.layers  # returned at once
    # waits for the layer itself: the worker may be done before a signal could be connected
    qtbot.waitUntil(lambda: "cells k-means labels" in viewer.layers, timeout=120_000)
    np.testing.assert_array_equal(viewer.layers["cells k-means labels"].data, expected.labels)


def test_segment_layer_and_the_widget_share_the_seed_default(make_napari_viewer):
    import inspect

    from napari_kmeans._napari._qt.controls import Controls

    controls = Controls(make_napari_viewer())
    assert inspect.signature(segment_layer).parameters["seed"].default == controls.seed.value


def test_recorded_params_repeat_the_run(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    viewer.add_image(photo, name="photo", rgb=True)
    first = segment_layer(viewer, "photo", 4, seed=11, color_space="lab", max_iter=50)
    params = viewer.layers["photo k-means labels"].metadata["napari_kmeans"]["params"]
    viewer.layers.remove("photo k-means labels")
    again = segment_layer(viewer, "photo", **params)  # raised TypeError before
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.params["seed"] == 11 and again.params["color_space"] == "lab"
    with pytest.raises(TypeError, match="colour_space"):
        segment_layer(viewer, "photo", 4, colour_space="lab")
