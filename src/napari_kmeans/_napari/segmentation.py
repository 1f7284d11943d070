"""Layers in, layers out: the napari side of a segmentation.

The widget and :func:`segment_layer` share these steps, so both give the same layers:

1. :func:`prepare` reads the chosen layers into arrays (:mod:`.inputs`) and checks them;
2. :meth:`SegmentationJob.run` calls :func:`napari_kmeans.segment` (in a worker thread for
   the widget, or with ``blocking=False``), reporting ``progress(stage, done, total)``;
3. :func:`~napari_kmeans._napari.outputs.show` turns the result into layers (:mod:`.outputs`).

Lazy (dask, Zarr) and multiscale layers are fitted (a multiscale layer on its finest level
of at most ``FIT_PIXELS`` pixels), then labelled once, still in the worker, into a store
(:mod:`napari_kmeans.lazy.label_store`): memory for small results, a Zarr pyramid in the
session's temporary folder for large ones; planes wider than ``PYRAMID_SIDE`` get coarser
levels too. napari then only reads stored labels; it never runs the model while slicing.

:func:`apply_model` takes the same steps with a model in place of ``segment``.
No input layer is modified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from napari.layers import Labels

from ..api import Segmentation, segment
from ..assess.cross_check import cross_check as cv2_cross_check
from ..features import pixels as ft
from ..lazy import label_store
from ..options import segment_options
from ..outputs.label_colors import MAX_COLORS, distinct_colors
from ..progress import ProgressCallback, report
from . import outputs, session_store
from .inputs import METADATA_KEY, Inputs, LayerRef, is_lazy, read_inputs
from .outputs import RunResult

DEFAULT_SEED = 0
FIT_PIXELS = 2**24  # a multiscale layer is fitted on its finest level of at most this


def dask_threads():
    """One dask thread per core but one, for work started in a worker thread.

    dask's threaded scheduler called from a thread other than the main one starts a larger
    pool (7 threads on 2 cores here), which starves napari's GUI thread of the GIL; one
    core is left to the GUI.
    """
    try:
        import dask
    except ImportError:  # the base install: no lazy data
        return contextlib.nullcontext()
    return dask.config.set(num_workers=max(1, dask.system.CPU_COUNT - 1))


def fit_level(levels, channel_axis) -> int:
    """Index of the finest level of at most ``FIT_PIXELS`` spatial pixels (else the coarsest).

    Examples
    --------
    >>> fit_level([np.zeros((8192, 8192)), np.zeros((4096, 4096)), np.zeros((2, 2))], None)
    1
    """
    for index, level in enumerate(levels):
        if np.prod(ft.channel_layout(level.shape, channel_axis).spatial_shape) <= FIT_PIXELS:
            return index
    return len(levels) - 1


def stored_result(
    inputs: Inputs, model, progress: ProgressCallback | None, seg: Segmentation | None = None
) -> RunResult:
    """Label ``inputs`` with ``model`` once into a store; the layers read only the store.

    ``seg`` is the fit's segmentation (None for "Apply model"): its palette, centres and
    parameters are kept; labels, counts and inertia become the stored image's.
    """
    levels = list(inputs.levels or (inputs.image,))
    large = label_store.labels_bytes(model, levels) > label_store.IN_MEMORY_BYTES
    spatial = ft.channel_layout(levels[0].shape, inputs.channel_axis).spatial_shape
    wide = len(label_store.pyramid_shapes(spatial)) > 1  # planes napari should not draw whole
    stored = label_store.store_labels(
        model,
        levels,
        mask=inputs.mask,
        channel_axis=inputs.channel_axis,
        directory=session_store.new_store() if large else None,
        progress=progress,
        pyramid=large or (wide and inputs.slice is None),
    )
    masked = inputs.mask is not None
    images = levels if len(levels) == len(stored.levels) else levels[:1]
    alpha = ft.channel_layout(levels[0].shape, inputs.channel_axis).alpha
    if len(levels) == 1 and not (masked or alpha):
        images = [levels[0]] * len(stored.levels)  # colours come from the labels alone
    recolored = [
        label_store.recolored_from_labels(
            labels, model.palette, image, channel_axis=inputs.channel_axis, masked=masked
        )
        for labels, image in zip(stored.levels, images, strict=False)
    ]
    if seg is None:
        seg = Segmentation(
            labels=None,
            palette=model.palette,
            recolored=None,
            centers=model.centers,
            counts=stored.counts,
            inertia=stored.inertia,
            n_iter=model.n_iter,
            params=model.params_for(levels[0], masked=masked),
            model=model,
        )
    seg = dataclasses.replace(
        seg,
        labels=stored.levels[0],
        recolored=recolored[0],
        counts=stored.counts,
        inertia=stored.inertia,
    )
    distinct_colors(MAX_COLORS)  # build the palette here, not in the GUI thread
    return RunResult(seg, None, stored.levels, recolored, stored.means, stored.counts)


@dataclass(frozen=True, eq=False)
class SegmentationJob:
    """One run: the inputs read from the layers, the options of ``segment``, the cross-check."""

    inputs: Inputs
    options: dict
    cross_check: bool

    @property
    def name(self) -> str:
        return self.inputs.name

    def run(self, progress: ProgressCallback | None = None) -> RunResult:
        """Segment (and cross-check); ``progress`` may raise to stop."""
        with dask_threads():
            return self._run(progress)

    def _run(self, progress: ProgressCallback | None) -> RunResult:
        inputs = self.inputs
        levels = list(inputs.levels or (inputs.image,))
        index = fit_level(levels, inputs.channel_axis) if len(levels) > 1 else 0
        mask = inputs.mask
        if index and mask is not None:
            spatial = ft.channel_layout(levels[index].shape, inputs.channel_axis).spatial_shape
            mask = label_store.resample_nearest(mask, spatial)
        image = levels[index]
        if is_lazy(image):  # chunks whose integer pixels are counted in linear time
            image = label_store.work_chunks(image, inputs.channel_axis)
        seg = segment(
            image,
            channel_axis=inputs.channel_axis,
            mask=mask,
            progress=progress,
            **self.options,
        )
        check = None
        if self.cross_check:
            seed = seg.params["seed"] if isinstance(seg.params["seed"], int) else 0
            check = cv2_cross_check(image, seg, seed=seed, progress=progress)
        if not inputs.stored:
            distinct_colors(MAX_COLORS)  # build the palette here, not in the GUI thread
            return RunResult.in_memory(seg, check)
        return dataclasses.replace(stored_result(inputs, seg.model, progress, seg), check=check)


def prepare(
    viewer,
    layers: LayerRef | Sequence[LayerRef],
    *,
    mask: LayerRef | None = None,
    channel_axis="auto",
    current_slice: bool = False,
    cross_check: bool = False,
    **options,
) -> SegmentationJob:
    """Read the layers into a :class:`SegmentationJob`; ``options`` go to ``segment``."""
    unknown = sorted(set(options) - set(inspect.signature(segment).parameters))
    if unknown:
        raise TypeError(f"segment_layer got unexpected option(s) {unknown}")
    inputs = read_inputs(
        viewer, layers, mask=mask, channel_axis=channel_axis, preview_slice=current_slice
    )
    return SegmentationJob(inputs, options, cross_check)


def segment_layer(
    viewer,
    layers: LayerRef | Sequence[LayerRef],
    n_clusters: int = 5,
    *,
    mask: LayerRef | None = None,
    channel_axis="auto",
    current_slice: bool = False,
    cross_check: bool = False,
    label_colors: str = "distinct",
    background: int | None = None,
    replace_edited: bool = False,
    blocking: bool = True,
    seed=DEFAULT_SEED,
    **options,
):
    """Segment image layer(s) of a viewer as the "K-means segmentation" widget does.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer holding the layers.
    layers : Layer, str or sequence of them
        An Image layer or its name, or several single-channel ones used as channels.
    n_clusters : int
        Number of clusters.
    mask : Layer or str, optional
        Labels (non-zero = included) or Shapes layer, or its name.
    channel_axis : "auto", None or int
        For a single non-RGB layer, the data axis holding channels ("auto"/None: none).
        RGB(A) layers always have their colour on the last axis.
    current_slice : bool
        Preview: segment only the slice the viewer shows, into a layer of its own.
    cross_check : bool
        Also run ``cv2.kmeans`` and store the comparison in the layers' metadata.
    label_colors : {"distinct", "cluster"}
        Colours of the Labels layer: distinct colours, or each cluster's mean colour.
    background : int, optional
        A label shown as 0 (background) in the Labels layer.
    replace_edited : bool
        Replace a labels layer painted by hand since the last run (default: add a new one).
    blocking : bool
        False: return at once a started napari worker; the layers appear when it ends.
    seed : int, numpy.random.Generator or None
        As in :func:`napari_kmeans.segment`; 0 by default, as in the widget.
    **options
        ``method``, ``color_space``, ``spatial_weight``, ``spacing``, ``standardize``,
        ``n_init``, ``max_iter``, ``tol`` as in :func:`napari_kmeans.segment`. An output
        layer's whole ``metadata["napari_kmeans"]["params"]`` is accepted too (recognised
        by its ``versions`` entry): :func:`napari_kmeans.options.segment_options` keeps the
        entries ``segment`` takes, so a run can be repeated.

    Returns
    -------
    Segmentation or napari worker
        The segmentation, shown as layers ``<input> k-means labels`` and
        ``<input> k-means recolored``; with ``blocking=False`` the worker (its ``returned``
        signal carries the segmentation).

    Examples
    --------
    >>> import napari, napari_kmeans  # doctest: +SKIP
    >>> viewer = napari.Viewer()  # doctest: +SKIP
    >>> viewer.open_sample("napari-kmeans", "synthetic_cells_16bit")  # doctest: +SKIP
    >>> seg = napari_kmeans.segment_layer(viewer, "synthetic_cells_16bit", 4)  # doctest: +SKIP
    """
    if "versions" in options:  # a run's recorded params: keep what segment takes
        options = segment_options(options)
    job = prepare(
        viewer,
        layers,
        mask=mask,
        channel_axis=channel_axis,
        current_slice=current_slice,
        cross_check=cross_check,
        n_clusters=n_clusters,
        seed=seed,
        **options,
    )

    def show(result: RunResult) -> Segmentation:
        outputs.show(
            viewer,
            job.inputs,
            result,
            label_colors=label_colors,
            background=background,
            replace_edited=lambda layer: replace_edited,
        )
        return result.seg

    if blocking:
        return show(job.run())
    from napari.qt.threading import create_worker

    worker = create_worker(job.run, _start_thread=False)
    worker.returned.connect(show)
    worker.start()
    return worker


def model_channel_axis(model):
    """Return the channel axis to read layers with for ``model`` (its int axis, else auto)."""
    axis = model.channel_axis
    return axis if isinstance(axis, int) and not isinstance(axis, bool) else "auto"


def prepare_apply(viewer, layers: LayerRef | Sequence[LayerRef], model=None) -> list[Inputs]:
    """Read the inputs of "apply a model": each layer on its own (channels as the model's)."""
    refs = [layers] if isinstance(layers, str) or not isinstance(layers, Sequence) else layers
    axis = "auto" if model is None else model_channel_axis(model)
    return [read_inputs(viewer, ref, channel_axis=axis) for ref in refs]


def predict_all(
    inputs: Sequence[Inputs], model, progress: ProgressCallback | None = None
) -> list[RunResult]:
    """Label every input with ``model``; a ValueError names the layer that does not fit.

    Each result's table holds that image's own means per label.
    """
    results = []
    for done, item in enumerate(inputs):
        report(progress, "applying model", done, len(inputs))
        try:
            with dask_threads():
                results.append(stored_result(item, model, progress))
        except ValueError as error:
            raise ValueError(f"layer {item.name!r}: {error}") from None
    report(progress, "applying model", len(inputs), len(inputs))
    return results


def apply_model(
    viewer,
    layers: LayerRef | Sequence[LayerRef],
    model,
    *,
    model_path: str | None = None,
    label_colors: str = "distinct",
    background: int | None = None,
) -> list[Segmentation]:
    """Label each image layer with ``model`` and show the layers a run on it would make.

    Every layer is labelled by the model's nearest cluster, so a label means the same colour
    in every layer. All layers are checked and labelled before any layer is added: on an
    error (a ValueError naming the layer) the viewer is unchanged.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer holding the layers.
    layers : Layer, str or sequence of them
        An Image layer or its name, or several; each is labelled on its own.
    model : napari_kmeans.KMeansModel
        From ``seg.model`` of an earlier run or :func:`napari_kmeans.load_model`.
    model_path : str, optional
        The file ``model`` was loaded from, recorded for Copy Python.
    label_colors : {"distinct", "cluster"}
        As in :func:`segment_layer`.
    background : int, optional
        As in :func:`segment_layer`.

    Returns
    -------
    list of Segmentation
        One per layer, shown as ``<layer> k-means labels`` and ``<layer> k-means recolored``;
        each layer's table (``features``) holds that image's mean value per label, the
        model's palette stays in ``metadata["napari_kmeans"]["palette"]``.

    Examples
    --------
    >>> model = napari_kmeans.load_model("stains.json")  # doctest: +SKIP
    >>> segs = napari_kmeans.apply_model_to_layers(viewer, ["slide 1"], model)  # doctest: +SKIP
    """
    inputs = prepare_apply(viewer, layers, model)
    results = predict_all(inputs, model)
    for item, result in zip(inputs, results, strict=True):
        outputs.show(
            viewer,
            item,
            result,
            label_colors=label_colors,
            background=background,
            applied_model={"path": model_path},
        )
    return [result.seg for result in results]


def mask_from_clusters(viewer, labels: Labels, clusters: Sequence[int]) -> Labels:
    """Add (or update) a Labels layer holding only the chosen clusters of ``labels``."""
    chosen = sorted({int(c) for c in clusters})
    if not chosen:
        raise ValueError("no cluster selected: select one or more rows of the cluster table")
    data = np.where(np.isin(labels.data, chosen), labels.data, 0).astype(labels.data.dtype)
    meta = dict(labels.metadata.get(METADATA_KEY, {}))
    role = f"clusters {', '.join(map(str, chosen))}"
    meta.update(role=role, labels_digest=None)
    stem = labels.name.removesuffix(" labels")
    existing = outputs.find_output(viewer, meta.get("inputs", []), role)
    settings = {
        "colormap": labels.colormap,
        "affine": labels.affine.affine_matrix,
        "scale": labels.scale,
        "translate": labels.translate,
        "rotate": labels.rotate,
        "shear": labels.shear,
        "units": labels.units,
        "axis_labels": labels.axis_labels,
        "metadata": {METADATA_KEY: meta},
    }
    return outputs.put(viewer, existing, f"{stem} {role}", Labels, data, settings)
