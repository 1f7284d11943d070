"""Layers in, layers out: the napari side of a segmentation.

The widget and :func:`segment_layer` share these steps, so both give the same layers:

1. :func:`prepare` reads the chosen layers into arrays (:mod:`.inputs`) and checks them;
2. :meth:`SegmentationJob.run` calls :func:`napari_kmeans.segment` (in a worker thread for
   the widget, or with ``blocking=False``), reporting ``progress(stage, done, total)``;
3. :func:`~napari_kmeans._napari.outputs.show` turns the result into layers (:mod:`.outputs`).

:func:`apply_model` takes the same steps with a model's ``predict`` in place of ``segment``.
No input layer is modified.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from napari.layers import Labels

from ..api import Segmentation, segment
from ..assess.cross_check import CrossCheck
from ..assess.cross_check import cross_check as cv2_cross_check
from ..options import segment_options
from ..progress import ProgressCallback, report
from . import outputs
from .inputs import METADATA_KEY, Inputs, LayerRef, is_lazy, read_inputs

DEFAULT_SEED = 0


@dataclass(frozen=True, eq=False)
class SegmentationJob:
    """One run: the inputs read from the layers, the options of ``segment``, the cross-check."""

    inputs: Inputs
    options: dict
    cross_check: bool

    @property
    def name(self) -> str:
        return self.inputs.name

    def run(
        self, progress: ProgressCallback | None = None
    ) -> tuple[Segmentation, CrossCheck | None]:
        """Segment (and cross-check); ``progress`` may raise to stop."""
        seg = segment(
            self.inputs.image,
            channel_axis=self.inputs.channel_axis,
            mask=self.inputs.mask,
            progress=progress,
            **self.options,
        )
        if not self.cross_check:
            return seg, None
        seed = seg.params["seed"] if isinstance(seg.params["seed"], int) else 0
        return seg, cv2_cross_check(self.inputs.image, seg, seed=seed, progress=progress)


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

    def show(result: tuple[Segmentation, CrossCheck | None]) -> Segmentation:
        seg, check = result
        outputs.show(
            viewer,
            job.inputs,
            seg,
            check,
            label_colors=label_colors,
            background=background,
            replace_edited=lambda layer: replace_edited,
        )
        return seg

    if blocking:
        return show(job.run())
    from napari.qt.threading import create_worker

    worker = create_worker(job.run, _start_thread=False)
    worker.returned.connect(show)
    worker.start()
    return worker


def prepare_apply(viewer, layers: LayerRef | Sequence[LayerRef]) -> list[Inputs]:
    """Read the inputs of "apply a model": each layer on its own."""
    refs = [layers] if isinstance(layers, str) or not isinstance(layers, Sequence) else layers
    return [read_inputs(viewer, ref) for ref in refs]


def _counted(seg: Segmentation) -> Segmentation:
    """Compute the counts and inertia of ``seg`` if lazy (the labels stay lazy).

    Done in the worker, so that the table and metadata cost nothing in the GUI thread.
    """
    if not is_lazy(seg.counts):
        return seg
    import dask

    counts, inertia = dask.compute(seg.counts, seg.inertia)
    return dataclasses.replace(seg, counts=np.asarray(counts), inertia=float(inertia))


def predict_all(
    inputs: Sequence[Inputs], model, progress: ProgressCallback | None = None
) -> list[Segmentation]:
    """Label every input with ``model``; a ValueError names the layer that does not fit."""
    results = []
    for done, item in enumerate(inputs):
        report(progress, "applying model", done, len(inputs))
        try:
            seg = model.predict(item.image, mask=item.mask, progress=progress)
        except ValueError as error:
            raise ValueError(f"layer {item.name!r}: {error}") from None
        results.append(_counted(seg))
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
        One per layer, shown as ``<layer> k-means labels`` and ``<layer> k-means recolored``.

    Examples
    --------
    >>> model = napari_kmeans.load_model("stains.json")  # doctest: +SKIP
    >>> segs = napari_kmeans.apply_model_to_layers(viewer, ["slide 1"], model)  # doctest: +SKIP
    """
    inputs = prepare_apply(viewer, layers)
    results = predict_all(inputs, model)
    for item, seg in zip(inputs, results, strict=True):
        outputs.show(
            viewer,
            item,
            seg,
            label_colors=label_colors,
            background=background,
            applied_model={"path": model_path},
        )
    return results


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
        "metadata": {METADATA_KEY: meta},
    }
    return outputs.put(viewer, existing, f"{stem} {role}", Labels, data, settings)
