"""Where this napari session keeps results too large for memory: one temporary folder.

Created on first use (``tempfile.mkdtemp``) and removed when Python exits; each result gets
a new Zarr group in it, never reused.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from pathlib import Path

_folder: Path | None = None


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def new_store(name: str = "labels") -> Path:
    """Return the path of a new (not yet created) Zarr store in the session's folder.

    Examples
    --------
    >>> new_store().parent == new_store().parent
    True
    """
    global _folder
    if _folder is None or not _folder.exists():
        _folder = Path(tempfile.mkdtemp(prefix="napari-kmeans-"))
        atexit.register(_remove, _folder)
    return _folder / f"{name}-{uuid.uuid4().hex}.zarr"
