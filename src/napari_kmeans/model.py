"""A fitted k-means model of pixel values: how features are made, the ordered clusters, and
how any pixel is labelled.

``segment`` fits a model on an image and labels the same image; ``fit`` + ``predict`` apply
one model to many images; the dask path fits on a histogram pooled over chunks and labels
chunk by chunk with the same model. Models are saved as small JSON files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import features as ft
from .engine import TooFewDistinctRows, kmeans
from .engine.distances import nearest, own_sqdist
from .engine.histogram import Histogram, histogram
from .engine.lloyd import IterationCallback
from .engine.optimal1d import optimal_kmeans_1d
from .result import PreparedImage, Segmentation, prepare_image, recolor, spread_labels


@dataclass(frozen=True)
class FeatureRecipe:
    """How pixel values (and positions) become feature rows.

    ``value_range`` scales the coordinates (see ``features.coordinate_features``); it is
    fixed at fitting time so that every later image is featurised the same way.
    """

    color_space: str
    spatial_weight: float
    spacing: tuple[float, ...]
    value_range: float
    dtype: np.dtype  # the feature dtype: float32 or float64

    def features(
        self, values: np.ndarray, spatial_shape: tuple[int, ...], pixels: np.ndarray | None
    ) -> np.ndarray:
        """Feature rows of pixel ``values``; ``pixels`` are their flat indices (None: all)."""
        feats = ft.color_features(values, self.color_space, self.dtype)
        if self.spatial_weight == 0:
            return feats
        coords = ft.coordinate_features(
            spatial_shape, self.spacing, self.spatial_weight, self.value_range, pixels, self.dtype
        )
        return np.concatenate([feats, coords], axis=1)


@dataclass(frozen=True, eq=False)
class KMeansModel:
    """Ordered clusters (label 1 darkest), the recipe that makes their features and the
    settings they were fitted with: everything needed to label any other image the same way.

    Examples
    --------
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> model.predict(np.array([[5, 205, 0]], np.uint8)).labels.tolist()
    [[1, 2, 1]]
    """

    recipe: FeatureRecipe
    centers: np.ndarray  # (k, d) feature space
    palette: np.ndarray  # (k, C) mean original value of each cluster
    counts: np.ndarray  # (k,) fitted pixels per cluster
    inertia: float
    n_iter: int
    params: dict = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return len(self.centers)

    @property
    def label_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.n_clusters <= 255 else np.uint16)

    def label(
        self, values: np.ndarray, spatial_shape: tuple[int, ...], pixels: np.ndarray | None
    ) -> np.ndarray:
        """Label (1..k) of each pixel: the nearest centre of its features."""
        return self.assign(values, spatial_shape, pixels)[0]

    def assign(
        self, values: np.ndarray, spatial_shape: tuple[int, ...], pixels: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Labels (1..k) of pixel ``values``, pixels per cluster and their inertia.

        Integer values without spatial features are labelled through their distinct values.
        """
        if values.dtype.kind in "ui" and self.recipe.spatial_weight == 0:
            hist = histogram(values)
            rows, weights = hist.values, hist.counts
            feats = self.recipe.features(rows, (), None)
        else:
            hist, weights = None, None
            feats = self.recipe.features(values, spatial_shape, pixels)
        columns = np.ascontiguousarray(feats.T)
        labels = nearest(columns, self.centers)
        sq = own_sqdist(columns, labels, self.centers)
        inertia = float(sq.sum() if weights is None else np.einsum("i,i->", sq, weights))
        counts = np.bincount(labels, weights, minlength=self.n_clusters).astype(np.int64)
        labels = (labels + 1).astype(self.label_dtype)
        return (labels if hist is None else hist.take(labels)), counts, inertia

    def predict(self, image, *, mask=None) -> Segmentation:
        """Label ``image`` with this model: same features, same centres, same palette.

        Returns a :class:`Segmentation` whose counts and inertia are those of ``image``.
        Raises ``ValueError`` when the image does not fit the model (channels, dtype,
        dimensions).
        """
        started = time.perf_counter()
        prepared = prepare_image(image, self.params["channel_axis"], mask)
        self._check_fits(prepared)
        labels, counts, inertia = self.assign(
            prepared.values, prepared.table.spatial_shape, prepared.included
        )
        return self.segmentation(
            prepared, spread_labels(prepared, labels), counts, inertia, started
        )

    def segmentation(
        self,
        prepared: PreparedImage,
        flat_labels: np.ndarray,
        counts: np.ndarray,
        inertia: float,
        started: float,
    ) -> Segmentation:
        """The :class:`Segmentation` of a prepared image labelled by this model."""
        image = prepared.image
        params = {
            **self.params,
            "masked": prepared.included is not None,
            "image_shape": list(image.shape),
            "image_dtype": str(image.dtype),
        }
        return Segmentation(
            labels=flat_labels.reshape(prepared.table.spatial_shape),
            palette=self.palette,
            recolored=recolor(
                image, prepared.table, flat_labels, self.palette, prepared.included is not None
            ),
            centers=self.centers,
            counts=counts,
            inertia=inertia,
            n_iter=self.n_iter,
            params=params,
            seconds=time.perf_counter() - started,
            model=self,
        )

    def _check_fits(self, prepared: PreparedImage) -> None:
        p = self.params
        n_channels = prepared.values.shape[1]
        if n_channels != p["n_channels"]:
            raise ValueError(
                f"the model was fitted on images with {p['n_channels']} channel(s), this image "
                f"has {n_channels} (channel_axis={p['channel_axis']!r})"
            )
        if len(prepared.table.spatial_shape) != len(self.recipe.spacing):
            raise ValueError(
                f"the model was fitted on {len(self.recipe.spacing)}-D images, this image is "
                f"{len(prepared.table.spatial_shape)}-D"
            )
        dtype = str(prepared.image.dtype)
        if self.recipe.color_space != "lab" and dtype != p["fitted_dtype"]:
            raise ValueError(
                f"the model was fitted on {p['fitted_dtype']} images in color_space="
                f"{self.recipe.color_space!r}, whose values mean something else in this "
                f"{dtype} image: convert the image, or fit with color_space='lab'"
            )

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as a small human-readable JSON file (see ``model_file``)."""
        from .model_file import save_model

        save_model(self, path)


@dataclass(frozen=True)
class PixelRows:
    """What k-means runs on: pixel values as rows, with weights when they are compressed."""

    values: np.ndarray  # (m, C) original values
    weights: np.ndarray | None  # (m,) pixel counts, None when every row is one pixel
    features: np.ndarray  # (m, d)
    histogram: Histogram | None  # the way back to every pixel, when compressed


def pixel_rows(
    parts: Sequence[tuple[np.ndarray, tuple[int, ...], np.ndarray | None]],
    color_space: str,
    spatial_weight: float,
    spacing: tuple[float, ...],
    weights: np.ndarray | None = None,
) -> tuple[PixelRows, FeatureRecipe]:
    """Feature rows of the pixels to cluster, pooled over ``parts`` (one per image:
    values, spatial shape, flat indices of the pixels or None) and compressed to distinct
    values when that is exact. ``weights`` (one part only) count each value row."""
    values = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    dtype = ft.feature_dtype(values.dtype)
    if values.dtype.kind in "ui" and spatial_weight == 0:
        hist = histogram(values, weights)
        recipe = FeatureRecipe(color_space, 0.0, spacing, 0.0, dtype)
        feats = recipe.features(hist.values, (), None)
        return PixelRows(hist.values, hist.counts, feats, hist), recipe
    colour = ft.color_features(values, color_space, dtype)
    value_range = float(np.ptp(colour, axis=0).max()) if spatial_weight > 0 else 0.0
    recipe = FeatureRecipe(color_space, spatial_weight, spacing, value_range or 1.0, dtype)
    if spatial_weight > 0:
        coords = [
            ft.coordinate_features(
                shape, spacing, spatial_weight, recipe.value_range, pixels, dtype
            )
            for _, shape, pixels in parts
        ]
        colour = np.concatenate([colour, np.concatenate(coords)], axis=1)
    return PixelRows(values, weights, colour, None), recipe


def _too_many_clusters(n_clusters: int, n_distinct: int, what: str) -> ValueError:
    return ValueError(
        f"n_clusters={n_clusters} is more than the {n_distinct} distinct {what} of this image: "
        f"use at most {n_distinct}"
    )


def _brightness(palette: np.ndarray) -> np.ndarray:
    return palette @ ft.LUMA if palette.shape[1] == 3 else palette.mean(axis=1)


def _dark_to_bright(palette: np.ndarray, counts: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Rank of each cluster: darkest first, ties by size (larger first), then by centre."""
    order = np.lexsort([*centers.T[::-1], -counts, _brightness(palette)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def fit_rows(
    rows: PixelRows,
    recipe: FeatureRecipe,
    n_clusters: int,
    method: str,
    n_init,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
    callback: IterationCallback | None,
) -> tuple[KMeansModel, np.ndarray]:
    """Cluster the rows; return the ordered model and each row's label (1..k)."""
    feats, weights = rows.features, rows.weights
    if weights is not None:  # distinct values with their pixel counts
        what = "colours" if rows.values.shape[1] > 1 else "values"
    else:
        what = "pixels" if recipe.spatial_weight > 0 else "feature vectors"
    if n_clusters > len(feats):
        raise _too_many_clusters(n_clusters, len(feats), what)
    if method == "optimal":
        distinct, inverse = np.unique(feats[:, 0], return_inverse=True)
        inverse = inverse.reshape(-1)
        if n_clusters > len(distinct):
            raise _too_many_clusters(n_clusters, len(distinct), "feature values")
        distinct_weights = np.bincount(inverse, weights=weights, minlength=len(distinct))
        centers_1d, _, inertia = optimal_kmeans_1d(distinct, distinct_weights, n_clusters)
        centers, n_iter = centers_1d[:, None], 0
        # nearest centre, as for any later image (a value midway between two centres could
        # sit in either run of the optimum; both give the same inertia)
        row_labels = nearest(np.ascontiguousarray(feats.T), centers)
    else:
        try:
            result = kmeans(
                feats,
                n_clusters,
                sample_weight=weights,
                n_init=n_init,
                max_iter=max_iter,
                tol=tol,
                seed=rng,
                callback=callback,
            )
        except TooFewDistinctRows as err:
            raise _too_many_clusters(n_clusters, err.n_distinct, "feature vectors") from None
        centers, row_labels = result.centers, result.labels
        inertia, n_iter = result.inertia, result.n_iter

    row_weights = np.ones(len(feats)) if weights is None else weights.astype(np.float64)
    counts = np.bincount(row_labels, weights=row_weights, minlength=n_clusters)
    sums = [
        np.bincount(row_labels, weights=row_weights * rows.values[:, j], minlength=n_clusters)
        for j in range(rows.values.shape[1])
    ]
    palette = np.stack(sums, axis=1) / counts[:, None]
    rank = _dark_to_bright(palette, counts, centers)
    order = np.argsort(rank)
    model = KMeansModel(
        recipe=recipe,
        centers=centers[order],
        palette=palette[order],
        counts=counts[order].astype(np.int64),
        inertia=float(inertia),
        n_iter=int(n_iter),
    )
    return model, (rank + 1).astype(model.label_dtype)[row_labels]
