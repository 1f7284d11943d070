"""Fitting: pixel values in, an ordered :class:`~napari_kmeans.model.kmeans_model.KMeansModel` out.

:func:`pixel_rows` turns the pixels to cluster into feature rows (compressed to distinct
values with their counts when that is exact) and the recipe that made them; :func:`fit_rows`
clusters them with the engine and orders the clusters from the darkest to the brightest.
``segment``, ``fit``, ``suggest_k`` and the dask path all fit through these two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engine import TooFewDistinctRows, kmeans
from ..engine.blocks import take_blocks
from ..engine.distances import label_sums, nearest, summarise
from ..engine.grid_rows import GridRows, materialise
from ..engine.histogram import Histogram, histogram
from ..engine.optimal1d import optimal_kmeans_1d
from ..features import color_spaces
from ..features import pixels as ft
from ..features.filtering import Filters, filtered_rows
from ..features.prepare import PreparedImage
from ..features.recipe import FeatureRecipe, compressible, divided, spread, texture_divisors
from ..features.smooth import Smoothing, resolve
from ..options import Options
from .kmeans_model import KMeansModel, dark_to_bright


@dataclass(frozen=True)
class PixelRows:
    """What k-means runs on: pixel values as rows, with weights when they are compressed.

    Attributes
    ----------
    values : numpy.ndarray
        ``(m, C)`` original values.
    weights : numpy.ndarray or None
        ``(m,)`` pixel counts; None when every row is one pixel.
    features : numpy.ndarray or GridRows
        ``(m, d)`` feature rows; with spatial features of one image, grid rows (the
        coordinates computed where the engine reads them).
    histogram : Histogram or None
        The way back to every pixel, when compressed.
    originals : numpy.ndarray or None
        ``(n, C)`` original values of every fitted pixel when ``values`` are filtered
        (smoothed) ones: the palette is their mean. None: ``values`` are the originals.

    Examples
    --------
    >>> part = (np.array([[3], [3], [9]], np.uint8), (3,), None)
    >>> rows, _ = pixel_rows([part], "rgb", 0.0, (1.0,))
    >>> rows.values.ravel().tolist(), rows.weights.tolist()
    ([3, 9], [2, 1])
    """

    values: np.ndarray  # (m, C) original values
    weights: np.ndarray | None  # (m,) pixel counts, None when every row is one pixel
    features: np.ndarray | GridRows  # (m, d)
    histogram: Histogram | None  # the way back to every pixel, when compressed
    originals: np.ndarray | None = None  # (n, C) original values when ``values`` are filtered


def pixel_rows(
    parts: Sequence[tuple[np.ndarray, tuple[int, ...], np.ndarray | None]],
    color_space: str,
    spatial_weight: float,
    spacing: tuple[float, ...] | None,
    weights: np.ndarray | None = None,
    standardize: bool = False,
    *,
    smooth: Smoothing | None = None,
    texture: float | None = None,
    textures: Sequence[np.ndarray] | None = None,
    originals: np.ndarray | None = None,
) -> tuple[PixelRows, FeatureRecipe]:
    """Return the feature rows of the pixels to cluster, and the recipe that made them.

    Pooled over ``parts`` (one per image: values, spatial shape, flat indices of the pixels
    or None) and compressed to distinct values when that is exact (see :func:`compressible`).
    ``weights`` (one part only) count each value row. With ``standardize`` each colour
    feature is divided by its :func:`spread` over these pixels, recorded in the recipe.
    With the recipe's filters (``smooth``, ``texture``), the parts' values are the filtered
    ones, ``textures`` the raw texture columns of each part and ``originals`` the pixels'
    original values (the palette's).

    Parameters
    ----------
    parts : sequence of tuple
        One ``(values, spatial_shape, pixels)`` per image: ``(m, C)`` values, the spatial
        shape and the flat indices of the pixels (None: all).
    color_space : str
        A name of the colour-space registry.
    spatial_weight : float
        Weight of the coordinates (0: colour only).
    spacing : tuple of float or None
        Pixel/voxel size per spatial axis (None: all 1).
    weights : numpy.ndarray, optional
        ``(m,)`` count of each value row (one part only).
    standardize : bool
        Divide each colour feature by its spread.
    smooth : Smoothing, optional
        The denoising the values went through, to record in the recipe.
    texture : float, optional
        The largest texture scale, to record in the recipe (``textures`` given).
    textures : sequence of numpy.ndarray, optional
        One ``(m_i, t)`` array of raw texture columns per part.
    originals : numpy.ndarray, optional
        ``(m, C)`` original values of the pixels of all parts, when the values are filtered.

    Returns
    -------
    rows : PixelRows
        The rows to cluster.
    recipe : FeatureRecipe
        How they were made, to featurise any later image the same way.

    Examples
    --------
    >>> part = (np.array([[0], [10]], np.uint8), (2,), None)
    >>> from napari_kmeans.engine.grid_rows import materialise
    >>> rows, recipe = pixel_rows([part], "rgb", 1.0, (1.0,))
    >>> materialise(rows.features).tolist(), recipe.value_range
    ([[0.0, 0.0], [10.0, 10.0]], 10.0)
    """
    values = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    spacing = (1.0,) * len(parts[0][1]) if spacing is None else spacing
    dtype = ft.feature_dtype(values.dtype)
    filters = {"smooth": smooth, "texture": texture}

    def recipe_of(*fields, texture_scale=None):
        return FeatureRecipe(*fields, **filters, texture_scale=texture_scale)

    exact = compressible(values.dtype, color_space, spatial_weight, texture)
    if exact:
        hist = histogram(values, weights, _most_distinct(len(values), weights))
        if hist is not None:
            feats = ft.color_features(hist.values, color_space, dtype)
            scale = spread(feats, hist.counts) if standardize else None
            recipe = recipe_of(color_space, 0.0, spacing, 0.0, dtype, scale)
            feats = divided(feats, scale, hist.values)
            return PixelRows(hist.values, hist.counts, feats, hist, originals), recipe
    if texture is not None:
        return _textured_rows(
            parts, values, weights, textures, originals, recipe_of,
            color_space, spatial_weight, spacing, standardize,
        )  # fmt: skip
    if spatial_weight == 0:
        feats = ft.color_features(values, color_space, dtype)
        scale = spread(feats, weights) if standardize else None
        recipe = recipe_of(color_space, 0.0, spacing, 0.0 if exact else 1.0, dtype, scale)
        return PixelRows(values, weights, divided(feats, scale, values), None, originals), recipe
    # colour then coordinates: for one image the coordinates are computed where the engine
    # reads them (GridRows), for several they are written out after the colour features
    space = color_spaces.get(color_space)
    own = space.convert is color_spaces.own_values and np.can_cast(values.dtype, dtype)
    # the pixel values themselves when they are the features: read in place, exactly
    colour = values if own else ft.color_features(values, color_space, dtype)
    scale = spread(colour, weights) if standardize else None
    if scale is not None:
        colour = divided(values.astype(dtype) if own else colour, scale, values)
    summary = summarise(colour, None)  # per column, without a strided copy
    value_range = float(np.max(summary.high.astype(dtype) - summary.low.astype(dtype)))
    recipe = recipe_of(color_space, spatial_weight, spacing, value_range or 1.0, dtype, scale)
    coordinates = (spacing, spatial_weight, recipe.value_range)
    if len(parts) == 1:
        _, shape, pixels = parts[0]
        grid = ft.spatial_rows(colour, shape, *coordinates, pixels, dtype, summary)
        return PixelRows(values, weights, grid, None, originals), recipe
    n_colour = colour.shape[1]
    feats = np.empty((len(values), n_colour + len(spacing)), dtype=dtype)
    feats[:, :n_colour] = colour
    _write_coordinates(parts, coordinates, dtype, feats[:, n_colour:])
    return PixelRows(values, weights, feats, None, originals), recipe


def _write_coordinates(parts, coordinates, dtype, out: np.ndarray) -> None:
    """Write the coordinate features of every part's pixels into ``out``, part after part."""
    start = 0
    for part_values, shape, pixels in parts:
        rows = slice(start, start + len(part_values))
        ft.coordinate_features(shape, *coordinates, pixels, dtype, out=out[rows])
        start = rows.stop


def _textured_rows(
    parts, values, weights, textures, originals, recipe_of,
    color_space, spatial_weight, spacing, standardize,
):  # fmt: skip
    """Rows of colour, texture (divided to the colour's spread) and coordinate features."""
    dtype = ft.feature_dtype(values.dtype)
    colour = ft.color_features(values, color_space, dtype)
    scale = spread(colour, weights) if standardize else None
    colour = divided(colour, scale, values)
    raw = np.concatenate(textures) if len(textures) > 1 else textures[0]
    texture_scale = texture_divisors(colour, raw, weights)
    n_colour, n_texture = colour.shape[1], raw.shape[1]
    n_coordinates = len(spacing) if spatial_weight > 0 else 0
    feats = np.empty((len(values), n_colour + n_texture + n_coordinates), dtype=dtype)
    feats[:, :n_colour] = colour
    np.divide(raw, np.asarray(texture_scale, dtype), out=feats[:, n_colour : n_colour + n_texture])
    value_range = 1.0
    if n_coordinates:
        colour_part = feats[:, : n_colour + n_texture]
        value_range = float(np.max(colour_part.max(axis=0) - colour_part.min(axis=0))) or 1.0
    recipe = recipe_of(
        color_space, spatial_weight, spacing, value_range, dtype, scale,
        texture_scale=texture_scale,
    )  # fmt: skip
    if n_coordinates:
        coordinates = (spacing, spatial_weight, value_range)
        _write_coordinates(parts, coordinates, dtype, feats[:, n_colour + n_texture :])
    return PixelRows(values, weights, feats, None, originals), recipe


# Distinct values pay when they are few: with more than a quarter of the pixels (noise, a
# 12 MP photo of 8 M colours), their table, features and lookup cost more memory and time
# than clustering every pixel (12 MP noise, k=8: +524 MiB and 7.9 s, pixel by pixel +202 MiB
# and 6.1 s).
_DISTINCT_SHARE = 4
_SMALL = 2**17  # below this many pixels either way is cheap: the exact path is kept


def _most_distinct(n_rows: int, weights: np.ndarray | None) -> int | None:
    """How many distinct values make the distinct-value path give way (None: never)."""
    if weights is not None or n_rows < _SMALL:  # merged histograms are distinct already
        return None
    return n_rows // _DISTINCT_SHARE


def prepared_rows(
    images: Sequence[PreparedImage], options: Options
) -> tuple[PixelRows, FeatureRecipe]:
    """Return the feature rows that ``segment`` and ``fit`` cluster, and their recipe.

    The one derivation of the features from prepared images and checked options, so that
    what :func:`napari_kmeans.suggest_k` scores is what the segmentation clusters.

    Parameters
    ----------
    images : sequence of PreparedImage
        The images whose pixels are pooled.
    options : Options
        Options checked against the first image (:meth:`Options.for_image`).

    Returns
    -------
    (PixelRows, FeatureRecipe)
        As :func:`pixel_rows`.

    Examples
    --------
    >>> from napari_kmeans.features.prepare import prepare_image
    >>> from napari_kmeans.options import make_options
    >>> p = prepare_image(np.array([[0, 5], [5, 9]], np.uint8), "auto", None)
    >>> rows, _ = prepared_rows([p], make_options(2, smooth=None).for_image(p.layout))
    >>> rows.features.ravel().tolist(), rows.weights.tolist()
    ([0.0, 5.0, 9.0], [1, 2, 1])
    """
    o = options
    first = images[0]
    # "auto" reads the first image's noise; every image then goes through the same filter
    smoothing = resolve(o.smooth, first.image, first.layout.axis, o.spacing)
    filters = Filters(smoothing, o.texture, o.spacing)
    filtered = [filtered_rows(filters, p.image, p.layout, p.included) for p in images]
    smoothed = smoothing is not None
    return pixel_rows(
        [
            (values if smoothed else p.values, p.layout.spatial_shape, p.included)
            for p, (values, _) in zip(images, filtered, strict=True)
        ],
        o.color_space,
        o.spatial_weight,
        o.spacing,
        standardize=o.standardize is True,  # decided by for_image
        smooth=smoothing,
        texture=o.texture,
        textures=[texture for _, texture in filtered] if o.texture is not None else None,
        originals=_concatenated([p.values for p in images]) if smoothed else None,
    )


def _concatenated(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _too_many_clusters(n_clusters: int, n_distinct: int | None, what: str) -> ValueError:
    if n_distinct is None:
        return ValueError(f"n_clusters={n_clusters} is more than the distinct {what} of this image")
    return ValueError(
        f"n_clusters={n_clusters} is more than the {n_distinct} distinct {what} of this image: "
        f"use at most {n_distinct}"
    )


def fit_rows(
    rows: PixelRows, recipe: FeatureRecipe, options: Options, n_channels: int, dtype
) -> tuple[KMeansModel, np.ndarray]:
    """Cluster the rows; return the ordered model and each row's label (1..k).

    Parameters
    ----------
    rows : PixelRows
        The rows to cluster (:func:`pixel_rows`).
    recipe : FeatureRecipe
        How they were made.
    options : Options
        The checked options (n_clusters, method, seed, iterations, callbacks).
    n_channels : int
        Channels of the fitted images (alpha apart).
    dtype : numpy.dtype
        Their dtype.

    Returns
    -------
    model : KMeansModel
        The clusters ordered darkest first (``params`` still empty).
    labels : numpy.ndarray
        Label (1..k) of each row.

    Raises
    ------
    ValueError
        When ``n_clusters`` is more than the distinct rows.

    Examples
    --------
    >>> from napari_kmeans.options import make_options
    >>> part = (np.array([[200], [0], [9]], np.uint8), (3,), None)
    >>> rows, recipe = pixel_rows([part], "rgb", 0.0, (1.0,))
    >>> model, labels = fit_rows(rows, recipe, make_options(2, seed=0), 1, np.uint8)
    >>> model.palette.ravel().tolist(), labels.tolist()
    ([4.5, 200.0], [1, 1, 2])
    """
    feats, weights = rows.features, rows.weights
    n_clusters, method = options.n_clusters, options.method
    if weights is not None:  # distinct values with their pixel counts
        what = "colours" if rows.values.shape[1] > 1 else "values"
    else:
        what = "pixels" if recipe.spatial_weight > 0 else "feature vectors"
    n_rows = feats.shape[0]
    if n_clusters > n_rows:
        raise _too_many_clusters(n_clusters, n_rows, what)
    summed = None  # the value sums, when clustering gave them
    if method == "optimal":
        feats = materialise(feats)  # one value per row: never grid rows
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
        row_labels = nearest(np.ascontiguousarray(feats).T, centers)
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

        colour = feats.values if isinstance(feats, GridRows) else feats
        if colour is rows.values and rows.originals is None and result.sums is not None:
            # the features begin with the pixel values themselves: k-means summed them
            # about the final labels as label_sums would (no pass over the rows)
            summed = result.sums[:, : colour.shape[1]], result.weights

    if rows.originals is not None:  # filtered features: the palette is of original pixels
        pixel_labels = row_labels if rows.histogram is None else rows.histogram.take(row_labels)
        summed = label_sums(rows.originals, pixel_labels, None, n_clusters)
    sums, counts = summed or label_sums(rows.values, row_labels, weights, n_clusters)
    palette = sums / counts[:, None]
    rank = dark_to_bright(palette, counts, centers)
    order = np.argsort(rank)
    model = KMeansModel(
        recipe=recipe,
        centers=centers[order],
        palette=palette[order],
        counts=counts[order].astype(np.int64),
        inertia=float(inertia),
        n_iter=int(n_iter),
        channel_axis=options.channel_axis,
        n_channels=n_channels,
        fitted_dtype=np.dtype(dtype),
    )
    return model, take_blocks((rank + 1).astype(model.label_dtype), row_labels)
