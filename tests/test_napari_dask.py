"""Dask-backed layers: labelled once in the worker, never by napari's slicing."""

import dask.array as da
import numpy as np

import napari_kmeans as nk
from napari_kmeans._napari.segmentation import segment_layer


def test_dask_layer_gives_stored_output_layers_equal_to_in_memory(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 4, (6, 40, 50)).astype(np.uint16) * 15000 + rng.integers(
        0, 500, (6, 40, 50), dtype=np.uint16
    )
    lazy = da.from_array(volume, chunks=(2, 20, 25))
    viewer.add_image(lazy, name="stack")
    seg = segment_layer(viewer, "stack", n_clusters=4, seed=0, cross_check=True)
    labels = viewer.layers["stack k-means labels"]
    recolored = viewer.layers["stack k-means recolored"]
    # small results are stored in memory: napari reads them, nothing recomputes them
    assert isinstance(labels.data, np.ndarray) and isinstance(recolored.data, np.ndarray)
    assert seg.labels is labels.data
    expected = nk.segment(volume, 4, seed=0)
    np.testing.assert_array_equal(np.asarray(labels.data), expected.labels)
    np.testing.assert_array_equal(np.asarray(recolored.data), expected.recolored)
    assert labels.metadata["napari_kmeans"]["cross_check"]["adjusted_rand_index"] == 1.0


def test_widget_on_a_dask_layer_stores_the_outputs(make_napari_viewer, qtbot, tmp_path):
    from qtpy.QtCore import QSettings

    from napari_kmeans._napari._qt.widget import KMeansWidget

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    viewer = make_napari_viewer()
    widget = KMeansWidget(viewer)
    viewer.window.add_dock_widget(widget)
    volume = np.repeat(np.array([100, 20000, 50000], np.uint16), [40, 30, 30])
    volume = np.broadcast_to(volume, (4, 50, 100)).copy()
    lazy = da.from_array(volume, chunks=(2, 25, 50))
    widget.controls.images.value = [viewer.add_image(lazy, name="stack")]
    widget.controls.n_clusters.value = 3
    widget.controls.background.value = 1
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.tasks.running, timeout=60_000)
    labels = viewer.layers["stack k-means labels"]
    assert isinstance(labels.data, np.ndarray)
    truth = np.searchsorted([100, 20000, 50000], volume) + 1
    np.testing.assert_array_equal(np.asarray(labels.data), np.where(truth == 1, 0, truth))
    assert labels.features["pixels"].tolist() == [6000, 6000]
    assert widget.results.table.rowCount() == 2


def test_apply_model_to_a_dask_layer_stores_its_labels(make_napari_viewer):
    from napari_kmeans._napari.segmentation import apply_model

    viewer = make_napari_viewer()
    levels = np.array([100, 20000, 50000], np.uint16)
    volume = levels[np.random.default_rng(1).integers(0, 3, (4, 30, 40))]
    viewer.add_image(da.from_array(volume, chunks=(2, 15, 20)), name="lazy")
    model = nk.fit(levels[np.arange(30) % 3].reshape(2, 3, 5), 3, seed=0)
    (seg,) = apply_model(viewer, "lazy", model)
    labels = viewer.layers["lazy k-means labels"]
    assert isinstance(labels.data, np.ndarray)
    np.testing.assert_array_equal(np.asarray(labels.data), np.searchsorted(levels, volume) + 1)
    expected = np.bincount(np.searchsorted(levels, volume).ravel(), minlength=3)
    assert labels.features["pixels"].tolist() == expected.tolist()
