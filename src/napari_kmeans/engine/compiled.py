"""The compiled kernels, loaded on first use, and getting them ready before the real work.

Importing numba and compiling (or loading from its disk cache) the kernels costs from a
fraction of a second to seconds: none of that happens at ``import napari_kmeans``. The
first engine call of a kind of rows in a process runs a tiny problem of the same kinds
first (:func:`prepare`), reported as the stage ``PREPARING``, so the user sees what the wait
is for and Cancel works between kernels; :func:`warm_up` does it ahead of time for the
usual kinds (the napari widget calls it in a thread when it opens).

A fork while another thread compiles would leave the child with numba's compiler lock held
forever: every fork waits for the compiler and the child gets the lock released.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable
from types import ModuleType

import numpy as np

from ..progress import PREPARING, ProgressCallback, report

__all__ = [
    "kernels",
    "kernels_1d",
    "prepare",
    "report_first_use_to",
    "start_warm_up",
    "warm_up",
]


class _OnFirstUse:
    """A module imported when one of its attributes is first read."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str):
        if self._module is None:
            self._module = importlib.import_module(f".{self._name}", __package__)
            _guard_forks()
        return getattr(self._module, attribute)


kernels = _OnFirstUse("kernels")
kernels_1d = _OnFirstUse("kernels_1d")

_guarded = False


def _guard_forks() -> None:
    """Hold numba's compiler lock across every fork (see the module docstring)."""
    global _guarded
    if _guarded or not hasattr(os, "register_at_fork"):
        return
    _guarded = True
    from numba.core.compiler_lock import global_compiler_lock

    os.register_at_fork(
        before=global_compiler_lock.acquire,
        after_in_parent=global_compiler_lock.release,
        after_in_child=global_compiler_lock.release,
    )


_prepared: set[tuple] = set()
_prepared_lock = threading.RLock()
_notice: Callable[[str], object] | None = None


def report_first_use_to(notice: Callable[[str], object] | None) -> None:
    """Call ``notice(PREPARING)`` when the engine prepares for a caller with no progress.

    The command line uses it to print the stage under its own progress bar.

    Parameters
    ----------
    notice : callable or None
        ``notice(stage)``; None: no notice.

    Examples
    --------
    >>> report_first_use_to(None)
    """
    global _notice
    _notice = notice


def _kind(rows) -> tuple:
    """Return what decides which compiled variants a pass over ``rows`` uses."""
    from .grid_rows import GridRows

    if isinstance(rows, GridRows):
        values = rows.values
        order = "C" if values.flags.c_contiguous else "F" if values.flags.f_contiguous else "A"
        return ("grid", values.dtype.str, order, rows.pixels is None, np.dtype(rows.dtype).str)
    order = "C" if rows.flags.c_contiguous else "F" if rows.flags.f_contiguous else "A"
    return ("rows", rows.dtype.str, order)


def _tiny(kind: tuple, n: int = 40, d: int = 2):
    """``n`` distinct rows of ``kind`` (see ``_kind``), as ``(n, d)`` rows."""
    from .grid_rows import GridRows

    base = np.stack([np.arange(n) % 7, np.arange(n) // 7], axis=1)[:, :d]
    if kind[0] == "rows":
        return np.asarray(base, dtype=kind[1], order=kind[2])
    _, dtype, order, every_pixel, feature_dtype = kind
    values = np.asarray(base[:, :1], dtype=dtype, order=order)
    pixels = None if every_pixel else np.arange(n, dtype=np.int64)
    axis_values = (np.arange(n, dtype=np.float64),)
    return GridRows(values, pixels, (n,), axis_values, np.dtype(feature_dtype))


def _quiet(progress: ProgressCallback | None) -> ProgressCallback | None:
    """Every report of the tiny run as the stage ``PREPARING`` (so Cancel still works)."""
    if progress is None:
        return None
    return lambda stage, done, total: report(progress, PREPARING, 0, 1)


def prepare(progress: ProgressCallback | None, what: str, rows, n_clusters: int = 2) -> None:
    """Get the kernels ``what`` needs on ``rows`` ready, once per process and kind.

    Parameters
    ----------
    progress : callable or None
        ``progress(stage, done, total)``, told ``PREPARING`` when there is work to do.
    what : {"kmeans", "nearest", "optimal"}
        The engine call about to run.
    rows : numpy.ndarray or GridRows
        Its rows (only their kind is read).
    n_clusters : int
        Its number of clusters (Lloyd keeps bounds above ``lloyd.SCAN_UP_TO``).

    Examples
    --------
    >>> prepare(None, "nearest", np.zeros((3, 2)))
    """
    from .lloyd import SCAN_UP_TO

    kind = _kind(rows)
    key = (what, kind, what == "kmeans" and n_clusters > SCAN_UP_TO)
    with _prepared_lock:
        if key in _prepared:
            return
        _prepared.add(key)  # first: the tiny run below calls prepare too
        try:
            report(progress, PREPARING, 0, 1)
            if progress is None and _notice is not None:
                _notice(PREPARING)
            _run_tiny(what, kind, 9 if key[2] else 2, _quiet(progress))
        except BaseException:
            _prepared.discard(key)
            raise
    report(progress, PREPARING, 1, 1)


def _run_tiny(what: str, kind: tuple, n_clusters: int, progress) -> None:
    from .distances import nearest_with_sqdist
    from .kmeans import kmeans
    from .optimal1d import optimal_kmeans_1d

    rows = _tiny(kind)
    if what == "kmeans":
        kmeans(rows, n_clusters, n_init=1, seed=0, progress=progress)
        if kind[0] == "grid":  # many rows: the sample starts are plain rows
            kmeans(_tiny(("rows", kind[4], "C")), n_clusters, n_init=1, seed=0, progress=progress)
    elif what == "nearest":
        nearest_with_sqdist(rows, np.zeros((n_clusters, rows.shape[1])))
    else:
        optimal_kmeans_1d(np.arange(8.0), np.ones(8), n_clusters, progress=progress)


def warm_up(progress: ProgressCallback | None = None) -> None:
    """Compile (or load from numba's cache) the kernels of the usual segmentations.

    Grey and colour images of 8 and 16 bits and float images, k-means at few and many
    clusters, the exact 1-D method, x/y features: the first segmentation of such an image
    then starts at once. Safe to call from a thread; calling it again costs nothing.

    Parameters
    ----------
    progress : callable, optional
        ``progress(stage, done, total)``; raise in it to stop.

    Examples
    --------
    >>> warm_up()
    """
    float32, float64 = ("rows", "<f4", "C"), ("rows", "<f8", "C")
    plan: list[tuple[str, tuple, int]] = [("kmeans", float32, 2), ("kmeans", float32, 9)]
    plan += [("nearest", float32, 2)]
    plan += [("kmeans", float64, 2), ("kmeans", float64, 9), ("nearest", float64, 2)]
    plan += [("optimal", float64, 2)]
    for pixel_dtype in ("|u1", "<u2", "<f4"):
        grid = ("grid", pixel_dtype, "C", True, "<f4")
        plan += [("kmeans", grid, 2), ("kmeans", grid, 9)]
    for step, (what, kind, n_clusters) in enumerate(plan):
        report(progress, PREPARING, step, len(plan))
        prepare(_quiet(progress), what, _tiny(kind), n_clusters)
    from .distances import label_sums

    label_sums(np.zeros((2, 3), np.uint8), np.zeros(2, np.int32), None, 1)  # palettes
    report(progress, PREPARING, len(plan), len(plan))


_warm_up_thread: threading.Thread | None = None


def start_warm_up() -> threading.Thread:
    """Start :func:`warm_up` in a background thread, once per process; return the thread.

    For an interactive session (the napari widget calls it when it opens): the first Run
    then finds the engine ready or nearly so. Errors are left for the real call to meet.

    Returns
    -------
    threading.Thread
        The daemon thread doing it.

    Examples
    --------
    >>> start_warm_up().join()
    """
    global _warm_up_thread
    with _prepared_lock:
        if _warm_up_thread is None:

            def body() -> None:
                with contextlib.suppress(Exception):  # the real call reports any error itself
                    warm_up()

            _warm_up_thread = threading.Thread(target=body, name="nk-warm-up", daemon=True)
            _warm_up_thread.start()
        return _warm_up_thread
