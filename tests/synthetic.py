"""Synthetic images with known classes, shared by the tests."""

import numpy as np


def phase_image(rng, shape, levels, noise, dtype=np.uint8):
    """Pixels of one of ``levels`` (rows: channel values) plus Gaussian noise, channels last;
    returns the image and the true class of every pixel."""
    levels = np.asarray(levels, float)
    truth = rng.integers(0, len(levels), shape)
    img = levels[truth] + rng.normal(0, noise, (*shape, levels.shape[1]))
    if np.dtype(dtype).kind in "ui":
        img = np.clip(np.rint(img), 0, np.iinfo(dtype).max)
    img = img.astype(dtype)
    return (img[..., 0] if levels.shape[1] == 1 else img), truth
