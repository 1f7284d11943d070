"""The file side of the ``napari-kmeans`` command.

Naming outputs, segmenting or labelling one file, writing its labels, recoloured image and
JSON summary, and running a batch with per-file errors under a progress bar.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .. import load_image, segment
from ..api import Segmentation
from ..assess.cross_check import CrossCheck
from ..features.pixels import resolve_channel_axis
from ..io.images import encode_params, save_image
from ..io.output_guard import OutputConflict, check_outputs, real_path
from ..io.safe_files import Staged, write_bytes, write_text
from ..options import option_values

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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
) -> None:
    """Refuse the run (UsageError naming the path) before any work if its outputs are unsafe.

    Unsafe: an output would replace or hold an input, two outputs collide, or, without
    ``overwrite``, a file that the run certainly writes exists already.

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
    for job in jobs:
        labels = lazy_labels(job)
        if labels is not None:
            files = [labels, summary_path(job)]
            certain += files
        else:
            files = output_candidates(job)
            certain.append(summary_path(job))
            if job.image.suffix.lower() not in (".tif", ".tiff"):
                certain.append(files[0])  # labels of a non-TIFF input: always PNG
        outputs += [(file, f"an output of {job.image}") for file in files]
    if save_model is not None:
        if not real_path(save_model).parent.is_dir():
            raise UsageError(f"--save-model {save_model}: its folder does not exist")
        outputs.append((save_model, "--save-model"))
        certain.append(save_model)
    try:
        check_outputs(outputs, inputs, existing_checked=certain, overwrite=overwrite)
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
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create the folder: {error.strerror}") from None
    return out


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
        clashes = sorted({str(unique[i]) for i, key in enumerate(keys) if keys.count(key) > 1})
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
    """Load one image and segment it with the options of ``args``.

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
    image : numpy.ndarray
        The loaded image.
    seg : Segmentation
        Its segmentation.
    """
    image = load_image(path, max_pixels=args.max_pixels)
    return image, _segment(image, args, mask)


def _segment(image, args: argparse.Namespace, mask: np.ndarray | None) -> Segmentation:
    mask = None if mask is None else mask_for(mask, image, args.channel_axis)
    return segment(image, mask=mask, **option_values(vars(args)))


def segment_lazily(
    job: Job,
    args: argparse.Namespace,
    mask: np.ndarray | None,
    outputs: Staged,
    labels_path: Path | None = None,
) -> Segmentation:
    """Segment a TIFF or Zarr image chunk by chunk with dask.

    Labels go to a Zarr store (``labels_path``, default ``<prefix>_labels.zarr``), written
    chunk by chunk, and the summary to ``<prefix>_clusters.json``, both staged in
    ``outputs``; no recolored image.

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
    from ..lazy.store import open_lazy, write_labels_zarr  # dask is imported only for these

    if args.cross_check:
        raise ValueError("--cross-check needs the whole image in memory: not for Zarr in or out")
    labels_path = labels_path or lazy_labels_path(job)
    image = open_lazy(job.image, channel_axis=args.channel_axis)
    seg = _segment(image, args, mask)
    write_labels_zarr(
        seg.labels, outputs.path(labels_path), progress=False if args.no_progress else None
    )
    _write_summary(job, seg, outputs, {"labels": labels_path})
    return seg


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
) -> dict:
    """Stage labels, recolored image and JSON summary of one job.

    Nothing appears at the destinations until ``outputs`` is committed.

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

    Returns
    -------
    dict
        The JSON record written as the summary.
    """
    prefix = str(job.prefix)
    labels_path = Path(prefix + ("_labels.png" if seg.labels.ndim == 2 else "_labels.tif"))
    if seg.labels.ndim == 2:
        save_image(outputs.path(labels_path), seg.labels)
    else:
        _save_tiff_pages(outputs.path(labels_path), seg.labels, colour=False)
    recolored_path = _save_recolored(prefix + "_recolored", job.image.suffix, seg, outputs)
    extra = {"cross_check": check.to_dict()} if check is not None else {}
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
    write_text(outputs.path(path), text)
    return record


def _save_recolored(stem: str, extension: str, seg: Segmentation, outputs: Staged) -> Path:
    """Keep the input's format when it holds the dtype and channels, else PNG, else TIFF."""
    recolored = seg.recolored
    if not _is_single_page(recolored):
        path = Path(stem + ".tif")
        _save_tiff_pages(outputs.path(path), recolored, colour=recolored.shape[-1] in (3, 4))
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


def _save_tiff_pages(path: Path, array: np.ndarray, colour: bool) -> None:
    """Write a multi-page TIFF, one page per index of the leading axes.

    ``colour``: the last axis holds RGB(A) (as ``load_image`` returns colour stacks),
    written in OpenCV's BGR(A) order.
    """
    page_shape = array.shape[-3:] if colour else array.shape[-2:]
    pages = array.astype(array.dtype.newbyteorder("="), copy=False).reshape(-1, *page_shape)
    if colour:
        code = cv2.COLOR_RGB2BGR if page_shape[-1] == 3 else cv2.COLOR_RGBA2BGRA
        pages = [cv2.cvtColor(page, code) for page in pages]
    ok, encoded = cv2.imencodemulti(
        ".tif", list(np.ascontiguousarray(pages)), encode_params(".tif")
    )
    if not ok:
        raise ValueError(f"cannot save image '{path}': OpenCV could not encode it as TIFF")
    write_bytes(path, encoded.tobytes())


def _reason(error: Exception, path: Path) -> str:
    """Say why a job failed, without the "cannot load image '<path>': " printed already.

    The kind of error is named too when it is not a ValueError or OSError (a bug, memory).
    """
    if isinstance(error, FileExistsError):
        existing = error.filename2 or error.filename  # os.link names the destination second
        return f"{existing} exists: nothing of this image was written (use --overwrite)"
    text = str(error).removeprefix(f"cannot load image '{path}': ")
    if isinstance(error, (ValueError, OSError)) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
