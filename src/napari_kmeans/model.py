"""A fitted k-means model of pixel values: features, ordered clusters, labelling.

The model holds how features are made, the ordered clusters, and how any pixel is labelled.

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

from . import color_spaces
from . import features as ft
from .engine import TooFewDistinctRows, kmeans
from .engine.blocks import map_blocks
from .engine.distances import nearest, own_sqdist
from .engine.histogram import Histogram, histogram
from .engine.optimal1d import optimal_kmeans_1d
from .options import Options, check_callable
from .progress import LABELLING, ProgressCallback, report
from .result import (
    PreparedImage,
    Segmentation,
    is_dask_array,
    prepare_image,
    recolor,
    spread_labels,
)

# Pixels labelled per block when every pixel is its own row (progress and memory step).
LABEL_BLOCK_ROWS = 1 << 18


def compressible(dtype: np.dtype, color_space: str, spatial_weight: float) -> bool:
    """Whether pixels can be clustered (and labelled) through their distinct values.

    Exact for integer images whose features depend on the pixel value alone.
    """
    space = color_spaces.get(color_space)
    return np.dtype(dtype).kind in "ui" and spatial_weight == 0 and space.histogram


@dataclass(frozen=True)
class FeatureRecipe:
    """How pixel values (and positions) become feature rows.

    ``value_range`` scales the coordinates (see ``features.coordinate_features``) and
    ``scale`` (``standardize=True``) divides each colour feature by its spread; both are
    measured at fitting time, so that every later image is featurised the same way.
    """

    color_space: str
    spatial_weight: float
    spacing: tuple[float, ...]
    value_range: float
    dtype: np.dtype  # the feature dtype: float32 or float64
    scale: tuple[float, ...] | None = None  # divisor of each colour feature, None: none

    def color(self, values: np.ndarray) -> np.ndarray:
        """Colour feature rows of pixel ``values`` (divided by ``scale`` when standardised)."""
        feats = ft.color_features(values, self.color_space, self.dtype)
        return _divided(feats, self.scale, values)

    def features(
        self, values: np.ndarray, spatial_shape: tuple[int, ...], pixels: np.ndarray | None
    ) -> np.ndarray:
        """Feature rows of pixel ``values``; ``pixels`` are their flat indices (None: all)."""
        feats = self.color(values)
        if self.spatial_weight == 0:
            return feats
        coords = ft.coordinate_features(
            spatial_shape, self.spacing, self.spatial_weight, self.value_range, pixels, self.dtype
        )
        return np.concatenate([feats, coords], axis=1)


def _divided(feats: np.ndarray, scale: tuple[float, ...] | None, values: np.ndarray):
    """``feats / scale``, in place unless ``feats`` may be the caller's ``values``."""
    if scale is None:
        return feats
    divisors = np.asarray(scale, dtype=feats.dtype)
    if np.may_share_memory(feats, values):
        return feats / divisors
    feats /= divisors
    return feats


def spread(feats: np.ndarray, weights: np.ndarray | None) -> tuple[float, ...]:
    """Return the standard deviation of each feature column (rows weighted), 1.0 if constant.

    Summed in float64 block by block, shifted by the first row: no temporary grows with the
    rows.

    Examples
    --------
    >>> spread(np.array([[0.0, 5.0], [2.0, 5.0]]), None)
    (1.0, 1.0)
    >>> spread(np.array([[0.0], [4.0]]), np.array([3, 1]))
    (1.7320508075688772,)
    """
    shift = feats[0].astype(np.float64)

    def block(rows: slice):
        centred = feats[rows].astype(np.float64) - shift
        w = np.ones(len(centred)) if weights is None else weights[rows].astype(np.float64)
        return w.sum(), w @ centred, w @ (centred * centred)

    parts = map_blocks(block, len(feats))
    total = sum(p[0] for p in parts)
    mean = sum(p[1] for p in parts) / total
    variance = np.maximum(sum(p[2] for p in parts) / total - mean * mean, 0.0)
    deviation = np.sqrt(variance)
    return tuple(float(d) if d > 0 else 1.0 for d in deviation)


@dataclass(frozen=True, eq=False)
class KMeansModel:
    """Ordered clusters (label 1 darkest), their feature recipe and fitting settings.

    Everything needed to label any other image the same way.

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
    # a merged model labels a pixel by its nearest FITTED centre, then that centre's label
    source_centers: np.ndarray | None = None  # (m, d) the fitted centres, m >= k
    source_labels: np.ndarray | None = None  # (m,) label (1..k) of each fitted centre

    @property
    def n_clusters(self) -> int:
        """Number of clusters k."""
        return len(self.centers)

    @property
    def label_dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every label 0..k."""
        return label_dtype(self.n_clusters)

    def label(
        self, values: np.ndarray, spatial_shape: tuple[int, ...], pixels: np.ndarray | None
    ) -> np.ndarray:
        """Label (1..k) of each pixel: the nearest centre of its features."""
        return self.assign(values, spatial_shape, pixels)[0]

    def assign(
        self,
        values: np.ndarray,
        spatial_shape: tuple[int, ...],
        pixels: np.ndarray | None,
        progress: ProgressCallback | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Labels (1..k) of pixel ``values``, pixels per cluster and their inertia.

        ``pixels`` are the flat indices of the rows in an image of ``spatial_shape`` (None:
        all of them, in order). Integer values without spatial features are labelled through
        their distinct values; other pixels in blocks of ``LABEL_BLOCK_ROWS``, reporting
        progress (stage ``LABELLING``) after each: raise in ``progress`` to stop.
        """
        n = len(values)
        report(progress, LABELLING, 0, n)
        recipe = self.recipe
        if compressible(values.dtype, recipe.color_space, recipe.spatial_weight):
            hist = histogram(values)
            labels, counts, inertia = self._nearest(
                recipe.features(hist.values, (), None), hist.counts
            )
            labels = hist.take(labels)
            report(progress, LABELLING, n, n)
            return labels, counts, inertia
        labels = np.empty(n, dtype=self.label_dtype)
        counts = np.zeros(self.n_clusters, dtype=np.int64)
        inertia = 0.0
        for start in range(0, n, LABEL_BLOCK_ROWS):
            rows = slice(start, min(start + LABEL_BLOCK_ROWS, n))
            where = np.arange(rows.start, rows.stop) if pixels is None else pixels[rows]
            feats = recipe.features(values[rows], spatial_shape, where)
            labels[rows], block_counts, block_inertia = self._nearest(feats, None)
            counts += block_counts
            inertia += block_inertia
            report(progress, LABELLING, rows.stop, n)
        return labels, counts, inertia

    def _nearest(
        self, feats: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Labels (1..k) of feature rows, weighted pixels per cluster and inertia."""
        columns = np.ascontiguousarray(feats.T)
        if self.source_centers is None:
            labels = nearest(columns, self.centers)
        else:
            nearest_source = nearest(columns, self.source_centers)
            labels = (self.source_labels.astype(np.intp) - 1)[nearest_source]
        sq = own_sqdist(columns, labels, self.centers)
        inertia = float(sq.sum() if weights is None else np.einsum("i,i->", sq, weights))
        counts = np.bincount(labels, weights, minlength=self.n_clusters).astype(np.int64)
        return (labels + 1).astype(self.label_dtype), counts, inertia

    def predict(
        self, image, *, mask=None, progress: ProgressCallback | None = None
    ) -> Segmentation:
        """Label ``image`` with this model: same features, same centres, same palette.

        Parameters
        ----------
        image : array
            NumPy or dask array laid out as the fitted images (channels, dimensions).
        mask : array, optional
            Spatial shape; non-zero pixels are labelled, the others get label 0.
        progress : callable, optional
            ``progress(stage, done, total)`` while labelling; raise in it to stop.

        Returns
        -------
        Segmentation
            Counts and inertia are those of ``image``. For a dask ``image``, ``labels``,
            ``recolored``, ``counts`` and ``inertia`` are lazy dask arrays: nothing is
            computed until asked.

        Raises
        ------
        ValueError
            When the image does not fit the model (channels, dtype, dimensions).
        """
        check_callable("progress", progress)
        if is_dask_array(image):
            from .lazy_labels import lazy_predict

            return lazy_predict(self, image, mask)
        started = time.perf_counter()
        prepared = prepare_image(image, self.params["channel_axis"], mask)
        self.check_fits(prepared.layout, prepared.image.dtype)
        labels, counts, inertia = self.assign(
            prepared.values, prepared.layout.spatial_shape, prepared.included, progress
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
        """Build the :class:`Segmentation` of a prepared image labelled by this model."""
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

    def check_fits(self, layout: ft.ChannelLayout, dtype) -> None:
        """Raise ValueError when an image of this layout and dtype cannot use the model."""
        p = self.params
        if layout.n_channels != p["n_channels"]:
            raise ValueError(
                f"the model was fitted on images with {p['n_channels']} channel(s), this image "
                f"has {layout.n_channels} (channel_axis={p['channel_axis']!r})"
            )
        if len(layout.spatial_shape) != len(self.recipe.spacing):
            raise ValueError(
                f"the model was fitted on {len(self.recipe.spacing)}-D images, this image is "
                f"{len(layout.spatial_shape)}-D"
            )
        space = color_spaces.get(self.recipe.color_space)
        if not space.dtype_independent and str(np.dtype(dtype)) != p["fitted_dtype"]:
            independent = [
                repr(s.name) for s in color_spaces.choices(layout.n_channels) if s.dtype_independent
            ]
            hint = (
                f"or fit with color_space={' or '.join(independent)}"
                if independent
                else f"to {p['fitted_dtype']}"
            )
            raise ValueError(
                f"the model was fitted on {p['fitted_dtype']} images in color_space="
                f"{self.recipe.color_space!r}, whose values mean something else in this "
                f"{np.dtype(dtype)} image: convert the image, {hint}"
            )

    def merge(self, groups: Sequence[Sequence[int]]) -> tuple[KMeansModel, np.ndarray]:
        """Merge clusters: the labels of each group become one cluster.

        A pixel keeps the cluster it had, under its new label: the merged model labels a
        pixel by its nearest fitted centre, as before, then gives it that centre's new label
        (a merged cluster need not be convex). A merged cluster's centre and palette are the
        pixel-weighted means of its members', its count their sum; the inertia (distances to
        the merged centres) grows by each member's count times its squared distance to the
        merged centre (exact when centres are their pixels' means, as after Lloyd
        converged). Labels are numbered darkest first again, as for any model.

        Parameters
        ----------
        groups : sequence of sequences of int
            Disjoint groups of labels (1..k), e.g. ``[[2, 3]]``.

        Returns
        -------
        model : KMeansModel
            The merged model; ``params["n_clusters"]`` is its k and ``params["merged"]``
            lists the groups of every merge so far (each in the labels it was given).
        relabel : numpy.ndarray
            ``(k + 1,)`` new label of each old one (0 stays 0): ``relabel[seg.labels]``.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> img = np.array([[10, 10, 10, 100, 100, 200]], np.uint8)
        >>> merged, relabel = nk.fit(img, 3, seed=0).merge([[2, 3]])
        >>> merged.palette.ravel().tolist(), merged.counts.tolist(), relabel.tolist()
        ([10.0, 133.33333333333334], [3, 3], [0, 1, 2, 2])
        >>> merged.predict(img).labels.tolist()
        [[1, 1, 1, 2, 2, 2]]
        """
        k = self.n_clusters
        chosen = _check_groups(groups, k)
        group_of = np.arange(k)
        for group in chosen:
            group_of[np.asarray(group) - 1] = group[0] - 1
        members, group_of = np.unique(group_of, return_inverse=True)
        weights = self.counts.astype(np.float64)
        totals = np.bincount(group_of, weights, minlength=len(members))
        # an empty group (no fitted pixel) takes its members' plain mean
        weights = np.where(totals[group_of] > 0, weights, 1.0)
        totals = np.bincount(group_of, weights, minlength=len(members))

        def pooled(rows: np.ndarray) -> np.ndarray:
            sums = np.stack(
                [np.bincount(group_of, weights * column, len(members)) for column in rows.T],
                axis=1,
            )
            return sums / totals[:, None]

        centers, palette = pooled(self.centers), pooled(self.palette)
        counts = np.bincount(group_of, self.counts, minlength=len(members)).astype(np.int64)
        moved = np.sum((self.centers - centers[group_of]) ** 2, axis=1)  # to the merged centre
        inertia = self.inertia + float(self.counts.astype(np.float64) @ moved)
        rank = _dark_to_bright(palette, counts, centers)
        order = np.argsort(rank)
        params = {
            **self.params,
            "n_clusters": len(members),
            "merged": [*self.params.get("merged", []), *([chosen] if chosen else [])],
        }
        relabel = np.concatenate([[0], rank[group_of] + 1]).astype(label_dtype(len(members)))
        fitted = self.centers if self.source_centers is None else self.source_centers
        fitted_labels = np.arange(1, k + 1) if self.source_labels is None else self.source_labels
        merged = KMeansModel(
            recipe=self.recipe,
            centers=centers[order],
            palette=palette[order],
            counts=counts[order],
            inertia=inertia,
            n_iter=self.n_iter,
            params=params,
            source_centers=fitted,
            source_labels=relabel[fitted_labels],
        )
        return merged, relabel

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
    standardize: bool = False,
) -> tuple[PixelRows, FeatureRecipe]:
    """Feature rows of the pixels to cluster, and the recipe that made them.

    Pooled over ``parts`` (one per image: values, spatial shape, flat indices of the pixels
    or None) and compressed to distinct values when that is exact (see :func:`compressible`).
    ``weights`` (one part only) count each value row. With ``standardize`` each colour
    feature is divided by its :func:`spread` over these pixels, recorded in the recipe.
    """
    values = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    dtype = ft.feature_dtype(values.dtype)
    if compressible(values.dtype, color_space, spatial_weight):
        hist = histogram(values, weights)
        feats = ft.color_features(hist.values, color_space, dtype)
        scale = spread(feats, hist.counts) if standardize else None
        recipe = FeatureRecipe(color_space, 0.0, spacing, 0.0, dtype, scale)
        return PixelRows(
            hist.values, hist.counts, _divided(feats, scale, hist.values), hist
        ), recipe
    if spatial_weight == 0:
        feats = ft.color_features(values, color_space, dtype)
        scale = spread(feats, weights) if standardize else None
        recipe = FeatureRecipe(color_space, 0.0, spacing, 1.0, dtype, scale)
        return PixelRows(values, weights, _divided(feats, scale, values), None), recipe
    # colour then coordinates, written block by block into one array
    n_colour = color_spaces.get(color_space).n_features(values.shape[1])
    feats = np.empty((len(values), n_colour + len(spacing)), dtype=dtype)
    colour = feats[:, :n_colour]
    ft.color_features(values, color_space, dtype, out=colour)
    scale = spread(colour, weights) if standardize else None
    _divided(colour, scale, values)
    value_range = float(np.max(colour.max(axis=0) - colour.min(axis=0)))
    recipe = FeatureRecipe(color_space, spatial_weight, spacing, value_range or 1.0, dtype, scale)
    start = 0
    for part_values, shape, pixels in parts:
        rows = slice(start, start + len(part_values))
        ft.coordinate_features(
            shape,
            spacing,
            spatial_weight,
            recipe.value_range,
            pixels,
            dtype,
            out=feats[rows, n_colour:],
        )
        start = rows.stop
    return PixelRows(values, weights, feats, None), recipe


def _too_many_clusters(n_clusters: int, n_distinct: int, what: str) -> ValueError:
    return ValueError(
        f"n_clusters={n_clusters} is more than the {n_distinct} distinct {what} of this image: "
        f"use at most {n_distinct}"
    )


def _brightness(palette: np.ndarray) -> np.ndarray:
    return palette @ color_spaces.LUMA if palette.shape[1] == 3 else palette.mean(axis=1)


def _dark_to_bright(palette: np.ndarray, counts: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Rank of each cluster: darkest first, ties by size (larger first), then by centre."""
    order = np.lexsort([*centers.T[::-1], -counts, _brightness(palette)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _check_groups(groups, n_clusters: int) -> list[list[int]]:
    """Return the groups of two or more labels, sorted; ValueError unless disjoint, 1..k."""
    message = (
        f"groups={groups!r} is not allowed: give disjoint groups of labels from 1 to "
        f"{n_clusters}, e.g. [[2, 3]]"
    )
    try:
        chosen = [sorted({int(label) for label in group}) for group in groups]
        exact = all(
            label == int(label) and not isinstance(label, bool)
            for group in groups
            for label in group
        )
    except (TypeError, ValueError):
        raise ValueError(message) from None
    labels = [label for group in chosen for label in group]
    if not exact or not chosen or len(set(labels)) != len(labels):
        raise ValueError(message)
    if not all(1 <= label <= n_clusters for label in labels):
        raise ValueError(message)
    return [group for group in chosen if len(group) > 1]


def label_dtype(n_clusters: int) -> np.dtype:
    """uint8 for labels up to 255, uint16 up to 65,535, uint32 beyond.

    Examples
    --------
    >>> [str(label_dtype(k)) for k in (255, 256, 65535, 65536)]
    ['uint8', 'uint16', 'uint16', 'uint32']
    """
    if n_clusters <= 255:
        return np.dtype(np.uint8)
    return np.dtype(np.uint16 if n_clusters <= 65535 else np.uint32)


def fit_rows(
    rows: PixelRows, recipe: FeatureRecipe, options: Options
) -> tuple[KMeansModel, np.ndarray]:
    """Cluster the rows; return the ordered model and each row's label (1..k)."""
    feats, weights = rows.features, rows.weights
    n_clusters, method = options.n_clusters, options.method
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
        centers_1d, _, inertia = optimal_kmeans_1d(
            distinct, distinct_weights, n_clusters, progress=options.progress
        )
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
                n_init=options.n_init,
                max_iter=options.max_iter,
                tol=options.tol,
                seed=options.rng,
                callback=options.callback,
                progress=options.progress,
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
