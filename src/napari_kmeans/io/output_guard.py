"""Refuse, before any work, a command whose outputs would replace or hold what it reads.

The command line plans every output path first; :func:`check_outputs` then refuses (with the
path named) any output that is an input, lies inside an input (a Zarr store is a folder), or
would replace a folder holding an input; two outputs of one run at the same path; a folder
where an output file goes, or anything but a labels store of this tool where a store goes
(even with ``--overwrite``); and an existing file unless the user said ``--overwrite``.
Paths are compared after resolving symbolic links, so a link cannot smuggle an input in.

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

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "LABELS_STORE_ATTRIBUTE",
    "OutputConflict",
    "check_outputs",
    "is_labels_store",
    "real_path",
]


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
    stores: Iterable[Path] = (),
    overwrite: bool = False,
) -> None:
    """Raise :class:`OutputConflict` naming the path if the planned outputs are unsafe.

    Linear in the number of paths (times their depth): each output's folders are looked up
    among the inputs, and each input's folders among the outputs.

    Parameters
    ----------
    outputs : iterable of (Path, str)
        Every path the run may write, with what it is ("an output of a.png").
    inputs : iterable of (Path, str)
        Every path the run reads, with what it is ("IMAGE", "--mask", "--model").
    existing_checked : iterable of Path
        The outputs that are certainly written (not alternatives that depend on the image):
        each must not exist yet unless ``overwrite``.
    stores : iterable of Path
        The outputs that are Zarr labels stores (folders); every other output is a file.
    overwrite : bool
        Whether existing files at ``existing_checked`` may be replaced.

    Raises
    ------
    OutputConflict
        If an output is an input, inside an input or a folder holding one; if two outputs
        share a path; if a certain output exists and ``overwrite`` is False; if a folder
        stands where a file output goes, or a store output's path holds anything but a
        labels store written by napari-kmeans (:func:`is_labels_store`).

    Examples
    --------
    >>> check_outputs([(Path("/data/out/a.tif"), "the labels")], [(Path("/data/a.png"), "IMAGE")])
    """
    real_inputs = {real_path(path): (path, what) for path, what in inputs}
    holders: dict[Path, tuple[Path, str]] = {}  # each folder above an input: that input
    for real_input, item in real_inputs.items():
        for folder in real_input.parents:
            holders.setdefault(folder, item)
    store_set = {real_path(path) for path in stores}
    seen: dict[Path, tuple[Path, str]] = {}
    for output, what in outputs:
        real = real_path(output)
        if real in real_inputs:
            path, kind = real_inputs[real]
            raise OutputConflict(f"{output} ({what}) would replace the {kind} {path}")
        if real in holders:
            path, kind = holders[real]
            raise OutputConflict(
                f"{output} ({what}) would replace a folder holding the {kind} {path}"
            )
        for folder in real.parents:
            if folder in real_inputs:
                path, kind = real_inputs[folder]
                raise OutputConflict(f"{output} ({what}) would be written inside the {kind} {path}")
        if real in seen:
            first, first_what = seen[real]
            raise OutputConflict(f"{output} ({what}) and {first} ({first_what}) are the same path")
        seen[real] = (output, what)
        _check_replaceable(output, what, real in store_set)
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


def _check_replaceable(output: Path, what: str, store: bool) -> None:
    """Refuse an existing path that this tool could not have written where ``output`` goes."""
    if not os.path.lexists(output):
        return
    folder = os.path.isdir(output) and not os.path.islink(output)
    if store and not is_labels_store(output):
        raise OutputConflict(
            f"{output} is not a labels store written by napari-kmeans, where {what} goes: "
            "--overwrite replaces only those; move it, or choose another --out"
        )
    if folder and not store:
        raise OutputConflict(
            f"{output} is a folder, where {what} goes: napari-kmeans replaces only files it "
            "writes; move it, or write elsewhere with --out"
        )


#: The attribute that marks a Zarr store as labels written by napari-kmeans.
LABELS_STORE_ATTRIBUTE = {"napari-kmeans": "labels"}
# what a Zarr array store holds: metadata (v3, v2) and chunks ("c/0/1" in v3, "0.1" or
# "0/1" in v2)
# metadata and chunks, at the top or in the numbered levels of a multiscale store
_STORE_ENTRY = re.compile(r"(\d+/)*(zarr\.json|\.zarray|\.zattrs|\.zgroup|c(/\d+)+|\d+([./]\d+)*)")


def is_labels_store(path: str | os.PathLike[str]) -> bool:
    """Tell whether ``path`` is a Zarr labels store written by napari-kmeans, and only that.

    Such a store carries :data:`LABELS_STORE_ATTRIBUTE` in its metadata (Zarr v3
    ``zarr.json`` or v2 ``.zattrs``) and holds nothing but metadata and chunks; a folder
    holding anything else (another array, notes) is someone's, never replaced.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    bool
        True for a labels store of this tool.

    Examples
    --------
    >>> import tempfile
    >>> is_labels_store(tempfile.mkdtemp())
    False
    """
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    attributes = {}
    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        try:
            document = json.loads((path / name).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict):
            found = document.get(key, {}) if key else document
            attributes.update(found if isinstance(found, dict) else {})
    if any(attributes.get(key) != value for key, value in LABELS_STORE_ATTRIBUTE.items()):
        return False
    for folder, subfolders, files in os.walk(path):
        for name in files + [d for d in subfolders if os.path.islink(Path(folder) / d)]:
            entry = (Path(folder) / name).relative_to(path).as_posix()
            if not _STORE_ENTRY.fullmatch(entry):
                return False
    return True
