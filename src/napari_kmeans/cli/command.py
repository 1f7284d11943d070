"""The ``napari-kmeans`` command: segment image files from a shell or a batch script.

Every subcommand is registered by one ``_add_*_command`` function listed in ``_COMMANDS``;
each sets ``run`` (a function of the parsed arguments returning the exit status).

Examples
--------
>>> main(["segment", "photo.jpg", "-k", "4", "--color-space", "lab"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from .. import __version__, load_image
from ..assess.cross_check import cross_check
from ..engine.compiled import report_first_use_to
from ..io.images import DEFAULT_MAX_PIXELS, MAX_PIXELS_VARIABLE, ImageLoadError, pixel_budget
from ..io.model_file import MAX_CLUSTERS, ModelFileError, load_model, save_model
from ..io.output_guard import real_path
from ..io.safe_files import Staged
from ..options import OPTIONS, Option
from .batch import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Job,
    Terminated,
    UsageError,
    folders_held,
    guard_outputs,
    is_zarr,
    lazy_labels_path,
    load_mask,
    mask_for,
    plan_outputs,
    prepare_out_dir,
    run_jobs,
    segment_file,
    segment_lazily,
    write_outputs,
)

PROG = "napari-kmeans"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Option defaults appended to each help line; descriptions and examples kept as written.

    Options whose default is None say in their own words what happens without them.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------------------------
# Argument types: each returns the value ``segment`` takes, or explains what is allowed.


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not allowed: it must be >= {minimum}")
        return value

    return parse


# ---------------------------------------------------------------------------------------------
# Parser


_SEGMENT_DESCRIPTION = """\
Segment each IMAGE by k-means clustering of its pixels and write, per image:

  <name>_labels.png      labels 1..k from the darkest cluster to the brightest, 0 where the
                         mask excludes a pixel; 8-bit PNG, 16-bit when k > 255
  <name>_recolored.EXT   the image with every pixel replaced by its cluster's mean colour,
                         same dtype; EXT is the input's extension when that format holds the
                         dtype and channels, else .png (8/16-bit) or .tif (float32)
  <name>_clusters.json   parameters, palette, counts, inertia, iterations, seconds, the input
                         and output paths, and the OpenCV comparison with --cross-check

<name> is the input's file name without extension. Inputs from different folders with the
same name get the distinguishing part of their folder prepended (a/img.png, b/img.png ->
a_img_*, b_img_*), so no output overwrites another.

Nothing is lost: before any work the command refuses (exit 2, naming the path) an output that
would replace or contain an input (IMAGE, --mask, --model), two outputs at one path, a
folder where an output file goes, and any existing file unless --overwrite is given;
--overwrite replaces only files, and Zarr labels stores written by this command. Each file
is written under a temporary name beside it and renamed when complete; an image's files
appear together or not at all, so an error, a full disk, Ctrl-C (exit 130) or SIGTERM (exit
143) leaves no partial output. One run at a time writes into a folder: a second run on a
folder in use is refused. Inputs must be regular files; images larger than --max-pixels are
refused from their header (Zarr and lazily read TIFF: their shape), before decoding.

Images are read with their axes: an ImageJ hyperstack or OME-TIFF (with tifffile) and an
OME-Zarr image give their channel axis (C), stack axes (Z, T) and pixel sizes, so
zcyx.tif gives (Z, Y, X) labels. --channel-axis must agree with the file's axes, --spacing
replaces its pixel sizes. The stack is clustered as one (a label means the same colour on
every page and time point); with --spatial-weight each time point keeps its own
coordinates. Pixels are read as stored: JPEG EXIF orientation is not applied, as in napari.
Stacks are written as TIFFs that keep their axes and pixel sizes, <name>_labels.tif and
<name>_recolored.tif.

Large images are read lazily and segmented chunk by chunk with dask: a Zarr store
(IMAGE.zarr) always, a TIFF when --out ends in .zarr. Their labels go to an OME-Zarr labels
image (OME-NGFF 0.4: axes, pixel sizes, and levels halving Y and X until both are below
1024 pixels) written chunk by chunk (--out's path, else <name>_labels.zarr), and the summary
to <name>_clusters.json beside it (result.zarr -> result_clusters.json); no recolored image
is written. A .zarr --out takes exactly one IMAGE.

A file that cannot be read or segmented is reported as "error: <path>: <reason>" and the
others are still processed. Exit status: 0 all written, 1 some input failed, 2 usage error,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

_SEGMENT_EXAMPLES = """\
examples:
  napari-kmeans segment photo.jpg -k 5 --color-space lab
  napari-kmeans segment reference.png -k 4 --save-model stains.json
  napari-kmeans segment scans/*.tif -k 3 --method optimal --color-space gray --out results
  napari-kmeans segment cells.png -k 4 --mask roi.png --spatial-weight 0.5 --cross-check
  napari-kmeans segment volume.tif -k 4 --out volume_labels.zarr
"""


def _add_segment_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "segment",
        help="segment image files into k colour clusters",
        description=_SEGMENT_DESCRIPTION,
        epilog=_SEGMENT_EXAMPLES,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="image files: PNG, JPEG, TIFF (ImageJ/OME hyperstacks too), BMP, WebP, ..., "
        "or Zarr / OME-Zarr folders",
    )
    _add_option_arguments(parser)
    parser.add_argument(
        "--mask",
        type=Path,
        default=None,
        metavar="MASK",
        help="image file of the same height and width as each IMAGE (a 2-D "
        "mask applies to every page of a stack); non-zero pixels (any "
        "colour channel, alpha ignored) are clustered, the others get "
        "label 0 and keep their value (default: no mask)",
    )
    parser.add_argument(
        "--cross-check",
        action="store_true",
        help="also run OpenCV's cv2.kmeans on the same features and record the "
        "adjusted Rand index, inertia ratio and timings in the JSON",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR|LABELS.zarr",
        help="folder for the outputs, created if missing, or a .zarr store for "
        "the labels of one IMAGE read and segmented chunk by chunk "
        "(default: next to each input)",
    )
    parser.add_argument(
        "--save-model",
        type=Path,
        default=None,
        metavar="MODEL.json",
        help="also save the fitted model, for 'napari-kmeans apply' and "
        "napari_kmeans.load_model; takes exactly one IMAGE (fit on one "
        "image, apply to many) (default: not saved)",
    )
    _add_run_options(parser)
    parser.set_defaults(run=run_segment)


# The seed is fixed by default on the command line, so a batch repeats exactly.
_CLI_DEFAULTS = {"seed": 0}


# What the command's files hold, beyond the options' own checks: labels are 16-bit images.
_CLI_MAXIMA = {"n_clusters": (MAX_CLUSTERS, "labels are written as 16-bit images")}


def _argument_type(option: Option, to_value: Callable[[str], object]) -> Callable[[str], object]:
    def parse(text: str):
        try:
            value = option.check(option.name, to_value(text))
        except ValueError as error:
            # name the value as it was typed: "'1,0' is not allowed: ..."
            head, allowed, rest = str(error).partition(" is not allowed: ")
            message = f"{text!r}{allowed}{rest}" if allowed else str(error)
            raise argparse.ArgumentTypeError(message) from None
        maximum, why = _CLI_MAXIMA.get(option.name, (None, ""))
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(
                f"{text} is not allowed: it must be at most {maximum:g} ({why})"
            )
        return value

    parse.__name__ = option.name  # argparse names the type in its messages
    return parse


def _add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """One argument per option of the table that has a flag (-k for the number of clusters)."""
    for option in OPTIONS.values():
        if option.flag is None:
            continue
        flags = ("-k", option.flag) if option.name == "n_clusters" else (option.flag,)
        if option.parse is None:  # a switch; --no-... too when the default is not False
            action = "store_true" if option.default is False else argparse.BooleanOptionalAction
            parser.add_argument(
                *flags, action=action, default=option.default, help=option.plain_doc
            )
            continue
        parser.add_argument(
            *flags,
            type=_argument_type(option, option.parse),
            default=_CLI_DEFAULTS.get(option.name, option.default),
            metavar=option.metavar,
            help=option.plain_doc,
        )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown on stderr when stderr is a terminal)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace output files (and a .zarr --out labels store written by this command) "
        "that already exist; without it the command refuses, before any work, to write over "
        "any existing file; folders and other stores are never replaced",
    )
    parser.add_argument(
        "--max-pixels",
        type=_int_at_least(1),
        default=None,
        metavar="N",
        help="refuse images (and masks) of more than N pixels, checked from the file's "
        f"header before decoding (default: ${MAX_PIXELS_VARIABLE}, else {DEFAULT_MAX_PIXELS} = "
        "16384 x 16384)",
    )


def _add_gui_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "gui",
        help="open napari with the images and the k-means widget docked",
        description="Open napari with each IMAGE as a layer (read with OpenCV, RGB order, "
        "depth kept) and the 'K-means segmentation' widget docked. Needs the "
        "napari extra: pip install 'napari-kmeans[all]'.",
        epilog="example:\n  napari-kmeans gui sample_data/ihc_slide.png",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "images", nargs="*", type=Path, metavar="IMAGE", help="image files to open (optional)"
    )
    parser.set_defaults(run=run_gui)


def run_gui(args: argparse.Namespace) -> int:
    """Open napari; return when its window closes (1 if an image cannot be read).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (:func:`build_parser`).

    Returns
    -------
    int
        The exit status.

    Raises
    ------
    UsageError
        When napari is not installed.
    """
    try:
        from .._napari.launch import launch
    except ImportError as error:
        raise UsageError(
            f"the napari GUI is not installed ({error}): pip install 'napari-kmeans[all]'"
        ) from None
    try:
        launch(args.images)
    except ImageLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


_APPLY_DESCRIPTION = """\
Label each IMAGE with a saved model (napari-kmeans segment --save-model, or
napari_kmeans.fit(...).save): every pixel gets the model's nearest cluster, so a label means
the same colour in every output file. Writes the same files as 'segment' (<name>_labels.png,
<name>_recolored.EXT in the model's palette, <name>_clusters.json with the model's path).

A model file that is missing, corrupt or from a newer version is a usage error (exit 2). An
IMAGE that does not fit the model (other channels, dtype or colour space) is reported as
"error: <path>: <reason>" and the others are still processed. Outputs are guarded and
written as for 'segment' (--overwrite, no partial files, one run per folder). Exit status:
0 all written, 1 some input failed, 2 usage error, 130 interrupted, 143 terminated.
"""


def _add_apply_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "apply",
        help="label image files with a saved model",
        description=_APPLY_DESCRIPTION,
        epilog="examples:\n"
        "  napari-kmeans segment reference.png -k 4 --save-model stains.json\n"
        "  napari-kmeans apply --model stains.json slides/*.png --out labelled",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="MODEL.json",
        help="a model file saved by 'segment --save-model' or KMeansModel.save",
    )
    parser.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="image files of the model's kind (channels and dtype)",
    )
    parser.add_argument(
        "--mask",
        type=Path,
        default=None,
        metavar="MASK",
        help="as for 'segment': non-zero pixels are labelled, the others get "
        "label 0 and keep their value (default: no mask)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the outputs, created if missing (default: next to each input)",
    )
    _add_run_options(parser)
    parser.set_defaults(run=run_apply)


# Each function adds one subcommand; a new subcommand is one more function here.
_COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_segment_command,
    _add_apply_command,
    _add_gui_command,
)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``napari-kmeans`` parser with every subcommand of ``_COMMANDS``.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each command sets ``args.run``, the function that runs it.

    Examples
    --------
    >>> args = build_parser().parse_args(["segment", "photo.jpg", "-k", "3"])
    >>> args.command, args.n_clusters, args.run.__name__
    ('segment', 3, 'run_segment')
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Image segmentation by k-means++ clustering of pixels.",
        epilog="example:\n  napari-kmeans segment photo.jpg -k 5 --color-space lab\n\n"
        f"'{PROG} COMMAND --help' lists a command's options.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    for add_command in _COMMANDS:
        add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program's name; None: ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 if an input failed, 2 for a usage error, 130 when interrupted
        (Ctrl-C), 143 when terminated (SIGTERM).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from napari_kmeans import save_image
    >>> folder = Path(tempfile.mkdtemp())
    >>> save_image(folder / "a.png", np.array([[0, 9, 200]], np.uint8))
    >>> main(["segment", str(folder / "a.png"), "-k", "2", "--seed", "0", "--no-progress"])
    0
    >>> sorted(path.name for path in folder.iterdir())
    ['a.png', 'a_clusters.json', 'a_labels.png', 'a_recolored.png']
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return 0 if exit_.code is None else int(exit_.code)
    if not getattr(args, "no_progress", True) and sys.stderr.isatty():
        report_first_use_to(lambda stage: tqdm.write(f"{stage} ...", file=sys.stderr))
    try:
        with _sigterm_as_interrupt(args.run in (run_segment, run_apply)):
            return args.run(args)
    except UsageError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print(f"{PROG}: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        report_first_use_to(None)


@contextmanager
def _sigterm_as_interrupt(wanted: bool) -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the block: a run writing files stops as on Ctrl-C.

    Not for the GUI, whose Qt event loop would only meet the exception in some callback.
    """
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------------------
# segment


def run_segment(args: argparse.Namespace) -> int:
    """Segment every input of ``args``; exit status 1 if any failed.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (:func:`build_parser`).

    Returns
    -------
    int
        The exit status: 0 when every input succeeded, 1 if any failed.

    Raises
    ------
    UsageError
        When the command line as a whole cannot run (unsafe outputs, a bad mask, ...).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from napari_kmeans import save_image
    >>> folder = Path(tempfile.mkdtemp())
    >>> save_image(folder / "a.png", np.array([[0, 9, 200]], np.uint8))
    >>> line = ["segment", str(folder / "a.png"), "-k", "2", "--no-progress"]
    >>> run_segment(build_parser().parse_args(line))
    0
    """
    _check_budget(args)
    zarr_out = is_zarr(args.out)
    if zarr_out and len({real_path(image) for image in args.images}) != 1:
        raise UsageError(
            f"--out {args.out}: a .zarr output holds the labels of one IMAGE; "
            "give a folder for several"
        )
    if zarr_out and not (is_zarr(args.images[0]) or _is_tiff(args.images[0])):
        raise UsageError(
            f"--out {args.out}: a .zarr output holds labels read chunk by chunk from a TIFF "
            f"or Zarr IMAGE; {args.images[0]} is neither: give a folder"
        )
    if args.save_model is not None and len({real_path(image) for image in args.images}) != 1:
        raise UsageError(
            f"--save-model {args.save_model}: a model is fitted on one IMAGE; "
            "save it from one and label the others with 'napari-kmeans apply'"
        )
    if args.min_size is not None and (zarr_out or any(is_zarr(i) for i in args.images)):
        raise UsageError(
            f"--min-size {args.min_size}: components can span any number of chunks, so Zarr "
            "inputs and a .zarr --out (segmented chunk by chunk) cannot use it"
        )
    jobs = plan_outputs(args.images, args.out.parent if zarr_out else args.out)
    if zarr_out:
        jobs = [Job(jobs[0].image, args.out.with_suffix(""))]

    def lazy_labels(job: Job) -> Path | None:
        if zarr_out:
            return args.out
        return lazy_labels_path(job) if is_zarr(job.image) else None

    out_dir = args.out.parent if zarr_out else args.out
    inputs = _inputs(jobs, args)
    guard_outputs(jobs, lazy_labels, inputs, args.save_model, args.overwrite, out_dir)
    prepare_out_dir(out_dir)
    folders = [job.prefix.parent for job in jobs] + (
        [] if args.save_model is None else [args.save_model.parent]
    )

    def process(job: Job) -> None:
        with Staged(overwrite=args.overwrite) as outputs:
            if lazy_labels(job) is not None:
                seg = segment_lazily(job, args, mask, outputs, lazy_labels(job))
            else:
                image, seg, labels_axes = segment_file(job.image, args, mask)
                check = None
                if args.cross_check:
                    if "frames" in seg.params:
                        raise ValueError(
                            "--cross-check compares one image: with --spatial-weight, each "
                            "time point (T) of this file is an image of its own"
                        )
                    check = cross_check(image.data, seg, seed=args.seed or 0)
                write_outputs(job, seg, check, outputs, axes=(image, labels_axes))
            if args.save_model is not None:
                save_model(seg.model, outputs.path(args.save_model))

    with folders_held(folders, out_dir):
        mask = None if args.mask is None else load_mask(args.mask, args.max_pixels)
        return run_jobs("segment", jobs, process, args.no_progress)


def run_apply(args: argparse.Namespace) -> int:
    """Label every input of ``args`` with the model of ``args.model``; 1 if any failed.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (:func:`build_parser`).

    Returns
    -------
    int
        The exit status: 0 when every input succeeded, 1 if any failed.

    Raises
    ------
    UsageError
        When the model cannot be read or the command line as a whole cannot run.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import napari_kmeans as nk
    >>> folder = Path(tempfile.mkdtemp())
    >>> image = np.array([[0, 9, 200]], np.uint8)
    >>> nk.save_image(folder / "a.png", image)
    >>> nk.fit(image, 2, seed=0).save(folder / "m.json")
    >>> line = ["apply", "--model", str(folder / "m.json"), str(folder / "a.png"), "--no-progress"]
    >>> run_apply(build_parser().parse_args(line))
    0
    """
    _check_budget(args)
    try:
        model = load_model(args.model)
    except ModelFileError as error:  # missing, unreadable, corrupt or newer; names the file
        raise UsageError(f"--model: {error}") from None
    jobs = plan_outputs(args.images, args.out)
    guard_outputs(jobs, lambda job: None, _inputs(jobs, args), None, args.overwrite)
    prepare_out_dir(args.out)
    channel_axis = model.channel_axis

    def process(job: Job) -> None:
        image = load_image(job.image, max_pixels=args.max_pixels)
        image_mask = None if mask is None else mask_for(mask, image, channel_axis)
        try:
            seg = model.predict(image, mask=image_mask)
        except ValueError as error:
            raise ValueError(f"does not fit the model {args.model}: {error}") from None
        with Staged(overwrite=args.overwrite) as outputs:
            write_outputs(job, seg, None, outputs, model=args.model)

    with folders_held([job.prefix.parent for job in jobs], args.out):
        mask = None if args.mask is None else load_mask(args.mask, args.max_pixels)
        return run_jobs("apply", jobs, process, args.no_progress)


def _check_budget(args: argparse.Namespace) -> None:
    """Refuse a bad pixel budget (option or environment variable) once, before any work."""
    try:
        pixel_budget(args.max_pixels)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def _inputs(jobs: list[Job], args: argparse.Namespace) -> list[tuple[Path, str]]:
    """Every file the run reads, with the option that names it."""
    # a folder that is not a Zarr store is refused when loaded: nothing is read from it
    inputs = [(job.image, "IMAGE") for job in jobs if is_zarr(job.image) or not job.image.is_dir()]
    if args.mask is not None:
        inputs.append((args.mask, "--mask"))
    if getattr(args, "model", None) is not None:
        inputs.append((args.model, "--model"))
    return inputs


if __name__ == "__main__":
    sys.exit(main())
