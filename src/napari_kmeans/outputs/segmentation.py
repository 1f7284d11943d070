"""What a segmentation returns, and the per-image steps around the engine.

Preparing an image's pixels, and painting the palette back onto it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the model module imports this one
    from ..model.kmeans_model import KMeansModel


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The result of :func:`segment`.

    Attributes
    ----------
    labels : numpy.ndarray or dask.array.Array
        Spatial shape of the image; 1..k ordered from the darkest cluster to the brightest,
        0 only where the mask excluded the pixel. uint8 for k <= 255, uint16 for
        k <= 65,535, else uint32.
    palette : numpy.ndarray
        ``(k, C)`` float64 mean original value of each cluster, in the image's units and
        channel order (alpha excluded).
    recolored : numpy.ndarray or dask.array.Array
        Same shape and dtype as the image, every pixel replaced by its cluster's palette
        colour (rounded for integer images); alpha and excluded pixels unchanged.
    centers : numpy.ndarray
        ``(k, d)`` cluster centres in feature space (what k-means optimised).
    counts : numpy.ndarray
        ``(k,)`` pixels per cluster.
    inertia : float
        Sum over pixels of the squared feature distance to the centre of their final label
        (float64): after a clean-up (``regularize``, ``min_size``) ``labels``, ``counts``,
        ``palette``, ``recolored`` and ``inertia`` all describe the cleaned labels. For
        ``KMeansModel.predict`` on a dask array, ``counts`` and ``inertia`` are lazy dask
        arrays like ``labels`` and ``recolored``: nothing is computed until asked.
    n_iter : int
        Lloyd iterations of the best run (0 for ``method="optimal"``).
    params : dict
        JSON-serialisable parameters, including the seed actually used and versions.
    seconds : float
        Wall time of :func:`segment` or :meth:`KMeansModel.predict`.
    model : KMeansModel
        The fitted :class:`~napari_kmeans.model.kmeans_model.KMeansModel`, to apply to other images.
    fit_inertia : float or None
        The inertia of the nearest-centre labels before any clean-up (what k-means
        minimised; the fit's for :func:`segment`): ``inertia`` minus the clean-up's cost.
        Equal to ``inertia`` without a clean-up.

    Examples
    --------
    >>> from napari_kmeans import segment
    >>> seg = segment(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> seg.labels.tolist(), seg.palette.ravel().tolist(), seg.recolored.tolist()
    ([[1, 1, 2, 2]], [5.0, 205.0], [[5, 5, 205, 205]])
    >>> seg.counts.tolist(), seg.inertia, seg.n_clusters
    ([2, 2], 100.0, 2)
    """

    labels: np.ndarray
    palette: np.ndarray
    recolored: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    n_iter: int
    model: KMeansModel = field(repr=False)
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    fit_inertia: float | None = None

    @property
    def n_clusters(self) -> int:
        """Number of clusters k."""
        return len(self.counts)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable summary of the segmentation.

        Returns
        -------
        dict
            ``params``, ``palette``, ``centers``, ``counts``, ``inertia``, ``n_iter`` and
            ``seconds``; lazy (dask) counts are computed.

        Examples
        --------
        >>> from napari_kmeans import segment
        >>> seg = segment(np.array([[0, 0, 9, 9]], np.uint8), n_clusters=2, seed=0)
        >>> seg.to_dict()["counts"]
        [2, 2]
        """
        summary = {
            "params": self.params,
            "palette": self.palette.tolist(),
            "centers": self.centers.tolist(),
            "counts": np.asarray(self.counts).tolist(),  # computes lazy (dask) counts
            "inertia": float(self.inertia),
            "fit_inertia": None if self.fit_inertia is None else float(self.fit_inertia),
            "n_iter": self.n_iter,
            "seconds": self.seconds,
        }
        json.dumps(summary)  # fail here, not in the caller's file writer
        return summary
