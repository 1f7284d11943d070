"""The widget's Denoise and texture controls drive the call (Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QSettings

import napari_kmeans as nk
from napari_kmeans._napari._qt.widget import KMeansWidget

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def own_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))


def noisy_square() -> np.ndarray:
    rng = np.random.default_rng(0)
    truth = np.zeros((48, 56), int)
    truth[12:36, 14:42] = 1
    return np.clip(np.rint(60 + 40 * truth + rng.normal(0, 25, truth.shape)), 0, 255).astype(
        np.uint8
    )


def run(qtbot, widget):
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=60_000)


def test_denoise_control_is_visible_and_drives_the_call(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget)
    image = noisy_square()
    layer = viewer.add_image(image, name="cells")
    controls = widget.controls
    controls.images.value = [layer]
    controls.n_clusters.value = 2
    # in the main controls, not the folded advanced ones; auto by default
    assert controls.denoise in list(controls.main)
    assert controls.denoise.value == "auto"
    assert controls.denoise_size.native.isHidden()
    run(qtbot, widget)
    labels = viewer.layers["cells k-means labels"]
    expected = nk.segment(image, 2, seed=0, smooth="auto")
    np.testing.assert_array_equal(labels.data, expected.labels)
    assert labels.metadata["napari_kmeans"]["params"]["smoothing"] == expected.params["smoothing"]

    controls.denoise.value = "median"
    assert not controls.denoise_size.native.isHidden()
    controls.denoise_size.value = 2.0
    run(qtbot, widget)
    expected = nk.segment(image, 2, seed=0, smooth=("median", 2.0))
    labels = viewer.layers["cells k-means labels"]
    np.testing.assert_array_equal(labels.data, expected.labels)
    assert labels.metadata["napari_kmeans"]["params"]["smoothing"] == {
        "kind": "median",
        "size": 2.0,
    }

    controls.denoise.value = "off"
    controls.advanced_fold.toggleButton().click()
    controls.texture.value = True
    assert not controls.texture_scale.native.isHidden()
    controls.texture_scale.value = 4
    run(qtbot, widget)
    expected = nk.segment(image, 2, seed=0, smooth=None, texture=4)
    np.testing.assert_array_equal(viewer.layers["cells k-means labels"].data, expected.labels)
    # remembered for the next session
    again = KMeansWidget(viewer).controls
    assert again.denoise.value == "off" and again.texture.value is True
