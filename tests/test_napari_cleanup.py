"""The widget's "Clean up labels" controls, in a real viewer (Xvfb)."""

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


def noisy_square():
    rng = np.random.default_rng(0)
    truth = np.zeros((48, 48), np.uint8)
    truth[12:36, 12:36] = 1
    return (truth * 100 + 50 + rng.normal(0, 45, truth.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("choice", "beta", "min_size", "regularize"),
    [
        ("majority vote 3×3", 1.0, 0, "majority"),
        ("Potts smoothing (β)", 2.5, 6, ("potts", 2.5)),
        ("off", 1.0, 6, None),
    ],
)
def test_clean_up_controls_give_the_api_result(
    qtbot, make_napari_viewer, choice, beta, min_size, regularize
):
    viewer = make_napari_viewer()
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget)
    data = noisy_square()
    source = viewer.add_image(data, name="square")
    controls = widget.controls
    controls.images.value = [source]
    controls.n_clusters.value = 2
    controls.seed.value = 3
    # visible without unfolding the advanced options
    assert controls.clean_up.native.isVisibleTo(widget)
    assert controls.min_size.native.isVisibleTo(widget)
    controls.denoise.value = "off"  # the clean-up does not yet combine with smoothing
    controls.clean_up.value = choice
    assert controls.potts_beta.native.isVisibleTo(widget) == (
        regularize is not None and regularize[0] == "potts"
    )
    controls.potts_beta.value = beta
    controls.min_size.value = min_size
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=60_000)
    expected = nk.segment(
        data,
        2,
        seed=3,
        regularize=regularize,
        min_size=min_size or None,
        channel_axis=None,
        smooth=None,
    )
    labels = viewer.layers["square k-means labels"]
    np.testing.assert_array_equal(labels.data, expected.labels)
    assert widget.segmentation.params["regularize"] == (
        None if regularize is None else list(nk.options.check_regularize(regularize))
    )
    np.testing.assert_array_equal(source.data, data)  # the user's layer is untouched
