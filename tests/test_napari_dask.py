"""Dask-backed layers stay lazy through the plugin."""

import dask.array as da
import numpy as np

import napari_kmeans as nk
from napari_kmeans._napari.segmentation import segment_layer


def test_dask_layer_gives_lazy_output_layers_equal_to_in_memory(make_napari_viewer):
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
    assert isinstance(seg.labels, da.Array)
    assert isinstance(labels.data, da.Array) and isinstance(recolored.data, da.Array)
    assert labels.data.chunks == lazy.chunks
    expected = nk.segment(volume, 4, seed=0)
    np.testing.assert_array_equal(np.asarray(labels.data), expected.labels)
    np.testing.assert_array_equal(np.asarray(recolored.data), expected.recolored)
    assert labels.metadata["napari_kmeans"]["cross_check"]["adjusted_rand_index"] == 1.0
