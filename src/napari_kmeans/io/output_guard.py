"""Refuse, before any work, a command whose outputs would replace or hold what it reads.

The command line plans every output path first; :func:`check_outputs` then refuses (with the
path named) any output that is an input, lies inside an input (a Zarr store is a folder), or
would replace a folder holding an input; two outputs of one run at the same path; and an
existing file unless the user said ``--overwrite``. Paths are compared after resolving
symbolic links, so a link cannot smuggle an input in.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> check_outputs([(folder / "a_labels.png", "labels of a.png")], [(folder / "a.png", "IMAGE")])
>>> check_outputs([(folder / "a.png", "labels of b.png")], [(folder / "a.png", "IMAGE")])
Traceback (most recent call last):
...
napari_kmeans.io.output_guard.OutputConflict: ... would replace the IMAGE ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["OutputConflict", "check_outputs", "real_path"]


class OutputConflict(Exception):
    """An output of the planned run conflicts with an input, another output or a file.

    Examples
    --------
    >>> a = Path("/data/a.png")
    >>> check_outputs([(a, "the labels")], [(a, "IMAGE")])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_kmeans.io.output_guard.OutputConflict: ...
    """


def real_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` absolute with symbolic links resolved, also for paths that do not exist.

    Unlike ``Path.resolve`` on Python 3.11, a symbolic-link loop does not raise here (the
    loop is reported later, when the file is opened).

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    pathlib.Path
        The absolute, resolved path.

    Examples
    --------
    >>> real_path("/") == Path("/")
    True
    """
    return Path(os.path.realpath(path))


def check_outputs(
    outputs: Iterable[tuple[Path, str]],
    inputs: Iterable[tuple[Path, str]],
    *,
    existing_checked: Iterable[Path] = (),
    overwrite: bool = False,
) -> None:
    """Raise :class:`OutputConflict` naming the path if the planned outputs are unsafe.

    Parameters
    ----------
    outputs : iterable of (Path, str)
        Every path the run may write, with what it is ("an output of a.png").
    inputs : iterable of (Path, str)
        Every path the run reads, with what it is ("IMAGE", "--mask", "--model").
    existing_checked : iterable of Path
        The outputs that are certainly written (not alternatives that depend on the image):
        each must not exist yet unless ``overwrite``.
    overwrite : bool
        Whether existing files at ``existing_checked`` may be replaced.

    Raises
    ------
    OutputConflict
        If an output is an input, inside an input or a folder holding one; if two outputs
        share a path; if a certain output exists and ``overwrite`` is False.

    Examples
    --------
    >>> check_outputs([(Path("/data/out/a.tif"), "the labels")], [(Path("/data/a.png"), "IMAGE")])
    """
    real_inputs = {real_path(path): (path, what) for path, what in inputs}
    seen: dict[Path, tuple[Path, str]] = {}
    for output, what in outputs:
        real = real_path(output)
        for real_input, (path, kind) in real_inputs.items():
            if real == real_input:
                raise OutputConflict(f"{output} ({what}) would replace the {kind} {path}")
            if real_input.is_relative_to(real):
                raise OutputConflict(
                    f"{output} ({what}) would replace a folder holding the {kind} {path}"
                )
            if real.is_relative_to(real_input):
                raise OutputConflict(f"{output} ({what}) would be written inside the {kind} {path}")
        if real in seen:
            first, first_what = seen[real]
            raise OutputConflict(f"{output} ({what}) and {first} ({first_what}) are the same path")
        seen[real] = (output, what)
    if overwrite:
        return
    existing = [str(path) for path in existing_checked if os.path.lexists(path)]
    if existing:
        listed = ", ".join(existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        )
        raise OutputConflict(
            f"{listed} already exist{'s' if len(existing) == 1 else ''}: nothing was written; "
            "use --overwrite to replace, or --out to write elsewhere"
        )
