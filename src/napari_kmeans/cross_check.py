"""Independent cross-check of a segmentation with OpenCV's ``cv2.kmeans``."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from . import features as ft
from .agreement import adjusted_rand_index, match_clusters
from .api import Segmentation


@dataclass(frozen=True)
class CrossCheck:
    """How our segmentation compares with ``cv2.kmeans`` on the same feature rows.

    Attributes
    ----------
    adjusted_rand_index : agreement of the two labelings (1.0 = the same partition).
    inertia_ratio : our inertia / OpenCV's, both recomputed in float64 (<= 1: ours is as good).
    max_center_distance : largest distance between matched centres (Hungarian matching).
    opencv_inertia : OpenCV's inertia, recomputed in float64 from its labels and centres.
    opencv_seconds, ours_seconds : wall times of ``cv2.kmeans`` and of ``segment``.
    """

    adjusted_rand_index: float
    inertia_ratio: float
    max_center_distance: float
    opencv_inertia: float
    opencv_seconds: float
    ours_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _feature_rows(image: np.ndarray, seg: Segmentation) -> tuple[np.ndarray, np.ndarray]:
    """Every clustered pixel's feature row (float32, as cv2 needs) and its label in ``seg``."""
    p = seg.params
    table = ft.pixel_table(image, p["channel_axis"])
    flat_labels = np.asarray(seg.labels).reshape(-1)  # computes lazy (dask) labels
    included = np.flatnonzero(flat_labels) if p["masked"] else None
    values = table.values if included is None else table.values[included]
    feats = ft.color_features(values, p["color_space"], np.dtype(np.float32))
    if p["spatial_weight"] > 0:
        value_range = float(np.ptp(feats, axis=0).max()) or 1.0
        coords = ft.coordinate_features(
            table.spatial_shape,
            tuple(p["spacing"]),
            p["spatial_weight"],
            value_range,
            included,
            np.dtype(np.float32),
        )
        feats = np.concatenate([feats, coords], axis=1)
    ours = flat_labels if included is None else flat_labels[included]
    return np.ascontiguousarray(feats, dtype=np.float32), ours


def _inertia(feats: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> float:
    diff = feats.astype(np.float64) - centers[labels]
    return float(np.einsum("ij,ij->", diff, diff))


def cross_check(image, seg: Segmentation, *, seed: int = 0) -> CrossCheck:
    """Run ``cv2.kmeans`` (k-means++ centres, one attempt) on the features ``seg`` was built
    from and compare.

    OpenCV stops when no centre moves more than ``sqrt(tol × mean feature variance)``, the
    counterpart of our ``tol``, or after ``max_iter`` iterations.

    Examples
    --------
    >>> from napari_kmeans import segment
    >>> img = np.repeat(np.array([[[0, 0, 0]], [[250, 240, 230]]], np.uint8), 50, axis=1)
    >>> cross_check(img, segment(img, n_clusters=2, seed=0)).adjusted_rand_index
    1.0
    """
    image = np.asarray(image)
    if seg.params.get("image_shape") != list(image.shape):
        raise ValueError(
            f"image has shape {image.shape} but seg was computed on shape "
            f"{tuple(seg.params.get('image_shape', ()))}: pass the same image"
        )
    feats, ours = _feature_rows(image, seg)
    k = seg.n_clusters
    variance = float(feats.astype(np.float64).var(axis=0).mean())
    eps = float(np.sqrt(seg.params["tol"] * variance))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, seg.params["max_iter"], eps)
    cv2.setRNGSeed(seed)
    started = time.perf_counter()
    _, cv_labels, cv_centers = cv2.kmeans(feats, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    opencv_seconds = time.perf_counter() - started
    cv_labels = cv_labels.reshape(-1)
    cv_centers = cv_centers.astype(np.float64)
    opencv_inertia = _inertia(feats, cv_labels, cv_centers)
    our_inertia = _inertia(feats, ours.astype(np.int64) - 1, seg.centers)
    distance = np.linalg.norm(seg.centers[:, None, :] - cv_centers[None, :, :], axis=2)
    match = match_clusters(distance)
    return CrossCheck(
        adjusted_rand_index=adjusted_rand_index(ours, cv_labels),
        inertia_ratio=our_inertia / opencv_inertia if opencv_inertia > 0 else 1.0,
        max_center_distance=float(distance[np.arange(k), match].max()),
        opencv_inertia=opencv_inertia,
        opencv_seconds=opencv_seconds,
        ours_seconds=seg.seconds,
    )
