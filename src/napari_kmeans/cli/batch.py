"""The file side of the ``napari-kmeans`` command.

Naming outputs, segmenting or labelling one file, writing its labels, recoloured image and
JSON summary, and running a batch with per-file errors under a progress bar.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np
from tqdm import tqdm

if TYPE_CHECKING:  # dask is imported only for lazy inputs
    import dask.array as da

from .. import fit, load_image, read_image, segment
from ..api import Segmentation
from ..assess.cross_check import CrossCheck
from ..features.pixels import resolve_channel_axis
from ..features.prepare import is_dask_array
from ..io.axes import AxesImage, channel_axis_for
from ..io.folder_lock import FolderInUse, folder_lock
from ..io.images import encode_params, save_image
from ..io.output_guard import OutputConflict, check_outputs, real_path
from ..io.safe_files import Staged, write_bytes, write_text
from ..options import option_values

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM received: stops the run as Ctrl-C does (temporary files removed, exit 143).

    Examples
    --------
    >>> isinstance(Terminated(), KeyboardInterrupt)
    True
    """


class UsageError(Exception):
    """A problem with the command line as a whole (exit status 2), not with one image.

    Examples
    --------
    >>> raise UsageError("--out x: cannot create the folder")
    Traceback (most recent call last):
    ...
    napari_kmeans.cli.batch.UsageError: --out x: cannot create the folder
    """


@dataclass(frozen=True)
class Job:
    """One input image and the path prefix of its outputs (``<prefix>_labels.png``, ...).

    Attributes
    ----------
    image : pathlib.Path
        The input image.
    prefix : pathlib.Path
        Its outputs' path without the ``_labels.png``, ``_clusters.json``... ending.

    Examples
    --------
    >>> job = Job(Path("in/a.tif"), Path("out/a"))
    >>> summary_path(job).as_posix()
    'out/a_clusters.json'
    """

    image: Path
    prefix: Path


def run_jobs(
    desc: str, jobs: list[Job], process: Callable[[Job], object], no_progress: bool
) -> int:
    """Run ``process`` on every job under a progress bar; a failing job is reported and skipped.

    Any exception of one job (a corrupt file, a symbolic-link loop, memory, a bug) is
    reported as ``error: <image>: <reason>`` and the next job runs; Ctrl-C stops the batch
    (``KeyboardInterrupt`` propagates, after saying which images were written).

    Parameters
    ----------
    desc : str
        The progress bar's label.
    jobs : list of Job
        The jobs, run in order.
    process : callable
        ``process(job)``: the work of one job.
    no_progress : bool
        Hide the progress bar (else shown when stderr is a terminal).

    Returns
    -------
    int
        The exit status: 1 if any job failed, else 0.

    Examples
    --------
    >>> jobs = [Job(Path("a.png"), Path("a")), Job(Path("b.png"), Path("b"))]
    >>> run_jobs("segment", jobs, lambda job: None, no_progress=True)
    0
    """
    failed = done = 0
    disable = True if no_progress else None  # None: only when stderr is a terminal
    with tqdm(jobs, desc=desc, unit="image", file=sys.stderr, disable=disable) as bar:
        for job in bar:
            bar.set_postfix_str(job.image.name)
            try:
                process(job)
                done += 1
            except KeyboardInterrupt:
                tqdm.write(
                    f"interrupted at {job.image}: its files are all written or none; "
                    f"{done} of {len(jobs)} images were done before it",
                    file=sys.stderr,
                )
                raise
            except Exception as error:  # one input never stops the batch
                failed += 1
                tqdm.write(f"error: {job.image}: {_reason(error, job.image)}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(jobs)} images failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def guard_outputs(
    jobs: list[Job],
    lazy_labels: Callable[[Job], Path | None],
    inputs: list[tuple[Path, str]],
    save_model: Path | None,
    overwrite: bool,
    out_dir: Path | None = None,
) -> None:
    """Refuse the run (UsageError naming the path) before any work if its outputs are unsafe.

    Unsafe: an output would replace or hold an input, two outputs collide, a folder (or,
    for Zarr labels, anything but a labels store of this tool) stands where an output goes,
    or, without ``overwrite``, a file that the run certainly writes exists already.

    Parameters
    ----------
    jobs : list of Job
        The planned jobs.
    lazy_labels : callable
        ``lazy_labels(job)``: the Zarr labels path of a job segmented chunk by chunk, None
        for an in-memory job.
    inputs : list of tuple
        ``(path, what)`` of every file read.
    save_model : pathlib.Path or None
        The ``--save-model`` file.
    overwrite : bool
        Whether existing outputs may be replaced.
    out_dir : pathlib.Path, optional
        The ``--out`` folder, created by the run (``--save-model`` may go there).

    Raises
    ------
    UsageError
        Naming the path of the first unsafe output.

    Examples
    --------
    >>> jobs = [Job(Path("/data/a.png"), Path("/data/a"))]
    >>> guard_outputs(jobs, lambda job: None, [(Path("/data/a.png"), "IMAGE")], None, False)
    >>> guard_outputs(jobs, lambda job: None, [(Path("/data/a_labels.png"), "--mask")], None, True)
    Traceback (most recent call last):
    ...
    napari_kmeans.cli.batch.UsageError: ...
    """
    outputs: list[tuple[Path, str]] = []
    certain: list[Path] = []
    stores: list[Path] = []
    for job in jobs:
        labels = lazy_labels(job)
        if labels is not None:
            files = [labels, summary_path(job)]
            certain += files
            stores.append(labels)
        else:
            files = output_candidates(job)
            certain.append(summary_path(job))
            if job.image.suffix.lower() not in (".tif", ".tiff"):
                certain.append(files[0])  # labels of a non-TIFF input: always PNG
        outputs += [(file, f"an output of {job.image}") for file in files]
    if save_model is not None:
        folder = real_path(save_model).parent
        if not folder.is_dir() and (out_dir is None or folder != real_path(out_dir)):
            raise UsageError(f"--save-model {save_model}: its folder does not exist")
        outputs.append((save_model, "--save-model"))
        certain.append(save_model)
    try:
        check_outputs(outputs, inputs, existing_checked=certain, stores=stores, overwrite=overwrite)
    except OutputConflict as error:
        raise UsageError(str(error)) from None


def is_zarr(path: Path | None) -> bool:
    """Tell whether ``path`` names a Zarr store (by its ``.zarr`` suffix).

    Parameters
    ----------
    path : pathlib.Path or None
        Any path.

    Returns
    -------
    bool
        True for a ``.zarr`` suffix, in any case.

    Examples
    --------
    >>> is_zarr(Path("labels.ZARR")), is_zarr(None)
    (True, False)
    """
    return path is not None and path.suffix.lower() == ".zarr"


def prepare_out_dir(out: Path | None) -> Path | None:
    """Create the ``--out`` folder if missing (UsageError when it cannot be).

    Parameters
    ----------
    out : pathlib.Path or None
        The ``--out`` folder; None: outputs go beside their inputs.

    Returns
    -------
    pathlib.Path or None
        ``out``.

    Raises
    ------
    UsageError
        When the folder cannot be created.

    Examples
    --------
    >>> import tempfile
    >>> prepare_out_dir(Path(tempfile.mkdtemp()) / "new" / "folder").is_dir()
    True
    """
    if out is None:
        return None
    try:
        os.stat(out)
    except FileNotFoundError:
        pass
    except OSError as error:
        reason = "a symbolic-link loop" if error.errno == errno.ELOOP else error.strerror
        raise UsageError(f"--out {out}: cannot use it as a folder: {reason}") from None
    if os.path.lexists(out) and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create the folder: {error.strerror}") from None
    return out


@contextmanager
def folders_held(folders: Sequence[Path], out: Path | None = None) -> Iterator[None]:
    """Hold the lock of every output folder for the run (UsageError when one is in use).

    Two runs writing into one folder could mix their files: the second is refused, before
    any work, while the first runs (:mod:`napari_kmeans.io.folder_lock`). Taking the lock
    also proves the folder writable.

    Parameters
    ----------
    folders : sequence of pathlib.Path
        The folders the run writes into (missing ones are skipped: nothing goes there).
    out : pathlib.Path, optional
        The ``--out`` folder, named as such in messages.

    Yields
    ------
    None
        While every lock is held.

    Raises
    ------
    UsageError
        When a folder is in use by another run or cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with folders_held([folder]):
    ...     sorted(path.name for path in folder.iterdir())
    ['.napari-kmeans.lock']
    """
    with ExitStack() as stack:
        for folder in sorted({real_path(folder): folder for folder in folders}.values()):
            if not folder.is_dir():  # beside a missing input: that input fails by itself
                continue
            name = f"--out {out}" if out is not None and folder == out else str(folder)
            try:
                stack.enter_context(folder_lock(folder))
            except FolderInUse as error:
                holder = "" if error.pid is None else f" (process {error.pid})"
                raise UsageError(
                    f"{name}: another napari-kmeans run{holder} is writing in this folder; "
                    "wait for it to end, or write elsewhere with --out"
                ) from None
            except OSError as error:
                raise UsageError(
                    f"{name}: cannot write in this folder: {error.strerror or error}"
                ) from None
        yield


def load_mask(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """Load a boolean mask from an image file: non-zero in any colour channel, alpha ignored.

    Parameters
    ----------
    path : pathlib.Path
        The ``--mask`` image.
    max_pixels : int, optional
        The pixel budget of :func:`napari_kmeans.load_image`.

    Returns
    -------
    numpy.ndarray
        The boolean mask, spatial shape of the file.

    Raises
    ------
    UsageError
        Naming the path, when it cannot be loaded.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "mask.png"
    >>> save_image(path, np.array([[0, 255]], np.uint8))
    >>> load_mask(path).tolist()
    [[False, True]]
    """
    try:
        mask = load_image(path, max_pixels=max_pixels)
    except ValueError as error:
        raise UsageError(f"--mask {path}: {_reason(error, path)}") from None
    if mask.ndim == 3 and mask.shape[2] in (3, 4):
        return (mask[..., :3] != 0).any(axis=2)
    return mask != 0


def mask_for(mask: np.ndarray, image: np.ndarray, channel_axis) -> np.ndarray:
    """Return ``mask`` fitted to the image's spatial shape (a 2-D mask repeats over pages).

    Parameters
    ----------
    mask : numpy.ndarray
        The boolean mask.
    image : numpy.ndarray
        The image it applies to.
    channel_axis : "auto", "rgb", None or int
        As in :func:`napari_kmeans.segment`.

    Returns
    -------
    numpy.ndarray
        The mask, broadcast to the image's spatial shape.

    Raises
    ------
    ValueError
        When the shapes do not match.

    Examples
    --------
    >>> mask_for(np.ones((4, 5), bool), np.zeros((3, 4, 5)), None).shape
    (3, 4, 5)
    """
    axis = resolve_channel_axis(image, channel_axis)
    spatial = image.shape if axis is None else image.shape[:axis] + image.shape[axis + 1 :]
    if mask.shape != spatial and mask.shape == spatial[-mask.ndim :]:
        return np.broadcast_to(mask, spatial)
    if mask.shape != spatial:
        raise ValueError(
            f"the mask has shape {mask.shape} but this image's spatial shape is {spatial} "
            "(height, width[, ...]): they must match"
        )
    return mask


def plan_outputs(images: Sequence[Path], out_dir: Path | None) -> list[Job]:
    """One job per distinct input, with output names that cannot overwrite one another.

    Outputs go to ``out_dir`` or next to each input. Inputs whose names would collide (same
    file name without extension, compared case-insensitively) are told apart by the shortest
    tail of their folders, then by their extension.

    Parameters
    ----------
    images : sequence of pathlib.Path
        The input images (repeats are run once).
    out_dir : pathlib.Path or None
        The ``--out`` folder; None: beside each input.

    Returns
    -------
    list of Job
        One per distinct input, in order.

    Raises
    ------
    UsageError
        When outputs would still collide.

    Examples
    --------
    >>> jobs = plan_outputs([Path("/d/x/img.png"), Path("/d/y/img.png")], Path("/out"))
    >>> [job.prefix.as_posix() for job in jobs]
    ['/out/x_img', '/out/y_img']
    >>> [job.prefix.as_posix() for job in plan_outputs([Path("/d/a.png")], None)]
    ['/d/a']
    """
    unique = list({real_path(image): image for image in reversed(images)}.values())[::-1]
    folders = [image.parent if out_dir is None else out_dir for image in unique]
    names = [image.stem for image in unique]
    groups: dict[tuple[Path, str], list[int]] = defaultdict(list)
    for index, (folder, name) in enumerate(zip(folders, names, strict=True)):
        groups[real_path(folder), name.casefold()].append(index)
    for members in groups.values():
        if len(members) > 1:
            distinct = _distinguishing_names([real_path(unique[i]) for i in members])
            for index, name in zip(members, distinct, strict=True):
                names[index] = name
    keys = [(real_path(f), n.casefold()) for f, n in zip(folders, names, strict=True)]
    if len(set(keys)) < len(keys):
        times = Counter(keys)
        clashes = sorted({str(unique[i]) for i, key in enumerate(keys) if times[key] > 1})
        raise UsageError(
            f"outputs of {', '.join(clashes)} would overwrite one another even after adding "
            "their folder names: rename them or run them with different --out folders"
        )
    for image, name in zip(unique, names, strict=True):
        if name != image.stem:
            print(
                f"note: {image}: outputs named {name}_* (another input has the same name)",
                file=sys.stderr,
            )
    return [
        Job(image, folder / name)
        for image, folder, name in zip(unique, folders, names, strict=True)
    ]


def _distinguishing_names(paths: list[Path]) -> list[str]:
    """Names for same-stem files: folder tails first (``a_img``), then the extension too."""
    folders = [path.parent.relative_to(path.anchor).parts for path in paths]
    for with_extension in (False, True):
        for level in range(max(map(len, folders)) + 1):
            names = [
                "_".join(
                    [*parts[len(parts) - level :], path.stem]
                    + ([path.suffix.lstrip(".")] if with_extension else [])
                )
                for path, parts in zip(paths, folders, strict=True)
            ]
            if len({name.casefold() for name in names}) == len(names):
                return names
    return [path.stem for path in paths]  # indistinguishable: the caller reports the clash


def segment_file(path: Path, args: argparse.Namespace, mask: np.ndarray | None):
    """Load one image with its axes and segment it with the options of ``args``.

    Parameters
    ----------
    path : pathlib.Path
        The image file.
    args : argparse.Namespace
        The parsed ``segment`` command line.
    mask : numpy.ndarray or None
        The ``--mask``, from :func:`load_mask`.

    Returns
    -------
    image : AxesImage
        The loaded image and its axes.
    seg : Segmentation
        Its segmentation.
    labels_axes : str
        One letter per axis of ``seg.labels``.
    """
    image = read_image(path, max_pixels=args.max_pixels)
    return (image, *segment_axes_image(image, args, mask))


def segment_axes_image(
    image: AxesImage, args: argparse.Namespace, mask: np.ndarray | None
) -> tuple[Segmentation, str]:
    """Segment an image (in memory or lazy) as its axes say, with the options of ``args``.

    The channel axis is the file's (``--channel-axis`` must agree with it); the spacing
    is the file's pixel sizes unless ``--spacing`` is given. Time points (``T``) are
    clustered together, so a label means the same class in every frame, but with
    ``--spatial-weight`` the coordinates are each frame's own: one model is fitted on
    every frame and labels each frame.

    Parameters
    ----------
    image : AxesImage
        The image and its axes.
    args : argparse.Namespace
        The parsed ``segment`` command line.
    mask : numpy.ndarray or None
        The ``--mask``, from :func:`load_mask`.

    Returns
    -------
    seg : Segmentation
        The segmentation.
    labels_axes : str
        One letter per axis of ``seg.labels``.

    Raises
    ------
    ValueError
        When ``--channel-axis`` contradicts the file's axes, or an option does not fit.
    """
    channel_axis = channel_axis_for(image, args.channel_axis, name="--channel-axis")
    if channel_axis == "rgb" and args.channel_axis == "auto":
        channel_axis = "auto"  # the same reading, and a saved model keeps "auto" for 'apply'
    axis = resolve_channel_axis(image.data, channel_axis)
    kept = [i for i in range(image.data.ndim) if i != axis]
    labels_axes = "".join(image.axes[i] for i in kept)
    if not {"Y", "X"} <= set(labels_axes):  # the file named no axes: "auto" found colours
        labels_axes = "Q" * (len(kept) - 2) + "YX"
    time_index = labels_axes.find("T") if args.spatial_weight > 0 else -1
    spacing = args.spacing or tuple(
        image.scale[i]
        for i, letter in zip(kept, labels_axes, strict=True)
        if letter != "T" or time_index < 0
    )
    options = {**option_values(vars(args)), "channel_axis": channel_axis, "spacing": spacing}
    data = image.data
    if time_index < 0:
        spread = None if mask is None else mask_for(mask, data, channel_axis)
        return segment(data, mask=spread, **options), labels_axes
    return _segment_frames(data, kept[time_index], mask, options), labels_axes


def _segment_frames(data, time_axis: int, mask, options: dict) -> Segmentation:
    """One model fitted on every frame along ``time_axis``, labelling each frame."""
    started = time.perf_counter()
    xp: Any = np
    if is_dask_array(data):
        import dask.array as xp
    frames = [xp.take(data, t, axis=time_axis) for t in range(data.shape[time_axis])]
    channel_axis = options["channel_axis"]
    if isinstance(channel_axis, int) and channel_axis > time_axis:
        options = {**options, "channel_axis": channel_axis - 1}
    masks = [None if mask is None else mask_for(mask, f, options["channel_axis"]) for f in frames]
    model = fit(frames, mask=masks, **options)
    parts = [model.predict(f, mask=m) for f, m in zip(frames, masks, strict=True)]
    labels_time = time_axis - (isinstance(channel_axis, int) and channel_axis < time_axis)
    return Segmentation(
        labels=xp.stack([p.labels for p in parts], axis=labels_time),
        palette=model.palette,
        recolored=xp.stack([p.recolored for p in parts], axis=time_axis),
        centers=model.centers,
        counts=sum(p.counts for p in parts),
        inertia=sum(p.inertia for p in parts),
        n_iter=model.n_iter,
        params={**model.params, "frames": len(parts)},
        seconds=time.perf_counter() - started,
        model=model,
    )


def segment_lazily(
    job: Job,
    args: argparse.Namespace,
    mask: np.ndarray | None,
    outputs: Staged,
    labels_path: Path | None = None,
) -> Segmentation:
    """Segment a TIFF or Zarr image chunk by chunk with dask, as its axes say.

    Labels go to an OME-Zarr labels image (``labels_path``, default
    ``<prefix>_labels.zarr``; :func:`napari_kmeans.lazy.store.write_ome_zarr_labels`),
    written chunk by chunk with its axes and pixel sizes and a pyramid for large images,
    and the summary to ``<prefix>_clusters.json``, both staged in ``outputs``; no
    recolored image.

    Parameters
    ----------
    job : Job
        The input image and the prefix of its outputs.
    args : argparse.Namespace
        The parsed ``segment`` command line.
    mask : numpy.ndarray or None
        The ``--mask``, from :func:`load_mask`.
    outputs : Staged
        Where the files are staged.
    labels_path : pathlib.Path, optional
        The Zarr labels; default :func:`lazy_labels_path`.

    Returns
    -------
    Segmentation
        With lazy ``labels``.

    Raises
    ------
    ValueError
        With ``--cross-check``, which needs the whole image in memory.
    """
    try:  # dask, zarr and tifffile are imported only for these
        from ..lazy.store import open_lazy_image, write_ome_zarr_labels
    except ImportError as error:
        raise ValueError(
            f"Zarr inputs and .zarr outputs need dask, zarr and tifffile ({error}): "
            'pip install "napari-kmeans[all]"'
        ) from None

    if args.cross_check:
        raise ValueError("--cross-check needs the whole image in memory: not for Zarr in or out")
    labels_path = labels_path or lazy_labels_path(job)
    image = open_lazy_image(job.image, channel_axis=args.channel_axis, max_pixels=args.max_pixels)
    seg, labels_axes = segment_axes_image(image, args, mask)
    described = _labels_axes(image, labels_axes)
    write_ome_zarr_labels(
        cast("da.Array", seg.labels),  # a lazy image gives lazy labels
        outputs.path(labels_path),
        axes=labels_axes,
        scale=described.scale,
        units=described.units,
        progress=False if args.no_progress else None,
    )
    _write_summary(job, seg, outputs, {"labels": labels_path}, _axes_record(image, labels_axes))
    return seg


def _axes_record(image: AxesImage, labels_axes: str) -> dict:
    """Record the input's axes and pixel sizes and the labels' axes for the summary."""
    return {
        "axes": {
            "input": image.axes,
            "labels": labels_axes,
            "scale": list(image.scale),
            "units": list(image.units),
        }
    }


def lazy_labels_path(job: Job) -> Path:
    """Return where the Zarr labels of a lazily segmented job go by default.

    Parameters
    ----------
    job : Job
        The input image and the prefix of its outputs.

    Returns
    -------
    pathlib.Path
        ``<prefix>_labels.zarr``.

    Examples
    --------
    >>> job = Job(Path("in/a.tif"), Path("out/a"))
    >>> lazy_labels_path(job).as_posix()
    'out/a_labels.zarr'
    """
    return Path(f"{job.prefix}_labels.zarr")


def summary_path(job: Job) -> Path:
    """Return where the JSON summary of a job goes.

    Parameters
    ----------
    job : Job
        The input image and the prefix of its outputs.

    Returns
    -------
    pathlib.Path
        ``<prefix>_clusters.json``.

    Examples
    --------
    >>> job = Job(Path("in/a.tif"), Path("out/a"))
    >>> summary_path(job).name
    'a_clusters.json'
    """
    return Path(f"{job.prefix}_clusters.json")


def output_candidates(job: Job) -> list[Path]:
    """List every file an in-memory job may write (the format of some depends on the image).

    Parameters
    ----------
    job : Job
        The input image and the prefix of its outputs.

    Returns
    -------
    list of pathlib.Path
        Labels, recoloured image (each in every format it may take) and summary.

    Examples
    --------
    >>> job = Job(Path("in/a.tif"), Path("out/a"))
    >>> [path.name for path in output_candidates(job)]
    ['a_labels.png', 'a_labels.tif', 'a_recolored.tif', 'a_recolored.png', 'a_clusters.json']
    """
    prefix = str(job.prefix)
    extension = job.image.suffix
    labels = [".png", ".tif"] if extension.lower() in (".tif", ".tiff") else [".png"]
    recolored = dict.fromkeys([extension, ".png", ".tif"])
    return [
        *(Path(prefix + "_labels" + ext) for ext in labels),
        *(Path(prefix + "_recolored" + ext) for ext in recolored),
        summary_path(job),
    ]


def write_outputs(
    job: Job,
    seg: Segmentation,
    check: CrossCheck | None,
    outputs: Staged,
    model: Path | None = None,
    axes: tuple[AxesImage, str] | None = None,
) -> dict:
    """Stage labels, recolored image and JSON summary of one job.

    Nothing appears at the destinations until ``outputs`` is committed. Labels of more
    than two axes (and recoloured stacks) are TIFFs that carry their axes and pixel sizes
    (ImageJ hyperstacks where ImageJ can hold the axes) when tifffile is installed.

    Parameters
    ----------
    job : Job
        The input image and the prefix of its outputs.
    seg : Segmentation
        Its segmentation.
    check : CrossCheck or None
        The ``--cross-check`` result, recorded in the JSON.
    outputs : Staged
        Where the files are staged.
    model : pathlib.Path, optional
        The model file the labels come from (recorded in the JSON), None for a fit.
    axes : tuple of (AxesImage, str), optional
        The input with its axes and the axes of the labels, written into stacks and the
        JSON.

    Returns
    -------
    dict
        The JSON record written as the summary.
    """
    prefix = str(job.prefix)
    labels_path = Path(prefix + ("_labels.png" if seg.labels.ndim == 2 else "_labels.tif"))
    image = None if axes is None else axes[0]
    if seg.labels.ndim == 2:
        save_image(outputs.path(labels_path), seg.labels)
    else:
        _save_tiff_pages(
            outputs.path(labels_path),
            seg.labels,
            colour=False,
            axes=None if axes is None else _labels_axes(*axes),
        )
    recolored_path = _save_recolored(
        prefix + "_recolored", job.image.suffix, seg, outputs, None if image is None else image
    )
    extra: dict[str, object] = {"cross_check": check.to_dict()} if check is not None else {}
    if axes is not None:
        extra.update(_axes_record(*axes))
    if model is not None:
        extra["model"] = str(real_path(model))
    return _write_summary(
        job, seg, outputs, {"labels": labels_path, "recolored": recolored_path}, extra
    )


def _write_summary(
    job: Job, seg: Segmentation, outputs: Staged, files: dict[str, Path], extra=None
) -> dict:
    path = summary_path(job)
    record = {
        "input": str(real_path(job.image)),
        "outputs": {
            **{name: str(real_path(file)) for name, file in files.items()},
            "clusters": str(real_path(path)),
        },
        **seg.to_dict(),
        **(extra or {}),
    }
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    if any("\ud800" <= c <= "\udfff" for c in text):
        # a file name that is not UTF-8: escaped (os.fsencode of the value gives its bytes)
        text = json.dumps(record, indent=2) + "\n"
    write_text(outputs.path(path), text)
    return record


def _save_recolored(
    stem: str, extension: str, seg: Segmentation, outputs: Staged, image: AxesImage | None
) -> Path:
    """Keep the input's format when it holds the dtype and channels, else PNG, else TIFF."""
    recolored = seg.recolored
    if not _is_single_page(recolored):
        path = Path(stem + ".tif")
        colour = recolored.shape[-1] in (3, 4) and (image is None or image.axes.endswith("S"))
        _save_tiff_pages(outputs.path(path), recolored, colour=colour, axes=image)
        return path
    for candidate in dict.fromkeys([extension, ".png"]):
        path = Path(stem + candidate)
        try:
            save_image(outputs.path(path), recolored)
            return path
        except ValueError:  # this format cannot hold the dtype or channel count
            continue
    path = Path(stem + ".tif")  # TIFF holds every dtype segment returns
    save_image(outputs.path(path), recolored)
    return path


def _is_single_page(array: np.ndarray) -> bool:
    """Tell whether ``save_image`` writes ``array`` as one image of this shape."""
    return array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))


def _labels_axes(image: AxesImage, labels_axes: str) -> AxesImage:
    """Describe the labels' axes and pixel sizes, as an AxesImage without data."""
    kept = [i for i, a in enumerate(image.axes) if a not in "CS"]
    if len(kept) != len(labels_axes):  # "auto" found colours in an unnamed array
        kept = list(range(len(labels_axes)))
        return AxesImage(_Shape(len(kept)), labels_axes, (1.0,) * len(kept), (None,) * len(kept))
    scale = tuple(image.scale[i] for i in kept)
    units = tuple(image.units[i] for i in kept)
    return AxesImage(_Shape(len(kept)), labels_axes, scale, units)


class _Shape:
    """Stands for data of ``ndim`` dimensions where only the axes are described."""

    def __init__(self, ndim: int):
        self.shape = (0,) * ndim


def _save_tiff_pages(
    path: Path, array: np.ndarray, colour: bool, axes: AxesImage | None = None
) -> None:
    """Write a multi-page TIFF, one page per index of the leading axes.

    ``colour``: the last axis holds RGB(A) (as ``load_image`` returns colour stacks).
    With ``axes`` and tifffile installed, the file keeps the axes and pixel sizes (an
    ImageJ hyperstack when ImageJ can hold them, else tifffile's own description);
    else OpenCV writes flat pages.
    """
    if axes is not None and len(axes.axes) == array.ndim:
        try:
            import tifffile
        except ImportError:
            pass
        else:
            write_bytes(path, _tiff_with_axes(tifffile, array, axes, colour))
            return
    page_shape = array.shape[-3:] if colour else array.shape[-2:]
    stack = array.astype(array.dtype.newbyteorder("="), copy=False).reshape(-1, *page_shape)
    pages = list(stack)
    if colour:
        code = cv2.COLOR_RGB2BGR if page_shape[-1] == 3 else cv2.COLOR_RGBA2BGRA
        pages = [cv2.cvtColor(page, code) for page in pages]
    ok, encoded = cv2.imencodemulti(
        ".tif", list(np.ascontiguousarray(pages)), encode_params(".tif")
    )
    if not ok:
        raise ValueError(f"cannot save image '{path}': OpenCV could not encode it as TIFF")
    write_bytes(path, encoded.tobytes())


def _tiff_with_axes(tifffile, array: np.ndarray, axes: AxesImage, colour: bool) -> bytes:
    """Encode ``array`` with its axes: ImageJ when the axes are in ImageJ's TZCYX(S) order."""
    letters = axes.axes
    sizes = dict(zip(letters, zip(axes.scale, axes.units, strict=True), strict=True))
    order = "TZCYXS"
    imagej = (
        all(a in order for a in letters)
        and [order.index(a) for a in letters] == sorted(order.index(a) for a in letters)
        and array.dtype in (np.uint8, np.uint16, np.float32)
        and (not letters.endswith("S") or array.dtype == np.uint8)
    )
    kwargs: dict = {"photometric": "rgb" if colour else "minisblack"}
    x_size, x_unit = sizes.get("X", (1.0, None))
    y_size, _ = sizes.get("Y", (1.0, None))
    if imagej:
        metadata: dict = {"axes": letters}
        if x_unit is not None:
            metadata["unit"] = "um" if x_unit == "micrometer" else x_unit
            kwargs["resolution"] = (1.0 / x_size, 1.0 / y_size)
        if "Z" in sizes and sizes["Z"][0] != 1.0:
            metadata["spacing"] = sizes["Z"][0]
        kwargs.update(imagej=True, metadata=metadata)
    else:
        kwargs.update(metadata={"axes": letters}, compression="zlib")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(array), **kwargs)
    return buffer.getvalue()


def _reason(error: Exception, path: Path) -> str:
    """Say why a job failed, without the "cannot load image '<path>': " printed already.

    The kind of error is named too when it is not a ValueError or OSError (a bug, memory).
    """
    if isinstance(error, FileExistsError):
        existing = error.filename2 or error.filename  # os.link names the destination second
        return f"{existing} exists: nothing of this image was written (use --overwrite)"
    if isinstance(error, (IsADirectoryError, NotADirectoryError)) and error.filename:
        return f"{error.filename}: {error.strerror}: nothing of this image was written"
    text = str(error).removeprefix(f"cannot load image '{path}': ")
    if isinstance(error, (ValueError, OSError)) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
