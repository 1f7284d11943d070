"""``cv2.kmeans`` on a ``.npy`` file of feature rows, run as a script in its own process.

Used by :func:`napari_kmeans.assess.cross_check`: ``cv2.kmeans`` cannot be interrupted, so it runs
here and the caller kills the process to cancel. Run by file path (not ``-m``), it imports
only NumPy and OpenCV, never the caller's main module nor this package; it sits alone in its
folder because Python puts the script's folder first on ``sys.path``, where the package's
own modules (``io``, ``options``...) would shadow others.

Usage: ``python opencv_kmeans.py FOLDER K MAX_ITER EPS SEED`` reads ``FOLDER/features.npy``
and writes ``opencv_labels.npy``, ``opencv_centers.npy`` and ``opencv_seconds.npy`` there.
"""

from __future__ import annotations

import os
import sys
import time

import cv2
import numpy as np


def run(folder: str, k: int, max_iter: int, eps: float, seed: int) -> None:
    """Cluster ``folder/features.npy`` with ``cv2.kmeans`` and save its results beside it."""
    feats = np.load(os.path.join(folder, "features.npy"))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, max_iter, eps)
    cv2.setRNGSeed(seed)
    started = time.perf_counter()
    _, labels, centers = cv2.kmeans(feats, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    seconds = time.perf_counter() - started
    np.save(os.path.join(folder, "opencv_labels.npy"), labels.reshape(-1))
    np.save(os.path.join(folder, "opencv_centers.npy"), centers)
    np.save(os.path.join(folder, "opencv_seconds.npy"), np.array(seconds))


if __name__ == "__main__":
    folder, k, max_iter, eps, seed = sys.argv[1:]
    run(folder, int(k), int(max_iter), float(eps), int(seed))
