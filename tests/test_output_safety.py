"""What the command may replace, and when: one image's files all or none, ``--overwrite``
only over what this tool writes, one run per output folder, SIGTERM like Ctrl-C.

Each run goes through ``main`` in-process, or in a child process where a signal or a second
concurrent run is needed; outputs are read back with OpenCV and zarr directly.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from napari_kmeans.io.safe_files import Staged  # noqa: E402
from test_cli import (  # noqa: E402
    _PAUSE_AFTER_FIRST_FILE,
    _child,
    _wait_for,
    blobs,
    listing,
    read,
    run,
    summary,
    write,
)

LOCK = ".napari-kmeans.lock"


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (folders as None)."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


# ---------------------------------------------------------------- one image: all or none


def test_a_folder_where_an_output_goes_is_refused_before_anything_is_replaced(tmp_path, capsys):
    image = write(tmp_path / "a.png", blobs())
    out = tmp_path / "o"
    assert run(capsys, image, "-k", "3", "--out", out)[0] == 0
    (out / "a_recolored.png").unlink()
    (out / "a_recolored.png").mkdir()
    before = contents(tmp_path)
    code, captured = run(capsys, image, "-k", "5", "--out", out, "--overwrite")
    assert code == 2, captured.err
    assert f"{out / 'a_recolored.png'} is a folder" in captured.err
    assert contents(tmp_path) == before
    assert summary(out / "a_clusters.json")["params"]["n_clusters"] == 3
    assert read(out / "a_labels.png").max() == 3


def test_a_commit_that_fails_halfway_puts_every_old_file_back(tmp_path, monkeypatch):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text("old " + name)
    real_rename, real_replace = os.rename, os.replace

    def failing(move):
        def move_or_fail(source, destination, *args, **kwargs):
            if Path(destination).name == "c.txt" and ".partial" in Path(source).name:
                raise OSError(errno.EIO, "Input/output error", str(destination))
            return move(source, destination, *args, **kwargs)

        return move_or_fail

    monkeypatch.setattr(os, "rename", failing(real_rename))
    monkeypatch.setattr(os, "replace", failing(real_replace))
    with pytest.raises(OSError, match="Input/output error"):
        with Staged(overwrite=True) as outputs:
            for name in ("a.txt", "b.txt", "c.txt"):
                outputs.path(tmp_path / name).write_text("new " + name)
    monkeypatch.undo()
    assert contents(tmp_path) == {n: b"old " + n.encode() for n in ("a.txt", "b.txt", "c.txt")}


def test_a_destination_that_became_a_folder_fails_the_commit_before_any_rename(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(IsADirectoryError, match="b.txt"):
        with Staged(overwrite=True) as outputs:
            outputs.path(tmp_path / "a.txt").write_text("new")
            outputs.path(tmp_path / "b.txt").write_text("new")
            (tmp_path / "b.txt").mkdir()
    assert (tmp_path / "a.txt").read_text() == "old"
    assert listing(tmp_path) == ["a.txt", "b.txt"]


def test_temporary_names_stay_within_the_file_name_limit(tmp_path, capsys):
    stem = "s" * 230  # outputs: 230 + len("_recolored.png") = 244 bytes, legal
    image = write(tmp_path / f"{stem}.png", blobs())
    code, captured = run(capsys, image, "-k", "2")
    assert code == 0, captured.err
    assert (tmp_path / f"{stem}_recolored.png").exists()
    name = Staged().path(tmp_path / ("é" * 127 + ".png")).name  # 254 bytes of UTF-8
    assert len(os.fsencode(name)) <= 255 and name.endswith(".partial.png")


# ---------------------------------------------------------------- --overwrite: ours only


def test_overwrite_never_replaces_a_folder_that_is_not_our_labels_store(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    stack = np.stack([blobs(dtype=np.uint16, channels=1, seed=s) for s in range(2)])
    zarr.create_array(tmp_path / "in.zarr", data=stack, chunks=(1, 6, 16))
    project = tmp_path / "project.zarr"
    zarr.create_array(project / "other", data=np.full((3, 3), 7, np.uint8))
    (project / "notes").mkdir()
    (project / "notes" / "lab_notebook.txt").write_text("keep me")
    before = contents(tmp_path)
    code, captured = run(capsys, tmp_path / "in.zarr", "-k", "3", "--out", project, "--overwrite")
    assert code == 2, captured.err
    assert f"{project} is not a labels store written by napari-kmeans" in captured.err
    assert contents(tmp_path) == before


def test_overwrite_replaces_a_labels_store_of_an_earlier_run(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    stack = np.stack([blobs(dtype=np.uint16, channels=1, seed=s) for s in range(2)])
    zarr.create_array(tmp_path / "in.zarr", data=stack, chunks=(1, 6, 16))
    out = tmp_path / "labels.zarr"
    assert run(capsys, tmp_path / "in.zarr", "-k", "2", "--out", out)[0] == 0
    assert zarr.open_group(out)["0"][:].max() == 2
    code, captured = run(capsys, tmp_path / "in.zarr", "-k", "3", "--out", out, "--overwrite")
    assert code == 0, captured.err
    assert zarr.open_group(out)["0"][:].max() == 3
    # a file dropped into our store makes it someone's folder: refused
    (out / "notes.txt").write_text("mine")
    code, captured = run(capsys, tmp_path / "in.zarr", "-k", "2", "--out", out, "--overwrite")
    assert code == 2 and "is not a labels store written by napari-kmeans" in captured.err
    assert (out / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------- one run per folder


def test_a_second_run_on_a_folder_in_use_is_refused_until_the_first_ends(tmp_path, capsys):
    image = write(tmp_path / "x.png", blobs())
    out = tmp_path / "out"
    first = _child(_PAUSE_AFTER_FIRST_FILE, "segment", str(image), "-k", "3", "--out", str(out))
    _wait_for(first, "WROTE")
    code, captured = run(capsys, image, "-k", "6", "--out", out, "--overwrite")
    assert code == 2, captured.err
    assert f"{out}: another napari-kmeans run (process {first.pid})" in captured.err
    assert [p for p in listing(out) if "partial" not in p] == [LOCK]
    first.send_signal(signal.SIGKILL)  # the kernel releases a killed run's lock
    first.communicate(timeout=60)
    code, captured = run(capsys, image, "-k", "6", "--out", out, "--overwrite")
    assert code == 0, captured.err
    assert read(out / "x_labels.png").max() == 6
    assert summary(out / "x_clusters.json")["params"]["n_clusters"] == 6
    assert LOCK not in listing(out)


# ---------------------------------------------------------------- SIGTERM like Ctrl-C


def test_sigterm_leaves_no_partial_output_and_exits_143(tmp_path):
    write(tmp_path / "x.png", blobs())
    child = _child(_PAUSE_AFTER_FIRST_FILE, "segment", str(tmp_path / "x.png"), "-k", "2")
    _wait_for(child, "WROTE")
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert listing(tmp_path) == ["x.png"]  # no temporary file, no lock


def test_a_file_name_that_is_not_utf8_gets_its_outputs_and_a_valid_summary(tmp_path, capsys):
    name = os.fsdecode(b"caf\xe9.png")
    image = write(tmp_path / name, blobs())
    code, captured = run(capsys, image, "-k", "2")
    assert code == 0, captured.err
    record = json.loads((tmp_path / os.fsdecode(b"caf\xe9_clusters.json")).read_bytes())
    assert os.fsencode(record["input"]) == os.fsencode(image)


# ---------------------------------------------------------------- planning: linear


def test_planning_and_checking_thousands_of_outputs_takes_linear_time(tmp_path):
    from napari_kmeans.cli.batch import guard_outputs, plan_outputs

    # 2,000 images in 40 folders, same names in each: the checks compared every output with
    # every input (1,000 images took 77 s here); now each path is looked up by its folders
    images = [tmp_path / f"d{i % 40}" / f"img{i // 40}.png" for i in range(2000)]
    started = time.perf_counter()
    jobs = plan_outputs(images, tmp_path / "out")
    guard_outputs(jobs, lambda job: None, [(job.image, "IMAGE") for job in jobs], None, False)
    assert time.perf_counter() - started < 20
    assert len({job.prefix for job in jobs}) == 2000
