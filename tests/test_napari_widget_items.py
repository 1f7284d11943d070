"""The widget driven as a user drives it, control by control (Xvfb)."""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager
from qtpy.QtCore import QSettings, Qt
from qtpy.QtWidgets import QApplication, QMessageBox, QPushButton

import napari_kmeans as nk
from napari_kmeans._napari import segmentation as sg
from napari_kmeans._napari._qt.k_plot import theme_colors
from napari_kmeans._napari._qt.widget import KMeansWidget
from napari_kmeans.features import color_spaces
from napari_kmeans.outputs.label_colors import distinct_colors


@pytest.fixture(autouse=True)
def own_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))


@pytest.fixture
def notifications():
    received = []
    notification_manager.notification_ready.connect(received.append)
    yield received
    notification_manager.notification_ready.disconnect(received.append)


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def wait_idle(qtbot, widget, timeout=120_000):
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=timeout)


def run_and_wait(qtbot, widget, timeout=120_000):
    assert widget.run() is not None
    wait_idle(qtbot, widget, timeout)


def names(viewer):
    return [layer.name for layer in viewer.layers]


def errors(notifications):
    return [str(n.message) for n in notifications if n.severity >= NotificationSeverity.ERROR]


def bars():
    """Three grey levels in 5, 3 and 2 columns of 4 rows: 20, 12 and 8 pixels."""
    image = np.repeat(np.array([[10, 100, 200]], np.uint8), 4, axis=0)
    return np.repeat(image, [5, 3, 2], axis=1)


def held(monkeypatch, module, name):
    """Make ``module.<name>`` wait, reporting nothing (like cv2), until the test lets it go.

    Returns the events ``entered`` (the call has started), ``release`` (set by the test) and
    ``left`` (the call has returned): a cancel is then seen to free the widget while the stage
    is still running, with no clock involved.
    """
    original = getattr(module, name)
    stage = SimpleNamespace(entered=threading.Event(), release=threading.Event())
    stage.left = threading.Event()

    @functools.wraps(original)
    def waiting(*args, **kwargs):
        stage.entered.set()
        stage.release.wait(120)  # bounded: a failing test still lets the thread end
        try:
            return original(*args, **kwargs)
        finally:
            stage.left.set()

    monkeypatch.setattr(module, name, waiting)
    return stage


# --- 1. the right layer, always ------------------------------------------------------------


def test_renaming_the_input_keeps_it_and_reruns_update_their_own_layers(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(0)
    source = viewer.add_image(rng.integers(0, 255, (20, 30, 3), np.uint8), name="astro", rgb=True)
    widget.controls.images.value = [source]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    labels = viewer.layers["astro k-means labels"]
    recolored = viewer.layers["astro k-means recolored"]
    assert [c for c in widget.controls.images.choices] == [source]  # outputs not offered
    assert labels not in widget.controls.mask.choices
    source.name = "renamed"
    assert widget.controls.images.value == [source]
    widget.controls.n_clusters.value = 4
    run_and_wait(qtbot, widget)
    assert len(viewer.layers) == 3  # updated in place, nothing segmented twice
    assert labels.data.max() == 4 and labels.metadata["napari_kmeans"]["source_layers"] == [
        "renamed"
    ]
    np.testing.assert_array_equal(recolored.data, nk.segment(source.data, 4, seed=0).recolored)


def test_output_names_do_not_collide_between_input_sets(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(1)
    nuclei = viewer.add_image(rng.integers(0, 255, (20, 20), np.uint8), name="nuclei")
    membrane = viewer.add_image(rng.integers(0, 255, (20, 20), np.uint8), name="membrane")
    widget.controls.images.value = [nuclei]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    widget.controls.images.value = [membrane, nuclei]
    widget.controls.n_clusters.value = 4
    run_and_wait(qtbot, widget)
    single = [viewer.layers[f"nuclei k-means {r}"] for r in ("labels", "recolored")]
    assert {layer.metadata["napari_kmeans"]["params"]["n_clusters"] for layer in single} == {3}
    pair = [layer for layer in viewer.layers if " + " in layer.name]
    assert len(pair) == 3
    assert {layer.metadata["napari_kmeans"]["params"]["n_clusters"] for layer in pair} == {4}


@pytest.mark.parametrize("answer", ["No", "Yes"])
def test_painted_labels_are_replaced_only_when_the_user_agrees(
    qtbot, viewer_widget, monkeypatch, answer
):
    viewer, widget = viewer_widget
    widget.controls.images.value = [viewer.add_image(bars(), name="bars")]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    labels = viewer.layers["bars k-means labels"]
    labels.data[0, :2] = 7  # painted by hand
    labels.refresh()
    asked = []

    def question(*args, **kwargs):
        asked.append(args[2])
        return getattr(QMessageBox.StandardButton, answer)

    monkeypatch.setattr(QMessageBox, "question", question)
    widget.controls.n_clusters.value = 2
    run_and_wait(qtbot, widget)
    assert len(asked) == 1 and "bars k-means labels" in asked[0]
    outputs = [layer for layer in viewer.layers if "labels" in layer.name]
    if answer == "No":
        assert labels.data[0, 0] == 7 and labels.data.max() == 7  # kept as painted
        assert len(outputs) == 2 and outputs[1].data.max() == 2
    else:
        assert outputs == [labels] and labels.data.max() == 2
    run_and_wait(qtbot, widget)  # nothing painted since: no question
    assert len(asked) == 1


@pytest.mark.slow
def test_a_float_volume_with_three_planes_is_not_taken_for_rgb(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(2)
    data = rng.random((30, 40, 3)).astype(np.float32)
    source = viewer.add_image(data, name="volume", rgb=False, scale=(2, 3, 5))
    widget.controls.images.value = [source]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)  # crashed in _upsert before
    labels = viewer.layers["volume k-means labels"]
    np.testing.assert_array_equal(
        labels.data, nk.segment(data, 3, seed=0, channel_axis=None).labels
    )
    # the user says the last axis holds channels: 2-D labels on the layer's own grid (the
    # channel axis kept with length 1, so the labels stay on the layer's world axes)
    assert not widget.controls.channel_axis.native.isHidden()
    widget.controls.channel_axis.value = 2
    run_and_wait(qtbot, widget)
    labels = viewer.layers["volume k-means labels"]
    unticked = nk.segment(data, 3, seed=0, channel_axis=2, standardize=False)  # the checkbox's
    np.testing.assert_array_equal(labels.data[..., 0], unticked.labels)  # channel axis kept
    np.testing.assert_allclose(labels.data_to_world([10, 20, 0])[:2], [20, 60])


def test_no_exception_escapes_into_napari(qtbot, viewer_widget, monkeypatch, notifications):
    viewer, widget = viewer_widget
    widget.controls.images.value = [viewer.add_image(bars(), name="bars")]
    widget.controls.n_clusters.value = 3

    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(sg.outputs, "show", broken)
    run_and_wait(qtbot, widget)
    assert any("RuntimeError: unexpected" in e for e in errors(notifications))
    assert widget.run_button.isEnabled()


# --- 2. every stage in a worker, cancellable -----------------------------------------------


def test_cancel_during_a_stage_that_reports_nothing(qtbot, viewer_widget, monkeypatch):
    viewer, widget = viewer_widget
    stage = held(monkeypatch, sg, "cv2_cross_check")
    widget.controls.images.value = [viewer.add_image(bars(), name="bars")]
    widget.controls.cross_check.value = True
    widget.controls.n_clusters.value = 3
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(stage.entered.is_set, timeout=120_000)
    qtbot.mouseClick(widget.tasks.cancel_button, Qt.MouseButton.LeftButton)
    assert "Cancelling" in widget.tasks.status.text()
    wait_idle(qtbot, widget)  # the stage still runs: abandoning it (after ~1 s) frees the widget
    assert not stage.left.is_set() and widget.tasks.abandon_after <= 1.0
    assert widget.run_button.isEnabled()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        stage.release.set()  # the abandoned thread ends: its result is dropped
    assert names(viewer) == ["bars"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["remove the input", "close the widget"])
def test_a_run_whose_input_or_widget_went_adds_nothing(qtbot, viewer_widget, monkeypatch, how):
    viewer, widget = viewer_widget
    stage = held(monkeypatch, sg, "segment")  # the run waits until the input or widget went
    source = viewer.add_image(bars(), name="bars")
    viewer.add_image(bars(), name="other")
    widget.controls.images.value = [source]
    widget.controls.n_clusters.value = 3
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        if how == "remove the input":
            viewer.layers.remove(source)
        else:
            viewer.window.remove_dock_widget(widget)
        stage.release.set()
    qtbot.wait(200)
    assert not any("k-means" in name for name in names(viewer))


@pytest.mark.slow
def test_progress_shows_stage_and_never_passes_its_total(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(4)
    image = rng.random((200, 200, 3), dtype=np.float32)
    widget.controls.images.value = [viewer.add_image(image, name="noise", rgb=True)]
    widget.controls.n_clusters.value = 20
    widget.controls.restarts.value = 3
    seen = []

    def record():
        if widget.tasks.running:
            seen.append((widget.tasks.bar.value(), widget.tasks.bar.maximum()))
            seen.append(widget.tasks.status.text())
        return not widget.tasks.running

    assert widget.run() is not None
    qtbot.waitUntil(record, timeout=60_000)
    bars_seen = [s for s in seen if isinstance(s, tuple)]
    assert bars_seen and all(value <= maximum for value, maximum in bars_seen)
    texts = [s for s in seen if isinstance(s, str)]
    assert any("lloyd" in t and " s)" in t for t in texts)


# --- 3. fits 1366 x 768 ----------------------------------------------------------------------


@pytest.mark.slow
def test_fits_a_laptop_screen_after_suggest_k_with_64_clusters(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget, area="right")
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (60, 60, 3), np.uint8)
    widget.controls.images.value = [viewer.add_image(image, name="photo", rgb=True)]
    assert not widget.controls.advanced_fold.isExpanded()  # folded by default
    assert not widget.controls.advanced.native.isVisible()
    assert widget.suggest() is not None
    wait_idle(qtbot, widget, 60_000)
    widget.controls.n_clusters.value = 64
    run_and_wait(qtbot, widget)
    qtbot.wait(100)
    assert widget.results.table.rowCount() == 64
    assert widget.height() <= 768
    buttons = [b for b in widget.findChildren(QPushButton) if b.isVisible()]
    assert {widget.run_button, widget.suggest_button} <= set(buttons)
    for button in buttons:
        text_width = button.fontMetrics().horizontalAdvance(button.text())
        assert button.height() >= button.sizeHint().height(), button.text()
        assert button.width() >= text_width, button.text()
    assert (
        widget.results.table.height()
        >= 4 * widget.results.table.verticalHeader().defaultSectionSize()
    )
    assert widget.scroll.verticalScrollBar().maximum() > 0  # the rest is a scroll away


def test_suggest_k_needs_no_matplotlib_and_follows_the_theme(
    qtbot, viewer_widget, monkeypatch, notifications
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it fails
    viewer, widget = viewer_widget
    widget.controls.images.value = [viewer.add_image(bars(), name="bars")]
    assert widget.suggest() is not None
    wait_idle(qtbot, widget, 60_000)
    assert not errors(notifications)
    assert widget.k_panel.curves.colors == theme_colors(viewer.theme)
    viewer.theme = "light"
    assert widget.k_panel.curves.colors == theme_colors("light")
    assert theme_colors("light")["text"] != theme_colors("dark")["text"]
    assert not widget.k_panel.curves.grab().toImage().isNull()


# --- 4. labels that add something ------------------------------------------------------------


def test_labels_colours_background_features_and_flip(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    image = bars()
    source = viewer.add_image(image, name="bars")
    widget.controls.images.value = [source]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    labels = viewer.layers["bars k-means labels"]
    # distinct colours by default: the first of the distinct palette, not the grey means
    distinct = distinct_colors(3)
    np.testing.assert_allclose(labels.colormap.map(np.arange(1, 4))[:, :3], distinct, atol=1e-6)
    features = labels.features
    assert features["label"].tolist() == [1, 2, 3]
    truth = np.searchsorted([10, 100, 200], image) + 1  # independent labelling
    assert features["pixels"].tolist() == np.bincount(truth.ravel())[1:].tolist()
    np.testing.assert_allclose(features["fraction"], [0.5, 0.3, 0.2])
    np.testing.assert_allclose(features["mean_grey"], [10, 100, 200])
    assert labels.get_status(labels.data_to_world([0, 6]))["coordinates"].count("100") >= 1

    widget.controls.label_colors.value = "cluster"
    grey = labels.colormap.map(3)[:3]
    np.testing.assert_allclose(grey, [200 / 255] * 3, atol=1e-6)

    widget.controls.background.value = 1
    run_and_wait(qtbot, widget)
    np.testing.assert_array_equal(labels.data, np.where(truth == 1, 0, truth))
    assert labels.features["label"].tolist() == [2, 3]

    recolored = viewer.layers["bars k-means recolored"]
    qtbot.mouseClick(widget.results.flip_button, Qt.MouseButton.LeftButton)
    assert source.visible and not labels.visible and not recolored.visible
    qtbot.mouseClick(widget.results.flip_button, Qt.MouseButton.LeftButton)
    assert labels.visible and recolored.visible


# --- 5. channels -------------------------------------------------------------------------------


def test_channel_axis_of_a_zcyx_stack(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(6)
    stack = rng.integers(0, 4000, (3, 2, 20, 25), dtype=np.uint16)
    source = viewer.add_image(stack, name="zcyx", scale=(4, 1, 0.5, 0.5))
    widget.controls.images.value = [source]
    widget.controls.channel_axis.value = 1
    assert widget.controls.method.choices == ("kmeans++",)  # two features
    assert widget.controls.color_space.native.isHidden()  # channels are not colour
    widget.controls.n_clusters.value = 4
    run_and_wait(qtbot, widget)
    labels = viewer.layers["zcyx k-means labels"]
    unticked = nk.segment(stack, 4, seed=0, channel_axis=1, standardize=False)
    np.testing.assert_array_equal(labels.data[:, 0], unticked.labels)  # channel axis kept
    np.testing.assert_allclose(
        np.asarray(labels.data_to_world([2, 0, 10, 10]))[[0, 2, 3]], [8, 5, 5]
    )
    assert list(labels.features.columns[2:4]) == ["mean_channel_0", "mean_channel_1"]


def test_rgba_layer_follows_the_alpha_rule(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 255, (20, 30, 4), dtype=np.uint8)
    widget.controls.images.value = [viewer.add_image(rgba, name="rgba", rgb=True)]
    offered = [space.name for space in color_spaces.choices(3)]  # every RGB space
    assert list(widget.controls.color_space.choices) == offered and "oklab" in offered
    widget.controls.color_space.value = "lab"
    widget.controls.n_clusters.value = 4
    run_and_wait(qtbot, widget)
    labels = viewer.layers["rgba k-means labels"]
    expected = nk.segment(rgba, 4, seed=0, color_space="lab")
    np.testing.assert_array_equal(labels.data, expected.labels)
    assert np.asarray(labels.metadata["napari_kmeans"]["palette"]).shape == (4, 3)
    recolored = viewer.layers["rgba k-means recolored"].data
    np.testing.assert_array_equal(recolored[..., 3], rgba[..., 3])  # alpha kept


# --- 6. reproducible and native --------------------------------------------------------------


@pytest.mark.slow
def test_copy_python_runs_as_is_in_the_console(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(8)
    image = rng.integers(0, 255, (30, 30, 3), np.uint8)
    widget.controls.images.value = [viewer.add_image(image, name="photo", rgb=True)]
    region = np.zeros((30, 30), np.uint8)
    region[5:25, 5:25] = 1
    widget.controls.mask.value = viewer.add_labels(region, name="region")
    widget.controls.seed.value = 3
    widget.controls.n_clusters.value = 4
    run_and_wait(qtbot, widget)
    labels = viewer.layers["photo k-means labels"]
    painted = labels.data.copy()
    qtbot.mouseClick(widget.models.copy_button, Qt.MouseButton.LeftButton)
    code = QApplication.clipboard().text()
    assert "seed=3" in code and "mask='region'" in code
    for layer in [layer for layer in viewer.layers if "k-means" in layer.name]:
        viewer.layers.remove(layer)
    exec(code, {"viewer": viewer})  # what the napari console does with a paste
    np.testing.assert_array_equal(viewer.layers["photo k-means labels"].data, painted)


def test_settings_are_remembered_and_enter_runs(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    first = KMeansWidget(viewer)
    first.controls.n_clusters.value = 7
    first.controls.tol.value = "0.001"
    first.controls.cross_check.value = True
    second = KMeansWidget(viewer)
    assert second.controls.n_clusters.value == 7
    assert second.controls.tol.value == "0.001" and second.controls.cross_check.value
    second.controls.cross_check.value = False
    viewer.window.add_dock_widget(second)
    second.controls.images.value = [viewer.add_image(bars(), name="bars")]
    second.controls.n_clusters.value = 3
    qtbot.keyClick(second.controls.n_clusters.native, Qt.Key.Key_Return)
    wait_idle(qtbot, second)
    assert "bars k-means labels" in viewer.layers


@pytest.mark.slow
def test_load_model_and_the_table_follows_the_layer_on_screen(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    a = viewer.add_image(bars(), name="a")
    b = viewer.add_image(bars()[:, ::-1].copy(), name="b")
    widget.controls.images.value = [a]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    path = widget.models.save_model(str(tmp_path / "a.json"))
    widget.models.set_model(None, "")
    assert widget.models.load(path) is not None
    assert widget.models.apply_model([b]) is not None
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(
        viewer.layers["b k-means labels"].data, viewer.layers["a k-means labels"].data[:, ::-1]
    )
    viewer.layers.selection.active = viewer.layers["a k-means labels"]
    assert "'a k-means labels'" in widget.results.title.text()
    viewer.layers.selection.active = viewer.layers["b k-means labels"]
    assert "'b k-means labels'" in widget.results.title.text()
    sg.segment_layer(viewer, b, 2)  # from the console: the table is not stale
    assert widget.results.table.rowCount() == 2
    c = viewer.add_image(bars(), name="c")
    sg.segment_layer(viewer, c, 3)
    assert "'c k-means labels'" in widget.results.title.text()


# --- 7. live preview and merging ---------------------------------------------------------------


def test_live_preview_reruns_once_after_changes(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    widget.controls.images.value = [viewer.add_image(bars(), name="bars")]
    assert not widget.controls.live.native.isHidden()  # 2-D
    widget.controls.live.value = True
    for k in (2, 3, 2, 3):
        widget.controls.n_clusters.value = k
    qtbot.waitUntil(lambda: "bars k-means labels" in viewer.layers, timeout=10_000)
    wait_idle(qtbot, widget)
    assert viewer.layers["bars k-means labels"].data.max() == 3


@pytest.mark.slow
def test_merge_clusters_from_the_table(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    widget.controls.images.value = [viewer.add_image(bars(), name="bars")]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    table = widget.results.table
    table.selectRow(1)
    model = table.selectionModel()
    model.select(table.model().index(2, 0), model.SelectionFlag.Select | model.SelectionFlag.Rows)
    qtbot.mouseClick(widget.results.merge_button, Qt.MouseButton.LeftButton)
    labels = viewer.layers["bars k-means labels"]
    truth = np.searchsorted([10, 100, 200], bars()) + 1
    np.testing.assert_array_equal(labels.data, np.minimum(truth, 2))
    merged = (100 * 12 + 200 * 8) / 20
    assert labels.features["pixels"].tolist() == [20, 20]
    np.testing.assert_allclose(labels.features["mean_grey"], [10, merged])
    recolored = viewer.layers["bars k-means recolored"].data
    assert set(np.unique(recolored[truth >= 2]).tolist()) == {round(merged)}
    assert table.rowCount() == 2


def test_every_control_explains_itself_and_no_image_is_a_hint(viewer_widget, notifications):
    viewer, widget = viewer_widget
    controls = [*widget.controls.main, *widget.controls.advanced]
    assert len(controls) >= 16
    assert all(control.tooltip for control in controls), [
        control.label for control in controls if not control.tooltip
    ]
    assert all(b.toolTip() for b in widget.findChildren(QPushButton))
    assert widget.run() is None and widget.suggest() is None
    assert not errors(notifications)
    assert any("choose an image layer" in str(n.message) for n in notifications)


@pytest.mark.slow
def test_merge_in_a_two_layer_result_recolours_each_channel(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    a = viewer.add_image(bars(), name="a")
    b = viewer.add_image(255 - bars(), name="b")
    widget.controls.images.value = [a, b]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    viewer.layers.move(viewer.layers.index("a + b k-means recolored: b"), 0)  # order is no key
    labels = viewer.layers["a + b k-means labels"]
    merge_rows = widget.results.table
    merge_rows.selectRow(0)
    model = merge_rows.selectionModel()
    model.select(
        merge_rows.model().index(1, 0), model.SelectionFlag.Select | model.SelectionFlag.Rows
    )
    qtbot.mouseClick(widget.results.merge_button, Qt.MouseButton.LeftButton)
    truth = np.searchsorted([10, 100, 200], bars()) + 1
    merged = truth <= 2
    mean_a = (10 * 20 + 100 * 12) / 32
    assert set(np.unique(viewer.layers["a + b k-means recolored: a"].data[merged])) == {
        round(mean_a)
    }
    assert set(np.unique(viewer.layers["a + b k-means recolored: b"].data[merged])) == {
        round(255 - mean_a)
    }
    # labels numbered again: every cluster's mean over channels is 127.5, so the larger
    # (merged, 32 pixels) comes first
    np.testing.assert_array_equal(labels.data, np.where(merged, 1, 2))


@pytest.mark.slow
@pytest.mark.parametrize("action", ["suggest k", "apply model"])
def test_suggest_k_and_apply_model_cancel_within_a_second(
    qtbot, viewer_widget, monkeypatch, action, notifications
):
    from napari_kmeans._napari._qt import widget as widget_module

    viewer, widget = viewer_widget
    source = viewer.add_image(bars(), name="bars")
    other = viewer.add_image(bars(), name="other")
    widget.controls.images.value = [source]
    widget.controls.n_clusters.value = 3
    if action == "suggest k":
        stage = held(monkeypatch, widget_module, "suggest_k")
        worker = widget.suggest()
    else:
        run_and_wait(qtbot, widget)
        stage = held(monkeypatch, sg, "predict_all")
        worker = widget.models.apply_model([other])
    assert worker is not None
    qtbot.waitUntil(stage.entered.is_set, timeout=120_000)
    assert not widget.tasks.isHidden()
    widget.tasks.cancel()
    wait_idle(qtbot, widget)  # the stage still runs: abandoning it (after ~1 s) frees the widget
    assert not stage.left.is_set() and widget.tasks.abandon_after <= 1.0
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        stage.release.set()  # the abandoned work ends; its result is dropped
    assert widget.k_panel.isHidden()
    assert "other k-means labels" not in viewer.layers
    assert any("cancelled" in str(n.message) for n in notifications)


def test_cancel_stops_the_cv2_cross_check_itself(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    widget.tasks.abandon_after = 3600.0  # no abandoning: the stage must stop on its own
    rng = np.random.default_rng(9)
    image = rng.integers(0, 255, (400, 400, 3), np.uint8)
    widget.controls.images.value = [viewer.add_image(image, name="noise", rgb=True)]
    widget.controls.n_clusters.value = 50
    widget.controls.tol.value = "0"
    widget.controls.cross_check.value = True
    assert widget.run() is not None
    qtbot.waitUntil(lambda: bool(opencv_processes()), timeout=120_000)
    (opencv,) = opencv_processes()
    opencv.suspend()  # frozen, cv2.kmeans cannot finish: only killing it ends the stage
    try:
        widget.tasks.cancel()
        wait_idle(qtbot, widget, 30_000)
    finally:
        if opencv.is_running():
            opencv.kill()
    assert names(viewer) == ["noise"]


def opencv_processes():
    """The cross-check's cv2.kmeans processes started by this test process."""
    found = []
    for process in psutil.Process().children():
        with contextlib.suppress(psutil.Error):  # it may end while being looked at
            if any("opencv_kmeans" in part for part in process.cmdline()):
                found.append(process)
    return found


def test_preview_of_one_plane_of_a_zcyx_stack(qtbot, viewer_widget):
    viewer, widget = viewer_widget
    rng = np.random.default_rng(10)
    stack = rng.integers(0, 4000, (3, 2, 20, 25), dtype=np.uint16)
    source = viewer.add_image(stack, name="zcyx", scale=(4, 1, 0.5, 0.5))
    widget.controls.images.value = [source]
    widget.controls.channel_axis.value = 1
    widget.controls.n_clusters.value = 3
    viewer.dims.set_point(0, 4.0)  # z = 1
    widget.controls.current_slice.value = True
    run_and_wait(qtbot, widget)
    preview = viewer.layers["zcyx k-means preview"]
    expected = nk.segment(stack[1], 3, seed=0, channel_axis=0, standardize=False).labels
    np.testing.assert_array_equal(preview.data, expected[None, None])  # z and channel: 1
    np.testing.assert_allclose(
        np.asarray(preview.data_to_world([0, 0, 0, 0]))[[0, 2, 3]], [4, 0, 0]
    )
    assert "zcyx k-means labels" not in viewer.layers  # no full result was made


def test_suggest_k_reports_progress_and_stops_for_real(qtbot, viewer_widget, monkeypatch):
    from napari_kmeans.assess import choose_k

    viewer, widget = viewer_widget
    widget.tasks.abandon_after = 3600.0  # no abandoning: suggest_k must stop on its own
    fit, fitted, second_k, cancelled = (
        choose_k._Fitter.fit,
        [],
        threading.Event(),
        threading.Event(),
    )

    def fit_once_cancelled(self, k, progress):  # the second k waits for the Cancel
        fitted.append(k)
        if len(fitted) == 2:
            second_k.set()
            cancelled.wait(120)
        return fit(self, k, progress)

    monkeypatch.setattr(choose_k._Fitter, "fit", fit_once_cancelled)
    rng = np.random.default_rng(11)
    image = rng.random((400, 400, 3), dtype=np.float32)
    widget.controls.images.value = [viewer.add_image(image, name="noise", rgb=True)]
    assert widget.suggest() is not None
    qtbot.waitUntil(second_k.is_set, timeout=120_000)
    qtbot.waitUntil(lambda: "suggest k" in widget.tasks.status.text(), timeout=10_000)
    widget.tasks.cancel()
    cancelled.set()
    wait_idle(qtbot, widget)  # only suggest_k's own stop can end the task
    assert widget.k_panel.isHidden() and widget.suggestion is None  # not run to the end


def test_cancel_of_the_exact_1d_method_on_a_float_image(qtbot, viewer_widget, notifications):
    viewer, widget = viewer_widget
    image = np.random.default_rng(12).random((1000, 1000), dtype=np.float32)
    widget.controls.images.value = [viewer.add_image(image, name="float")]
    widget.controls.method.value = "optimal"
    widget.controls.n_clusters.value = 60
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: widget.tasks.task.state[0] != "starting", timeout=120_000)
    finished = qtbot.waitSignal(worker.finished, timeout=120_000)  # connected before it ends
    widget.tasks.cancel()
    wait_idle(qtbot, widget)  # the stage stops, or is abandoned after ~1 s
    finished.wait()  # whatever the stage was, its result is dropped
    assert names(viewer) == ["float"]
    assert any("cancelled" in str(n.message) for n in notifications)


# --- 9. works as napari installs it ------------------------------------------------------------


@pytest.mark.slow
def test_every_button_works_without_the_extras(
    qtbot, viewer_widget, monkeypatch, tmp_path, notifications
):
    from qtpy.QtWidgets import QFileDialog

    for extra in ("matplotlib", "zarr", "tifffile"):  # what napari[pyqt6] does not bring
        monkeypatch.setitem(sys.modules, extra, None)
    viewer, widget = viewer_widget
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a: (str(tmp_path / a[2].split()[-1]), "")
    )
    image = np.stack([bars()] * 3, axis=-1)
    widget.controls.images.value = [viewer.add_image(image, name="bars", rgb=True)]
    viewer.add_image(image[::-1].copy(), name="other", rgb=True)
    widget.controls.n_clusters.value = 3
    click = lambda button: qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # noqa: E731
    click(widget.suggest_button)
    wait_idle(qtbot, widget, 60_000)
    click(widget.use_k_button)
    click(widget.run_button)
    wait_idle(qtbot, widget)
    results, models = widget.results, widget.models
    click(results.export_button)
    assert list(tmp_path.glob("*.csv"))
    results.table.selectRow(0)
    click(results.mask_button)
    click(results.flip_button)
    click(results.flip_button)
    click(models.save_button)
    saved = list(tmp_path.glob("*.json"))
    assert saved
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a: (str(saved[0]), ""))
    click(models.load_button)
    models.fill_apply_menu()
    next(a for a in models.apply_menu.actions() if a.text() == "other").trigger()
    wait_idle(qtbot, widget)
    click(models.copy_button)
    results.table.selectAll()
    click(results.merge_button)
    assert not errors(notifications)
    assert "other k-means labels" in viewer.layers
    # the table shows the applied layer: its code applies the loaded model
    assert "apply_model_to_layers" in QApplication.clipboard().text()


# --- 5. channels of very different ranges -------------------------------------------------------


@pytest.mark.slow
def test_standardise_channels_checkbox(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget)
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 4, (40, 50))
    small = (np.where(truth % 2, 90, 10) + rng.normal(0, 2, truth.shape)).astype(np.uint16)
    large = (np.where(truth // 2, 40_000, 20_000) + rng.normal(0, 2_000, truth.shape)).astype(
        np.uint16
    )
    a = viewer.add_image(small, name="nuclei")
    b = viewer.add_image(large, name="membrane")
    widget.controls.images.value = [a, b]
    widget.controls.n_clusters.value = 4
    assert widget.controls.standardize.tooltip
    widget.controls.advanced_fold.toggleButton().click()
    assert widget.controls.advanced_fold.isExpanded()
    widget.controls.standardize.value = True
    run_and_wait(qtbot, widget)
    labels = viewer.layers["nuclei + membrane k-means labels"]
    expected = nk.segment(np.stack([small, large], -1), 4, channel_axis=2, standardize=True, seed=0)
    np.testing.assert_array_equal(labels.data, expected.labels)
    assert labels.metadata["napari_kmeans"]["params"]["standardize"] is True
    # the table's means stay in the image's units
    np.testing.assert_allclose(labels.features["mean_nuclei"], expected.palette[:, 0])
    # Copy Python repeats it, and the choice is remembered
    qtbot.mouseClick(widget.models.copy_button, Qt.MouseButton.LeftButton)
    code = QApplication.clipboard().text()
    assert "standardize=True" in code
    viewer.layers.remove(labels)
    exec(code, {"viewer": viewer})
    np.testing.assert_array_equal(
        viewer.layers["nuclei + membrane k-means labels"].data, expected.labels
    )
    assert KMeansWidget(viewer).controls.standardize.value is True
    # Suggest k scores the same standardised features
    assert widget.suggest() is not None
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=60_000)
    stacked = np.stack([small, large], -1)
    assert widget.suggestion == nk.suggest_k(stacked, channel_axis=2, standardize=True, seed=0)
    assert widget.suggestion != nk.suggest_k(stacked, channel_axis=2, standardize=False, seed=0)


# --- merges and applied models follow through Save, Apply and Copy Python ----------------------


@pytest.mark.slow
def test_save_apply_and_copy_follow_a_merge(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    a = viewer.add_image(bars(), name="a")
    b = viewer.add_image(bars()[:, ::-1].copy(), name="b")
    widget.controls.images.value = [a]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    table = widget.results.table
    table.selectRow(0)
    selection = table.selectionModel()
    selection.select(
        table.model().index(2, 0), selection.SelectionFlag.Select | selection.SelectionFlag.Rows
    )
    qtbot.mouseClick(widget.results.merge_button, Qt.MouseButton.LeftButton)
    # hand-computed: 10 (20 px) and 200 (8 px) -> (200 + 1600) / 28; 100 stays, now brighter
    merged_mean = (10 * 20 + 200 * 8) / 28
    truth = np.searchsorted([10, 100, 200], bars()) + 1
    expected = np.where(truth == 2, 2, 1)
    labels = viewer.layers["a k-means labels"]
    np.testing.assert_array_equal(labels.data, expected)
    np.testing.assert_allclose(labels.features["mean_grey"], [merged_mean, 100])
    # Save model saves the merged model
    path = widget.models.save_model(str(tmp_path / "merged.json"))
    saved = nk.load_model(path)
    assert saved.n_clusters == 2
    np.testing.assert_allclose(saved.palette.ravel(), [merged_mean, 100])
    # Apply model applies it: b's pixels keep their clusters, merged
    assert widget.models.apply_model([b]) is not None
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["b k-means labels"].data, expected[:, ::-1])
    # Copy Python of the merged layer repeats the run and the merge
    viewer.layers.selection.active = labels
    qtbot.mouseClick(widget.models.copy_button, Qt.MouseButton.LeftButton)
    code = QApplication.clipboard().text()
    assert "n_clusters=3" in code and "merge_layer_clusters" in code
    viewer.layers.remove(labels)
    exec(code, {"viewer": viewer})
    np.testing.assert_array_equal(viewer.layers["a k-means labels"].data, expected)


@pytest.mark.slow
def test_copy_python_of_an_applied_model_loads_its_file(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    a = viewer.add_image(bars(), name="a")
    b = viewer.add_image(bars()[:, ::-1].copy(), name="b")
    widget.controls.images.value = [a]
    widget.controls.n_clusters.value = 3
    run_and_wait(qtbot, widget)
    # a model in no file: the code says what to do
    assert widget.models.apply_model([b]) is not None
    wait_idle(qtbot, widget)
    viewer.layers.selection.active = viewer.layers["b k-means labels"]
    qtbot.mouseClick(widget.models.copy_button, Qt.MouseButton.LeftButton)
    code = QApplication.clipboard().text()
    assert "segment_layer" not in code and "Save model" in code
    with pytest.raises(nk.ModelFileError):
        exec(code, {"viewer": viewer})  # 'model.json' is a placeholder to fill in
    # a model loaded from a file: the code loads it and applies it
    path = widget.models.save_model(str(tmp_path / "a model.json"))
    widget.models.set_model(None, "")
    widget.models.load(path)
    assert widget.models.apply_model([b]) is not None
    wait_idle(qtbot, widget)
    applied = viewer.layers["b k-means labels"].data.copy()
    viewer.layers.selection.active = viewer.layers["b k-means labels"]
    qtbot.mouseClick(widget.models.copy_button, Qt.MouseButton.LeftButton)
    code = QApplication.clipboard().text()
    assert repr(path) in code and "apply_model_to_layers" in code
    viewer.layers.remove("b k-means labels")
    exec(code, {"viewer": viewer})
    np.testing.assert_array_equal(viewer.layers["b k-means labels"].data, applied)
    np.testing.assert_array_equal(applied, viewer.layers["a k-means labels"].data[:, ::-1])


@pytest.mark.slow
def test_merging_an_older_result_makes_its_model_the_one_to_save(qtbot, viewer_widget, tmp_path):
    viewer, widget = viewer_widget
    a = viewer.add_image(bars(), name="a")
    b = viewer.add_image(bars()[:, ::-1].copy(), name="b")
    for layer, k in ((a, 3), (b, 2)):
        widget.controls.images.value = [layer]
        widget.controls.n_clusters.value = k
        run_and_wait(qtbot, widget)
    viewer.layers.selection.active = viewer.layers["a k-means labels"]
    widget.results.table.selectAll()
    qtbot.mouseClick(widget.results.merge_button, Qt.MouseButton.LeftButton)
    saved = nk.load_model(widget.models.save_model(str(tmp_path / "a merged.json")))
    assert saved.n_clusters == 1
    np.testing.assert_allclose(saved.palette.ravel(), [bars().mean()])
    assert widget.models.model_source == "a"
