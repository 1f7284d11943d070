"""The "K-means segmentation" widget, end to end in a real viewer (Xvfb)."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import QSettings, Qt

import napari_kmeans as nk
from napari_kmeans._napari._qt.widget import KMeansWidget
from napari_kmeans._napari.sample_data import ihc_slide, synthetic_cells


@pytest.fixture
def notifications():
    received = []
    notification_manager.notification_ready.connect(received.append)
    yield received
    notification_manager.notification_ready.disconnect(received.append)


@pytest.fixture(autouse=True)
def own_settings(tmp_path):
    """Settings the widget remembers go to a fresh folder for each test."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def run_and_wait(qtbot, widget, timeout=30_000):
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=timeout)


def suggest_and_wait(qtbot, widget, timeout=60_000):
    assert widget.suggest() is not None
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=timeout)


def choose(widget, *layers):
    widget.controls.images.value = list(layers)


def layer_names(viewer):
    return [layer.name for layer in viewer.layers]


def test_rgb_sample_end_to_end(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    data, settings, _ = ihc_slide()[0]
    source = viewer.add_image(data, scale=(0.5, 0.25), translate=(3, 4), **settings)
    original = source.data.copy()
    choose(widget, source)
    widget.controls.n_clusters.value = 3
    widget.controls.seed.value = 7
    widget.controls.cross_check.value = True
    widget.controls.label_colors.value = "cluster"
    run_and_wait(qtbot, widget)

    labels = viewer.layers["ihc_slide k-means labels"]
    recolored = viewer.layers["ihc_slide k-means recolored"]
    assert labels.data.shape == data.shape[:2] and labels.data.dtype == np.uint8
    assert recolored.rgb and recolored.data.shape == data.shape and recolored.data.dtype == np.uint8
    assert recolored.contrast_limits == source.contrast_limits
    for layer in (labels, recolored):
        np.testing.assert_allclose(layer.scale, source.scale)
        np.testing.assert_allclose(layer.translate, source.translate)
        np.testing.assert_allclose(layer.affine.affine_matrix, source.affine.affine_matrix)
    expected = nk.segment(data, 3, seed=7, channel_axis=-1, standardize=False)
    np.testing.assert_array_equal(labels.data, expected.labels)

    for label in range(1, 4):
        mean = data[labels.data == label].mean(axis=0)  # independent of the package
        np.testing.assert_allclose(labels.colormap.map(label)[:3], mean / 255, atol=1e-6)
        np.testing.assert_array_equal(recolored.data[labels.data == label][0], np.rint(mean))

    meta = labels.metadata["napari_kmeans"]
    assert recolored.metadata["napari_kmeans"]["params"] == meta["params"]
    assert (meta["role"], recolored.metadata["napari_kmeans"]["role"]) == ("labels", "recolored")
    assert meta["params"]["n_clusters"] == 3 and meta["params"]["seed"] == 7
    assert meta["counts"] == np.bincount(labels.data.ravel(), minlength=4)[1:].tolist()
    np.testing.assert_allclose(meta["palette"], [data[labels.data == i].mean(0) for i in (1, 2, 3)])
    assert meta["inertia"] > 0
    assert 0.5 < meta["cross_check"]["adjusted_rand_index"] <= 1.0
    assert widget.results.table.rowCount() == 3
    assert "adjusted Rand index" in widget.results.check_label.text()
    assert widget.controls.restarts.value == 0 and "0 = auto" in widget.controls.restarts.label
    assert meta["params"]["n_init"] == "auto"  # the same default as napari_kmeans.segment
    np.testing.assert_array_equal(source.data, original)
    assert not [n for n in notifications if n.severity >= NotificationSeverity.WARNING]


def test_grey_16bit_sample_uses_its_colormap_and_optimal_method(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    data, settings, _ = synthetic_cells()[0]
    source = viewer.add_image(data, colormap="magma", **settings)
    choose(widget, source)
    assert widget.controls.color_space.native.isHidden()  # one channel: no colour space to choose
    assert widget.controls.method.choices == ("kmeans++", "optimal")
    widget.controls.method.value = "optimal"
    widget.controls.n_clusters.value = 4
    widget.controls.label_colors.value = "cluster"
    run_and_wait(qtbot, widget)

    labels = viewer.layers["synthetic_cells_16bit k-means labels"]
    recolored = viewer.layers["synthetic_cells_16bit k-means recolored"]
    assert recolored.data.dtype == np.uint16 and not recolored.rgb
    assert recolored.colormap.name == "magma"
    assert recolored.contrast_limits == source.contrast_limits
    np.testing.assert_array_equal(labels.data, nk.segment(data, 4, method="optimal", seed=0).labels)
    low, high = source.contrast_limits
    for label in (1, 4):
        mean = data[labels.data == label].mean()
        expected = source.colormap.map(np.array([np.clip((mean - low) / (high - low), 0, 1)]))
        np.testing.assert_allclose(labels.colormap.map(label), expected[0], atol=1e-6)


def test_rerun_replaces_layers_instead_of_adding(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(0)
    source = viewer.add_image(rng.integers(0, 255, (40, 50), dtype=np.uint8), name="noise")
    choose(widget, source)
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    first = viewer.layers["noise k-means labels"]
    widget.controls.n_clusters.value = 6
    run_and_wait(qtbot, widget)
    assert layer_names(viewer) == ["noise", "noise k-means recolored", "noise k-means labels"]
    assert viewer.layers["noise k-means labels"] is first
    assert first.data.max() == 6 and first.metadata["napari_kmeans"]["params"]["n_clusters"] == 6


def test_mask_from_labels_layer(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    source = viewer.add_image(image, name="photo", rgb=True)
    region = np.zeros((30, 40), np.uint8)
    region[5:20, 10:30] = 3
    viewer.add_labels(region, name="region")
    choose(widget, source)
    widget.controls.mask.value = viewer.layers["region"]
    widget.controls.n_clusters.value = 4
    run_and_wait(qtbot, widget)
    labels = viewer.layers["photo k-means labels"].data
    np.testing.assert_array_equal(labels != 0, region != 0)
    recolored = viewer.layers["photo k-means recolored"].data
    np.testing.assert_array_equal(recolored[region == 0], image[region == 0])


def test_mask_from_shapes_layer_is_rasterised_on_the_image_grid(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(2)
    # Image pixels are 2 x 2 world units: a world rectangle (10..30, 20..60) covers
    # pixel rows 5..15 and columns 10..30 (vertices on pixel centres, inclusive).
    source = viewer.add_image(rng.random((40, 50)).astype(np.float32), name="img", scale=(2, 2))
    viewer.add_shapes([np.array([[10, 20], [10, 60], [30, 60], [30, 20]])], name="roi")
    choose(widget, source)
    widget.controls.mask.value = viewer.layers["roi"]
    widget.controls.n_clusters.value = 2
    run_and_wait(qtbot, widget)
    included = viewer.layers["img k-means labels"].data != 0
    rows, cols = np.nonzero(included)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 15, 10, 30)
    assert included[5:16, 10:31].all()


def test_single_channel_layers_used_together_as_channels(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(3)
    red = rng.integers(0, 4, (30, 30), dtype=np.uint8) * 60
    green = rng.integers(0, 2, (30, 30), dtype=np.uint8) * 200
    a = viewer.add_image(red, name="a", colormap="red", blending="additive")
    b = viewer.add_image(green, name="b", colormap="green", blending="additive")
    choose(widget, a, b)
    assert widget.controls.method.choices == ("kmeans++",)  # two features: no exact 1-D method
    widget.controls.n_clusters.value = 8
    run_and_wait(qtbot, widget)
    assert layer_names(viewer) == [
        "a",
        "b",
        "a + b k-means recolored: a",
        "a + b k-means recolored: b",
        "a + b k-means labels",
    ]
    labels = viewer.layers["a + b k-means labels"].data
    stacked = np.stack([red, green], axis=-1)
    expected = nk.segment(stacked, 8, seed=0, channel_axis=-1, standardize=False)
    np.testing.assert_array_equal(labels, expected.labels)
    # 8 distinct (red, green) pairs and 8 clusters: every cluster is one pair
    for label in range(1, 9):
        pixels = labels == label
        assert len({(r, g) for r, g in zip(red[pixels], green[pixels], strict=True)}) == 1
    for name, channel in (("a", red), ("b", green)):
        recolored = viewer.layers[f"a + b k-means recolored: {name}"]
        np.testing.assert_array_equal(recolored.data, channel)  # pure clusters keep values
        assert recolored.colormap.name == viewer.layers[name].colormap.name


def test_mismatched_shapes_and_bad_parameters_notify_and_add_nothing(
    qtbot, viewer_widget, notifications
):
    viewer, widget = viewer_widget
    a = viewer.add_image(np.zeros((10, 10), np.uint8), name="a")
    b = viewer.add_image(np.zeros((10, 12), np.uint8), name="b")
    choose(widget, a, b)
    assert widget.run() is None
    choose(widget, a)
    widget.controls.tol.value = "tiny"
    assert widget.run() is None
    widget.controls.tol.value = "1e-4"
    widget.controls.n_clusters.value = 3  # a has one distinct value: too many clusters
    run_and_wait(qtbot, widget)
    errors = [str(n.message) for n in notifications if n.severity == NotificationSeverity.ERROR]
    assert len(errors) == 3
    assert "same shape" in errors[0] and "tolerance" in errors[1] and "n_clusters" in errors[2]
    assert all("Traceback" not in e for e in errors)
    assert layer_names(viewer) == ["a", "b"]


def test_cancel_stops_within_a_second_and_adds_nothing(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(4)
    source = viewer.add_image(rng.random((300, 300, 3), dtype=np.float32), name="noise", rgb=True)
    choose(widget, source)
    widget.controls.n_clusters.value = 60
    widget.controls.restarts.value = 50
    widget.controls.max_iter.value = 100_000
    widget.controls.tol.value = "0"
    run_and_wait_started = widget.run()
    assert run_and_wait_started is not None
    qtbot.waitUntil(lambda: widget.tasks.task.state[1] > 0, timeout=20_000)
    assert widget.tasks.cancel_button.isEnabled() and not widget.tasks.isHidden()
    started = time.perf_counter()
    qtbot.mouseClick(widget.tasks.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=5_000)
    assert time.perf_counter() - started < 1.0
    assert layer_names(viewer) == ["noise"]
    assert any("cancelled" in str(n.message) for n in notifications)
    assert widget.run_button.isEnabled()


def test_cluster_table_csv_and_mask_from_selected_clusters(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    image = np.repeat(np.array([[10, 100, 200]], np.uint8), 4, axis=0)  # 3 columns, 3 values
    image = np.repeat(image, [5, 3, 2], axis=1)
    source = viewer.add_image(image, name="bars")
    choose(widget, source)
    widget.controls.n_clusters.value = 3
    widget.controls.cross_check.value = True
    run_and_wait(qtbot, widget)

    path = widget.export_csv(str(tmp_path / "clusters.csv"))
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["pixels"]) for r in rows] == [20, 12, 8]
    assert [float(r["mean_grey"]) for r in rows] == [10.0, 100.0, 200.0]
    assert [float(r["fraction"]) for r in rows] == [0.5, 0.3, 0.2]
    assert float(rows[0]["opencv_adjusted_rand_index"]) == 1.0

    widget.results.table.selectRow(0)
    widget.results.table.selectionModel().select(
        widget.results.table.model().index(2, 0),
        widget.results.table.selectionModel().SelectionFlag.Select
        | widget.results.table.selectionModel().SelectionFlag.Rows,
    )
    assert widget.results.table.selected_labels() == [1, 3]
    subset = widget.mask_from_selection()
    assert subset.name == "bars k-means clusters 1, 3"
    np.testing.assert_array_equal(subset.data != 0, image != 100)
    widget.reset_choices()
    assert subset in widget.controls.mask.choices  # usable as a mask, unlike the labels
    assert viewer.layers["bars k-means labels"] not in widget.controls.mask.choices


def test_current_slice_preview_of_a_stack(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(5)
    stack = rng.integers(0, 255, (4, 20, 30), dtype=np.uint8)
    source = viewer.add_image(stack, name="stack")
    viewer.dims.set_current_step(0, 2)
    choose(widget, source)
    assert not widget.controls.current_slice.native.isHidden()
    widget.controls.current_slice.value = True
    widget.controls.n_clusters.value = 3
    widget.controls.current_slice.value = False
    run_and_wait(qtbot, widget)  # the full result first
    full = viewer.layers["stack k-means labels"]
    full_data = full.data.copy()
    widget.controls.current_slice.value = True
    run_and_wait(qtbot, widget)
    preview = viewer.layers["stack k-means preview"]
    # fitted on the slice alone, shown on that slice only, the full result kept
    assert preview.data.shape == (1, 20, 30)
    np.testing.assert_array_equal(preview.data[0], nk.segment(stack[2], 3, seed=0).labels)
    np.testing.assert_allclose(preview.translate, [2, 0, 0])
    assert viewer.layers["stack k-means labels"] is full
    np.testing.assert_array_equal(full.data, full_data)
    np.testing.assert_array_equal(full_data, nk.segment(stack, 3, seed=0).labels)


# --- the model of the last run: save, apply ----------------------------------------------------

PALETTE = np.array([[200, 30, 40], [30, 160, 60], [40, 50, 210]], np.uint8)


def three_colours(shape, seed, p=None, noise=4.0):
    """Pixels of PALETTE's colours (in proportions ``p``) plus Gaussian noise; also the truth."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, shape, p=p)
    noisy = PALETTE[truth] + rng.normal(0, noise, (*shape, 3))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8), truth


def label_per_truth(labels, truth):
    """The one label of each true colour (fails if a colour got several labels)."""
    mapping = {}
    for colour in np.unique(truth):
        found = np.unique(labels[truth == colour])
        assert len(found) == 1, (colour, found)
        mapping[int(colour)] = int(found[0])
    return mapping


def apply_actions(widget):
    widget.models.fill_apply_menu()  # what opening the menu does
    return {action.text(): action for action in widget.models.apply_menu.actions() if action.text()}


def test_model_buttons_are_enabled_only_after_a_run(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    assert not widget.models.save_button.isEnabled() and not widget.models.apply_button.isEnabled()
    assert widget.models.save_model("never.json") is None
    assert any("Run a k-means segmentation first" in str(n.message) for n in notifications)


def test_saved_model_predicts_the_runs_labels(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    image, _ = three_colours((30, 40), seed=0)
    choose(widget, viewer.add_image(image, name="photo", rgb=True))
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    assert widget.models.save_button.isEnabled() and widget.models.apply_button.isEnabled()
    path = widget.models.save_model(str(tmp_path / "photo model.json"))
    model = nk.load_model(path)
    labels = viewer.layers["photo k-means labels"].data
    np.testing.assert_array_equal(model.predict(image).labels, labels)
    np.testing.assert_allclose(model.palette, [image[labels == i].mean(0) for i in (1, 2, 3)])


def test_apply_to_another_layer_gives_the_same_label_to_the_same_colour(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    first, first_truth = three_colours((30, 40), seed=0)
    # without the colour of label 2: a fit of its own would split another colour instead
    second, second_truth = three_colours((25, 20), seed=1, p=[0.0, 0.3, 0.7])
    choose(widget, viewer.add_image(first, name="first", rgb=True))
    viewer.add_image(second, name="second", rgb=True)
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    viewer.layers["first"].name = "renamed first"  # still the model's own layer
    actions = apply_actions(widget)
    assert list(actions) == ["second", "Every image layer of the same kind (1)"]
    actions["second"].trigger()
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=30_000)

    labels = viewer.layers["second k-means labels"]
    recolored = viewer.layers["second k-means recolored"]
    expected = label_per_truth(viewer.layers["first k-means labels"].data, first_truth)
    assert viewer.layers["first k-means labels"].metadata["napari_kmeans"]["source_layers"] == [
        "first"
    ]
    assert label_per_truth(labels.data, second_truth) == {1: expected[1], 2: expected[2]}
    assert np.unique(labels.data).tolist() == sorted([expected[1], expected[2]])
    palette = np.array(labels.metadata["napari_kmeans"]["palette"])
    np.testing.assert_array_equal(recolored.data, np.rint(palette[labels.data - 1]))
    np.testing.assert_allclose(palette, widget.segmentation.palette)  # the model's colours


def test_apply_to_every_layer_of_the_same_kind(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    images = [three_colours((20, 20), seed=s) for s in range(3)]
    for i, (image, _) in enumerate(images):
        viewer.add_image(image, name=f"rgb{i}", rgb=True)
    viewer.add_image(images[0][0][..., 0], name="grey")  # one channel: another kind
    viewer.add_image(images[0][0].astype(np.uint16), name="deep", rgb=True)  # another dtype
    choose(widget, viewer.layers["rgb0"])
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    actions = apply_actions(widget)
    assert list(actions) == ["rgb1", "rgb2", "Every image layer of the same kind (2)"]
    actions["Every image layer of the same kind (2)"].trigger()
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=30_000)
    expected = label_per_truth(viewer.layers["rgb0 k-means labels"].data, images[0][1])
    for i in (1, 2):
        labels = viewer.layers[f"rgb{i} k-means labels"].data
        assert label_per_truth(labels, images[i][1]) == expected
    assert "grey k-means labels" not in viewer.layers
    assert "deep k-means labels" not in viewer.layers
    # outputs are not offered as inputs
    assert list(apply_actions(widget)) == ["rgb1", "rgb2", "Every image layer of the same kind (2)"]


def test_applying_to_a_layer_that_does_not_fit_notifies(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    image, _ = three_colours((20, 20), seed=0)
    choose(widget, viewer.add_image(image, name="photo", rgb=True))
    grey = viewer.add_image(image[..., 0], name="grey")
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    assert list(apply_actions(widget)) == ["No other image layer of the same kind"]
    assert widget.models.apply_model([grey]) is not None
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=30_000)
    errors = [str(n.message) for n in notifications if n.severity == NotificationSeverity.ERROR]
    assert len(errors) == 1 and "'grey'" in errors[0] and "Traceback" not in errors[0]
    assert "grey k-means labels" not in viewer.layers


# --- Suggest k ---------------------------------------------------------------------------------


def test_suggest_k_plots_the_curves_and_offers_the_k(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    image, _ = three_colours((40, 50), seed=0)
    choose(widget, viewer.add_image(image, name="photo", rgb=True))
    assert widget.k_panel.isHidden()
    widget.controls.n_clusters.value = 7
    suggest_and_wait(qtbot, widget)
    assert widget.suggestion.recommended == 3
    assert widget.controls.n_clusters.value == 7  # not overwritten without asking
    assert not widget.k_panel.isHidden() and not widget.k_panel.curves.isHidden()
    assert "k = 3" in widget.k_panel.header.text()
    assert not widget.use_k_button.isHidden() and widget.use_k_button.text() == "Use k = 3"
    qtbot.mouseClick(widget.use_k_button, Qt.MouseButton.LeftButton)
    assert widget.controls.n_clusters.value == 3
    qtbot.mouseClick(widget.k_panel.header, Qt.MouseButton.LeftButton)  # fold
    assert widget.k_panel.curves.isHidden() and not widget.k_panel.header.isHidden()
    assert widget.suggest_button.isEnabled()
    assert not [n for n in notifications if n.severity >= NotificationSeverity.WARNING]
    assert [layer.name for layer in viewer.layers] == ["photo"]  # no layer added


def test_suggest_k_errors_notify(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    a = viewer.add_image(np.zeros((10, 10), np.uint8), name="a")
    b = viewer.add_image(np.zeros((10, 12), np.uint8), name="b")
    choose(widget, a, b)
    assert widget.suggest() is None
    errors = [str(n.message) for n in notifications if n.severity == NotificationSeverity.ERROR]
    assert len(errors) == 1 and "same shape" in errors[0] and "Traceback" not in errors[0]
    assert widget.k_panel.isHidden() and widget.controls.n_clusters.value == 5


def test_suggest_k_on_a_constant_image_explains_and_keeps_the_clusters(
    qtbot, viewer_widget, notifications
):
    viewer, widget = viewer_widget
    choose(widget, viewer.add_image(np.full((10, 10), 7, np.uint8), name="flat"))
    widget.controls.n_clusters.value = 4
    suggest_and_wait(qtbot, widget)
    assert widget.controls.n_clusters.value == 4 and widget.use_k_button.isHidden()
    infos = [str(n.message) for n in notifications]
    assert any("single value" in m for m in infos)
    assert not [n for n in notifications if n.severity >= NotificationSeverity.WARNING]
