"""Labels stored chunk by chunk equal the model's in-memory labels, filters included."""

import dask.array as da
import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans.lazy import label_store


def noisy_rgb(seed=0, shape=(3, 40, 50)):
    rng = np.random.default_rng(seed)
    truth = (np.arange(shape[-2])[:, None] // 10 + np.arange(shape[-1])[None] // 13) % 3
    colours = np.array([[30, 40, 50], [120, 80, 40], [220, 210, 190]], np.int16)
    noise = rng.normal(0, 25, (*shape, 3))
    return np.clip(colours[np.broadcast_to(truth, shape)] + noise, 0, 255).astype(np.uint8)


# a 2-D image for the filters: the dask overlap (lazy.overlap) cannot reach further than a
# short stack axis
@pytest.mark.parametrize(
    ("shape", "options"),
    [((3, 40, 50), {"smooth": None}), ((40, 50), {"smooth": 1.5}), ((40, 50), {"texture": 2.0})],
)
def test_stored_labels_equal_predict_across_chunks(shape, options, monkeypatch):
    monkeypatch.setattr(label_store, "CHUNK_PIXELS", 12 * 12)  # many chunks, each with edges
    image = noisy_rgb(shape=shape)
    model = nk.fit(image, 3, seed=0, **options)
    expected = model.predict(image)
    mask = np.ones(image.shape[:-1], bool)
    mask[..., :5] = False
    chunks = (*(1,) * (len(shape) - 2), 7, 9, 3)
    stored = label_store.store_labels(model, [da.from_array(image, chunks=chunks)])
    np.testing.assert_array_equal(stored.levels[0], expected.labels)
    assert stored.counts.tolist() == np.bincount(expected.labels.ravel())[1:].tolist()
    means = [image[expected.labels == c].mean(axis=0) for c in range(1, 4)]
    np.testing.assert_allclose(stored.means, means)
    masked = label_store.store_labels(model, [image], mask=mask)
    np.testing.assert_array_equal(masked.levels[0], model.predict(image, mask=mask).labels)


def test_zarr_pyramid_levels_take_every_other_pixel(tmp_path, monkeypatch):
    monkeypatch.setattr(label_store, "PYRAMID_SIDE", 16)
    image = noisy_rgb(shape=(2, 40, 50))
    model = nk.fit(image, 3, seed=0, smooth=None)
    stored = label_store.store_labels(model, [image], directory=tmp_path / "l.zarr", pyramid=True)
    assert [lv.shape for lv in stored.levels] == [(2, 40, 50), (2, 20, 25), (2, 10, 13)]
    full = np.asarray(stored.levels[0])
    np.testing.assert_array_equal(full, model.predict(image).labels)
    np.testing.assert_array_equal(np.asarray(stored.levels[2]), full[:, ::4, ::4])
    assert (tmp_path / "l.zarr" / "2").exists()
