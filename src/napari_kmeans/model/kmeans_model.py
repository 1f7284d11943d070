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

from ..engine.blocks import LABEL_BLOCK_ROWS
from ..engine.distances import label_sums, nearest, own_sqdist
from ..engine.histogram import histogram
from ..features import color_spaces
from ..features import pixels as ft
from ..features.filtering import filtered_rows
from ..features.prepare import PreparedImage, is_dask_array, prepare_image
from ..features.recipe import FeatureRecipe, compressible
from ..options import check_callable
from ..outputs.cleanup import Cleanup, PixelFeatures, clean_labels
from ..outputs.recolor import recolor, spread_labels
from ..outputs.segmentation import Segmentation
from ..progress import LABELLING, ProgressCallback, report


@dataclass(frozen=True, eq=False)
class KMeansModel:
    """Ordered clusters (label 1 darkest), their feature recipe and fitting settings.

    Everything needed to label any other image the same way. Made by
    :func:`napari_kmeans.fit`, :func:`napari_kmeans.load_model` or :meth:`merge`.

    Attributes
    ----------
    recipe : FeatureRecipe
        How pixel values (and positions) become feature rows.
    centers : numpy.ndarray
        ``(k, d)`` cluster centres in feature space, darkest cluster first.
    palette : numpy.ndarray
        ``(k, C)`` mean original value of each cluster.
    counts : numpy.ndarray
        ``(k,)`` fitted pixels per cluster.
    inertia : float
        Sum of squared feature distances of the fitted pixels to their centre.
    n_iter : int
        Lloyd iterations of the best run (0 for ``method="optimal"``).
    channel_axis : "auto", "rgb", int or None
        Where the fitted images held their channels; other images are read the same way.
    n_channels : int
        Channels of the fitted images (alpha apart).
    fitted_dtype : numpy.dtype
        dtype of the fitted images.
    params : dict
        JSON-serialisable record of the fit (options, versions): a record only, nothing
        reads it back to label.
    source_centers : numpy.ndarray or None
        ``(m, d)`` the fitted centres of a merged model (m >= k), None otherwise: a merged
        model labels a pixel by its nearest fitted centre, then that centre's label.
    source_labels : numpy.ndarray or None
        ``(m,)`` label (1..k) of each fitted centre of a merged model, None otherwise.
    cleanup : Cleanup
        What ``predict`` does to the labels after the nearest centre (regularisation,
        small components); part of the recipe, as ``regularize`` and ``min_size`` in
        ``params``. ``counts``, ``palette`` and ``inertia`` stay those of the fit.

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
    channel_axis: str | int | None
    n_channels: int
    fitted_dtype: np.dtype
    params: dict = field(default_factory=dict)
    # a merged model labels a pixel by its nearest FITTED centre, then that centre's label
    source_centers: np.ndarray | None = None  # (m, d) the fitted centres, m >= k
    source_labels: np.ndarray | None = None  # (m,) label (1..k) of each fitted centre
    cleanup: Cleanup = field(default_factory=Cleanup)

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
        """Label (1..k) of each pixel: the nearest centre of its features.

        Parameters
        ----------
        values : numpy.ndarray
            ``(n, C)`` channel values of the pixels, one row per pixel.
        spatial_shape : tuple of int
            Spatial shape of the image the pixels come from.
        pixels : numpy.ndarray or None
            Flat indices of the rows in that image; None: all of them, in order.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` labels, of :attr:`label_dtype`.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> model.label(np.array([[3], [250]], np.uint8), (2,), None).tolist()
        [1, 2]
        """
        return self.assign(values, spatial_shape, pixels)[0]

    def assign(
        self,
        values: np.ndarray,
        spatial_shape: tuple[int, ...],
        pixels: np.ndarray | None,
        progress: ProgressCallback | None = None,
        texture: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Return the labels (1..k) of pixel ``values``, pixels per cluster and their inertia.

        ``pixels`` are the flat indices of the rows in an image of ``spatial_shape`` (None:
        all of them, in order). Integer values without spatial features are labelled through
        their distinct values; other pixels in blocks of ``LABEL_BLOCK_ROWS``, reporting
        progress (stage ``LABELLING``) after each: raise in ``progress`` to stop. With a
        recipe that filters (``smooth``, ``texture``), ``values`` are the filtered values and
        ``texture`` the raw texture columns (see ``features.filtering.filtered_rows``).

        Parameters
        ----------
        values : numpy.ndarray
            ``(n, C)`` channel values of the pixels, one row per pixel.
        spatial_shape : tuple of int
            Spatial shape of the image the pixels come from.
        pixels : numpy.ndarray or None
            Flat indices of the rows in that image; None: all of them, in order.
        progress : callable, optional
            ``progress(stage, done, total)``; raise in it to stop.
        texture : numpy.ndarray, optional
            ``(n, t)`` raw texture columns, when the recipe has texture features.

        Returns
        -------
        labels : numpy.ndarray
            ``(n,)`` label (1..k) of each pixel, of :attr:`label_dtype`.
        counts : numpy.ndarray
            ``(k,)`` int64 pixels per cluster.
        inertia : float
            Sum of the pixels' squared feature distances to their centre.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> labels, counts, inertia = model.assign(np.array([[3], [250]], np.uint8), (2,), None)
        >>> labels.tolist(), counts.tolist(), inertia
        ([1, 2], [1, 1], 2029.0)
        """
        n = len(values)
        report(progress, LABELLING, 0, n)
        recipe = self.recipe
        if compressible(values.dtype, recipe.color_space, recipe.spatial_weight, recipe.texture):
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
            block_texture = None if texture is None else texture[rows]
            feats = recipe.features(values[rows], spatial_shape, where, block_texture)
            labels[rows], block_counts, block_inertia = self._nearest(feats, None)
            counts += block_counts
            inertia += block_inertia
            report(progress, LABELLING, rows.stop, n)
        return labels, counts, inertia

    def _nearest(
        self, feats: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Labels (1..k) of feature rows, weighted pixels per cluster and inertia."""
        columns = np.ascontiguousarray(feats).T  # row-major, as the kernels read them
        if self.source_centers is None or self.source_labels is None:
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

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> seg = model.predict(np.array([[5, 250], [0, 0]], np.uint8))
        >>> seg.labels.tolist(), seg.counts.tolist()
        ([[1, 2], [1, 1]], [3, 1])
        """
        check_callable("progress", progress)
        if is_dask_array(image):
            from ..lazy.labels import lazy_predict

            return lazy_predict(self, image, mask)
        started = time.perf_counter()
        prepared = prepare_image(image, self.channel_axis, mask)
        self.check_fits(prepared.layout, prepared.image.dtype)
        values, texture = filtered_rows(
            self.recipe.filters, prepared.image, prepared.layout, prepared.included
        )
        labels, counts, inertia = self.assign(
            prepared.values if values is None else values,
            prepared.layout.spatial_shape,
            prepared.included,
            progress,
            texture,
        )
        return self.segmentation(
            prepared, spread_labels(prepared, labels), counts, inertia, started
        )

    def params_for(self, image, *, masked: bool) -> dict:
        """Return the model's params with what a result records of the image it labelled.

        Parameters
        ----------
        image : numpy.ndarray or dask.array.Array
            The labelled image (only its shape and dtype are read).
        masked : bool
            Whether a mask excluded pixels.

        Returns
        -------
        dict
            ``params`` plus ``masked``, ``image_shape`` and ``image_dtype``.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> p = model.params_for(np.zeros((2, 3), np.uint16), masked=False)
        >>> p["image_shape"], p["image_dtype"], p["masked"]
        ([2, 3], 'uint16', False)
        """
        return {
            **self.params,
            "masked": masked,
            "image_shape": list(image.shape),
            "image_dtype": str(image.dtype),
        }

    def segmentation(
        self,
        prepared: PreparedImage,
        flat_labels: np.ndarray,
        counts: np.ndarray,
        inertia: float,
        started: float,
    ) -> Segmentation:
        """Build the :class:`Segmentation` of a prepared image labelled by this model.

        Parameters
        ----------
        prepared : PreparedImage
            The image, as :func:`napari_kmeans.features.prepare.prepare_image` returns it.
        flat_labels : numpy.ndarray
            Label of every pixel of the image, flat (0 where excluded).
        counts : numpy.ndarray
            ``(k,)`` pixels per cluster.
        inertia : float
            Sum of the pixels' squared feature distances to their centre.
        started : float
            ``time.perf_counter()`` when the work began, for ``seconds``.

        Returns
        -------
        Segmentation
            Labels, recoloured image and this model's palette and centres.

        Examples
        --------
        >>> import time
        >>> import napari_kmeans as nk
        >>> from napari_kmeans.features.prepare import prepare_image
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> from napari_kmeans.features.prepare import prepare_image
        >>> prepared = prepare_image(np.array([[0, 250]], np.uint8), "auto", None)
        >>> flat = model.label(prepared.values, (1, 2), None)
        >>> seg = model.segmentation(prepared, flat, np.array([1, 1]), 0.0, time.perf_counter())
        >>> seg.recolored.tolist()
        [[5, 205]]
        """
        image = prepared.image
        params = self.params_for(image, masked=prepared.included is not None)
        fit_inertia, palette = inertia, self.palette
        if self.cleanup.active:
            if self.recipe.smooth is not None or self.recipe.texture is not None:
                raise ValueError(
                    f"regularize={self.cleanup.regularize!r} and min_size="
                    f"{self.cleanup.min_size!r} do not yet combine with smooth= or texture=: "
                    "pass smooth=None (and no texture) with a clean-up"
                )
            spatial_shape = prepared.table.spatial_shape
            potts = self.cleanup.regularize is not None and self.cleanup.regularize[0] == "potts"
            data = None
            if potts:
                data = self.pixel_features(
                    prepared.values,
                    spatial_shape,
                    prepared.included,
                    prepared.included,
                    len(flat_labels),
                )
            grid = clean_labels(
                flat_labels.reshape(spatial_shape), self.cleanup, self.recipe.spacing, data
            )
            cleaned = grid.reshape(-1)
            included = prepared.included
            labels = cleaned if included is None else cleaned[included]
            # labels of included pixels are >= 1: no wrap-around in their own dtype
            sums, totals = label_sums(prepared.values, labels - 1, None, self.n_clusters)
            counts = totals.astype(np.int64)
            palette = self.means(counts, sums)
            inertia += self.moved_inertia(prepared, flat_labels, cleaned)
            flat_labels = cleaned
        return Segmentation(
            labels=flat_labels.reshape(prepared.table.spatial_shape),
            palette=palette,
            recolored=recolor(
                image, prepared.table, flat_labels, palette, prepared.included is not None
            ),
            centers=self.centers,
            counts=counts,
            inertia=inertia,
            n_iter=self.n_iter,
            params=params,
            seconds=time.perf_counter() - started,
            model=self,
            fit_inertia=fit_inertia,
        )

    def pixel_features(
        self,
        values: np.ndarray,
        spatial_shape: tuple[int, ...],
        pixels: np.ndarray | None,
        included: np.ndarray | None,
        grid_size: int,
    ) -> PixelFeatures:
        """Return the features of a grid's pixels, as the label clean-up reads them.

        Parameters
        ----------
        values : numpy.ndarray
            ``(n, C)`` channel values of the included pixels.
        spatial_shape : tuple of int
            Spatial shape of the image the pixels come from (for coordinates).
        pixels : numpy.ndarray or None
            Flat indices of the rows in that image; None: all of them, in order.
        included : numpy.ndarray or None
            Flat indices of the rows in the grid being cleaned (None: all, in order).
        grid_size : int
            Pixels of that grid.

        Returns
        -------
        PixelFeatures
            Distinct-value features when exact, else one row per pixel.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> data = model.pixel_features(np.array([[3], [3], [250]], np.uint8), (3,), None, None, 3)
        >>> data.feats.ravel().tolist(), data.rows.tolist()
        ([3.0, 250.0], [0, 0, 1])
        """
        recipe = self.recipe
        if compressible(values.dtype, recipe.color_space, recipe.spatial_weight):
            hist = histogram(values)
            feats = recipe.features(hist.values, (), None)
            rows = hist.take(np.arange(len(hist.values), dtype=np.intp))
        else:
            feats = recipe.features(values, spatial_shape, pixels)
            rows = np.arange(len(values), dtype=np.intp)
        if included is not None:
            grid_rows = np.zeros(grid_size, np.intp)
            grid_rows[included] = rows
            rows = grid_rows
        if self.source_centers is None:
            centers, center_labels = self.centers, np.arange(1, self.n_clusters + 1)
        else:
            centers, center_labels = self.source_centers, self.source_labels
        fitted = float(np.sum(self.counts))
        return PixelFeatures(
            feats,
            rows,
            np.ascontiguousarray(centers, dtype=np.float64),
            np.asarray(center_labels, dtype=np.int64),
            self.inertia / fitted if fitted > 0 else 1.0,
        )

    def statistics(
        self, values: np.ndarray, labels: np.ndarray, data: PixelFeatures, grid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Return pixels per label, value sums per label and the inertia of given labels.

        Parameters
        ----------
        values : numpy.ndarray
            ``(n, C)`` channel values of the included pixels.
        labels : numpy.ndarray
            ``(n,)`` their labels (1..k).
        data : PixelFeatures
            The pixels' features (:meth:`pixel_features`).
        grid : numpy.ndarray
            Labels of the whole grid, flat (0 outside the mask).

        Returns
        -------
        counts : numpy.ndarray
            ``(k,)`` int64.
        sums : numpy.ndarray
            ``(k, C)`` float64 sums of the values.
        inertia : float
            Sum of squared feature distances to each pixel's centre.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> values = np.array([[3], [250]], np.uint8)
        >>> data = model.pixel_features(values, (2,), None, None, 2)
        >>> counts, sums, inertia = model.statistics(values, np.array([1, 1]), data,
        ...                                          np.array([1, 1]))
        >>> counts.tolist(), sums.ravel().tolist(), inertia
        ([2, 0], [253.0, 0.0], 60029.0)
        """
        from ..outputs import label_kernels  # numba loads on first use, not at import

        sums, totals = label_sums(values, labels.astype(np.intp) - 1, None, self.n_clusters)
        inertia = label_kernels.label_inertia(
            data.feats, data.rows, np.ascontiguousarray(grid), self.centers
        )
        return totals.astype(np.int64), sums, float(inertia)

    def moved_inertia(
        self, prepared: PreparedImage, before: np.ndarray, after: np.ndarray
    ) -> float:
        """Return how much the inertia grows when the labels ``before`` become ``after``.

        Only the pixels whose label changed are featurised (a clean-up moves few).

        Parameters
        ----------
        prepared : PreparedImage
            The labelled image.
        before, after : numpy.ndarray
            Labels of every pixel, flat (0 outside the mask, in both).

        Returns
        -------
        float
            Sum over the moved pixels of their squared feature distance to the new centre
            minus that to the old one.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> from napari_kmeans.features.prepare import prepare_image
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> prepared = prepare_image(np.array([[0, 250]], np.uint8), "auto", None)
        >>> model.moved_inertia(prepared, np.array([1, 2]), np.array([1, 1]))
        58000.0
        """
        moved = np.flatnonzero(before != after)
        if not len(moved):
            return 0.0
        included = prepared.included
        rows = moved if included is None else np.searchsorted(included, moved)
        spatial_shape = prepared.table.spatial_shape
        feats = self.recipe.features(prepared.values[rows], spatial_shape, moved)
        columns = np.ascontiguousarray(feats).T
        new = own_sqdist(columns, after[moved].astype(np.intp) - 1, self.centers)
        old = own_sqdist(columns, before[moved].astype(np.intp) - 1, self.centers)
        return float(new.sum() - old.sum())

    def means(self, counts: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """Mean value of each label from its count and sums; this model's palette if empty.

        Parameters
        ----------
        counts : numpy.ndarray
            ``(k,)`` pixels per label.
        sums : numpy.ndarray
            ``(k, C)`` sums of their values.

        Returns
        -------
        numpy.ndarray
            ``(k, C)`` float64.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> model.means(np.array([2, 0]), np.array([[4.0], [0.0]])).ravel().tolist()
        [2.0, 205.0]
        """
        palette = self.palette.astype(np.float64).copy()
        filled = counts > 0
        palette[filled] = sums[filled] / counts[filled, None]
        return palette

    def check_fits(self, layout: ft.ChannelLayout, dtype) -> None:
        """Raise ValueError when an image of this layout and dtype cannot use the model.

        Parameters
        ----------
        layout : ChannelLayout
            The image's channel layout (:func:`napari_kmeans.features.pixels.channel_layout`).
        dtype : numpy.dtype
            The image's dtype.

        Raises
        ------
        ValueError
            When the channels, the number of dimensions or (for a colour space whose
            features depend on the dtype's range) the dtype differ from the fitted images'.

        Examples
        --------
        >>> import napari_kmeans as nk
        >>> from napari_kmeans.features.pixels import channel_layout
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> model.check_fits(channel_layout((4, 4), "auto"), np.uint8)
        >>> model.check_fits(channel_layout((4, 4, 3), "auto"), np.uint8)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: the model was fitted on images with 1 channel(s), this image has 3 ...
        """
        if layout.n_channels != self.n_channels:
            raise ValueError(
                f"the model was fitted on images with {self.n_channels} channel(s), this image "
                f"has {layout.n_channels} (channel_axis={self.channel_axis!r})"
            )
        if len(layout.spatial_shape) != len(self.recipe.spacing):
            raise ValueError(
                f"the model was fitted on {len(self.recipe.spacing)}-D images, this image is "
                f"{len(layout.spatial_shape)}-D"
            )
        space = color_spaces.get(self.recipe.color_space)
        if not space.dtype_independent and np.dtype(dtype) != self.fitted_dtype:
            independent = [
                repr(s.name) for s in color_spaces.choices(layout.n_channels) if s.dtype_independent
            ]
            hint = (
                f"or fit with color_space={' or '.join(independent)}"
                if independent
                else f"to {self.fitted_dtype}"
            )
            raise ValueError(
                f"the model was fitted on {self.fitted_dtype} images in color_space="
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
        rank = dark_to_bright(palette, counts, centers)
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
            channel_axis=self.channel_axis,
            n_channels=self.n_channels,
            fitted_dtype=self.fitted_dtype,
            params=params,
            source_centers=fitted,
            source_labels=relabel[fitted_labels],
            cleanup=self.cleanup,
        )
        return merged, relabel

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as a small human-readable JSON file (see ``model_file``).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write; an existing file is replaced.

        Examples
        --------
        >>> import os, tempfile
        >>> import napari_kmeans as nk
        >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
        >>> model.save(path)
        >>> nk.load_model(path).palette.ravel().tolist()
        [5.0, 205.0]
        """
        from ..io.model_file import save_model

        save_model(self, path)


def _brightness(palette: np.ndarray) -> np.ndarray:
    return palette @ color_spaces.LUMA if palette.shape[1] == 3 else palette.mean(axis=1)


def dark_to_bright(palette: np.ndarray, counts: np.ndarray, centers: np.ndarray) -> np.ndarray:
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
    """Return uint8 for labels up to 255, uint16 up to 65,535, uint32 beyond.

    Parameters
    ----------
    n_clusters : int
        The largest label k.

    Returns
    -------
    numpy.dtype
        The smallest unsigned integer type that holds 0..k.

    Examples
    --------
    >>> [str(label_dtype(k)) for k in (255, 256, 65535, 65536)]
    ['uint8', 'uint16', 'uint16', 'uint32']
    """
    if n_clusters <= 255:
        return np.dtype(np.uint8)
    return np.dtype(np.uint16 if n_clusters <= 65535 else np.uint32)
