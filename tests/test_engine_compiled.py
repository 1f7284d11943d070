"""numba loads on first kernel use; the first use is reported; forks wait for the compiler."""

import multiprocessing
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans.engine import compiled
from napari_kmeans.progress import LLOYD, PREPARING


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_help_and_reader_do_not_load_numba(tmp_path):
    image = tmp_path / "a.png"
    nk.save_image(image, np.zeros((2, 2), np.uint8))
    out = run_python(
        f"""
        import contextlib, io, sys
        import napari_kmeans
        from napari_kmeans._napari.reader import get_reader
        from napari_kmeans.cli.command import main
        with contextlib.redirect_stdout(io.StringIO()):
            main(["--help"])
            main(["segment", "--help"])
        get_reader({str(image)!r})
        print("numba" in sys.modules)
        """
    )
    assert out == "False"


def test_first_use_is_reported_once_per_kind(monkeypatch):
    monkeypatch.setattr(compiled, "_prepared", set())
    X = np.random.default_rng(0).normal(size=(500, 2))
    seen = []

    def progress(stage, done, total):
        seen.append((stage, done, total))

    nk.kmeans(X, 3, seed=0, progress=progress)
    assert seen[0] == (PREPARING, 0, 1)
    assert seen.index((PREPARING, 1, 1)) < seen.index(next(s for s in seen if s[0] == LLOYD))
    seen.clear()
    nk.kmeans(X, 3, seed=1, progress=progress)
    assert PREPARING not in {stage for stage, _, _ in seen}
    seen.clear()
    nk.kmeans(X, 12, seed=1, progress=progress)  # Lloyd with bounds: other kernels
    assert seen[0] == (PREPARING, 0, 1)


def test_cancel_while_preparing_propagates_and_prepares_again(monkeypatch):
    monkeypatch.setattr(compiled, "_prepared", set())
    X = np.random.default_rng(0).normal(size=(200, 2))

    class Cancelled(Exception):
        pass

    def cancel(stage, done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        nk.kmeans(X, 2, seed=0, progress=cancel)
    seen = []
    nk.kmeans(X, 2, seed=0, progress=lambda *report: seen.append(report))
    assert seen[0] == (PREPARING, 0, 1)


def test_notice_for_callers_without_progress(monkeypatch):
    monkeypatch.setattr(compiled, "_prepared", set())
    notices = []
    compiled.report_first_use_to(notices.append)
    try:
        nk.kmeans(np.arange(10.0)[:, None], 2, seed=0)
        nk.kmeans(np.arange(10.0)[:, None], 2, seed=0)
    finally:
        compiled.report_first_use_to(None)
    assert notices == [PREPARING]


def _compile_in_child(queue):
    import numba

    @numba.njit
    def add_one(x):
        return x + 1

    queue.put(add_one(1))


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_fork_while_another_thread_compiles_does_not_hang_the_child():
    from numba.core.compiler_lock import global_compiler_lock

    nk.kmeans(np.arange(10.0)[:, None], 2, seed=0)  # kernels loaded: forks are guarded
    held = threading.Event()

    def compile_for_a_while():
        with global_compiler_lock:
            held.set()
            time.sleep(1.0)

    thread = threading.Thread(target=compile_for_a_while)
    thread.start()
    held.wait()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_compile_in_child, args=(queue,))
    child.start()  # waits for the compiler, then forks
    child.join(timeout=120)
    thread.join()
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail("the child hung on numba's compiler lock")
    assert queue.get(timeout=5) == 2


@pytest.mark.slow
def test_after_warm_up_the_usual_segmentations_compile_nothing():
    out = run_python(
        """
        import numpy as np
        from numba.core import event
        import napari_kmeans as nk

        compiles = []

        class Count(event.Listener):
            def on_start(self, ev):
                compiles.append(ev.data["dispatcher"].py_func.__name__)

            def on_end(self, ev):
                pass

        nk.warm_up()
        event.register("numba:compile", Count())
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
        for k in (4, 12):
            nk.segment(rgb, n_clusters=k, seed=0)
        nk.segment(rgb.astype(np.float32) / 255, n_clusters=4, seed=0)
        nk.segment(rgb[..., 0], n_clusters=4, seed=0, method="optimal")
        nk.segment(rgb, n_clusters=4, seed=0, spatial_weight=0.5)
        nk.segment(rgb, n_clusters=12, seed=0, spatial_weight=0.5)
        print(sorted(set(compiles)))
        """
    )
    assert out == "[]"
