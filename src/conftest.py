"""Doctest collection under src/ (``--doctest-modules`` is in pyproject's pytest options).

A module whose optional dependency is not installed (napari for ``_napari/``, dask for the
dask paths, ...) is not collected, so the base package's doctests still run without the
extras. Any other import error is a real one and fails the collection.
"""

from __future__ import annotations

import importlib
from pathlib import Path

SRC = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Skip a module under src/ when importing it needs a package that is not installed."""
    if collection_path.suffix != ".py" or collection_path == Path(__file__).resolve():
        return None
    parts = collection_path.resolve().relative_to(SRC).with_suffix("").parts
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in ("", "napari_kmeans"):
            return True
        raise
    return None
