"""When clustering goes through an image's distinct values, and when through every pixel.

Distinct values with their counts give the same Lloyd iterations as every pixel, and pay
when they are few; an image of mostly distinct colours (noise, some photos) is clustered
pixel by pixel instead, which takes less memory and time.
"""

from __future__ import annotations

import numpy as np

import napari_kmeans as nk
from napari_kmeans.model.fitting import pixel_rows


def _rows(image: np.ndarray):
    values = image.reshape(-1, image.shape[-1])
    return pixel_rows([(values, image.shape[:-1], None)], "rgb", 0.0, (1.0, 1.0))[0]


def test_mostly_distinct_colours_are_clustered_pixel_by_pixel():
    noise = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    rows = _rows(noise)
    assert rows.histogram is None and rows.weights is None and len(rows.values) == 512 * 512
    seg = nk.segment(noise, 4, seed=0)
    # an independent check of the result: each palette row is the mean of its pixels, and
    # every pixel is nearest to its own centre
    flat, labels = noise.reshape(-1, 3).astype(np.float64), seg.labels.ravel()
    for label in range(1, 5):
        np.testing.assert_allclose(seg.palette[label - 1], flat[labels == label].mean(axis=0))
    distances = ((flat[:, None, :] - seg.centers[None]) ** 2).sum(axis=2)
    chosen = distances[np.arange(len(flat)), labels - 1]
    assert (chosen <= distances.min(axis=1) + 1e-6).all()


def test_few_distinct_colours_are_clustered_through_their_counts():
    levels = np.random.default_rng(1).integers(0, 256, (50, 3), dtype=np.uint8)
    picks = np.random.default_rng(2).integers(0, 50, (512, 512))
    image = levels[picks]
    rows = _rows(image)
    assert rows.histogram is not None and len(rows.values) == len(np.unique(levels, axis=0))
    assert rows.weights.sum() == 512 * 512
