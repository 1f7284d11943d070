"""Command lines that cannot succeed are refused before any work, with a message naming the
option, the value and what is allowed (exit status 2); inputs too large are refused from their
shape before anything is read.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import napari_kmeans as nk  # noqa: E402
import napari_kmeans.cli.batch as batch  # noqa: E402
from test_cli import blobs, listing, run, write  # noqa: E402


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the run decodes or segments anything."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work was done before the refusal")

    monkeypatch.setattr(batch, "load_image", forbidden)
    monkeypatch.setattr(batch, "segment", forbidden)


def test_more_clusters_than_a_label_file_holds_is_refused_up_front(tmp_path, capsys, no_work):
    image = write(tmp_path / "x.png", blobs())
    code, out = run(capsys, image, "-k", "65536")
    assert code == 2, out.err
    assert "65536 is not allowed" in out.err and "65535" in out.err and "-k" in out.err
    assert listing(tmp_path) == ["x.png"]


def test_a_spatial_weight_that_overflows_is_refused_naming_the_option(tmp_path, capsys, no_work):
    image = write(tmp_path / "x.png", blobs())
    code, out = run(capsys, image, "-k", "2", "--spatial-weight", "1e300")
    assert code == 2, out.err
    assert "--spatial-weight" in out.err and "'1e300' is not allowed" in out.err
    assert "NaN" not in out.err and "Warning" not in out.err


def test_a_zarr_out_for_an_image_that_is_not_read_lazily_is_a_usage_error(
    tmp_path, capsys, no_work
):
    image = write(tmp_path / "x.png", blobs())
    code, out = run(capsys, image, "-k", "2", "--out", tmp_path / "x.zarr")
    assert code == 2, out.err
    assert f"--out {tmp_path / 'x.zarr'}" in out.err and "TIFF or Zarr" in out.err
    assert listing(tmp_path) == ["x.png"]


def test_save_model_in_the_out_folder_the_run_creates(tmp_path, capsys):
    image = write(tmp_path / "x.png", blobs())
    new = tmp_path / "new"
    code, out = run(capsys, image, "-k", "2", "--out", new, "--save-model", new / "m.json")
    assert code == 0, out.err
    assert nk.load_model(new / "m.json").n_clusters == 2


def test_a_bad_pixel_budget_variable_is_one_usage_error(tmp_path, capsys, monkeypatch, no_work):
    images = [write(tmp_path / f"{name}.png", blobs()) for name in "abc"]
    monkeypatch.setenv("NAPARI_KMEANS_MAX_PIXELS", "abc")
    code, out = run(capsys, *images, "-k", "2")
    assert code == 2, out.err
    assert out.err.count("NAPARI_KMEANS_MAX_PIXELS='abc' is not allowed") == 1


def test_a_symbolic_link_loop_as_out_is_named_as_such(tmp_path, capsys, no_work):
    image = write(tmp_path / "x.png", blobs())
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    code, out = run(capsys, image, "-k", "2", "--out", loop)
    assert code == 2, out.err
    assert f"--out {loop}" in out.err and "symbolic-link loop" in out.err
    assert "File exists" not in out.err


def test_an_out_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, no_work):
    image = write(tmp_path / "x.png", blobs())
    if os.geteuid() == 0:  # root writes anywhere but in sysfs
        read_only = Path("/sys")
    else:
        read_only = tmp_path / "read_only"
        read_only.mkdir(mode=0o555)
    code, out = run(capsys, image, "-k", "2", "--out", read_only)
    assert code == 2, out.err
    assert f"--out {read_only}: cannot write in this folder" in out.err


# ---------------------------------------------------------------- lazy inputs: the budget


def _in_child_with_little_memory(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a child limited to 6 GiB of address space (a runaway allocation fails)."""
    src = str(Path(nk.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=limit,
    )


@pytest.mark.parametrize("kind", ["zarr", "tiff"])
def test_lazy_inputs_are_refused_from_their_shape_before_any_read(tmp_path, kind):
    zarr = pytest.importorskip("zarr")
    tifffile = pytest.importorskip("tifffile")
    if kind == "zarr":
        path = tmp_path / "huge.zarr"
        zarr.create_array(path, shape=(2**40, 2**40), chunks=(256, 256), dtype="u1")
        claimed = 2**80
    else:
        path = tmp_path / "huge.tif"
        sparse = tifffile.memmap(path, shape=(40960, 40960), dtype="u1")  # nothing written
        del sparse
        claimed = 40960**2
    on_disk = sum(f.stat().st_blocks * 512 for f in [path, *path.rglob("*")] if f.is_file())
    assert on_disk < 2**20
    out = tmp_path / "labels.zarr"
    result = _in_child_with_little_memory(
        f"""
        import sys
        from napari_kmeans.cli.command import main
        sys.exit(main(["segment", {str(path)!r}, "-k", "2", "--out", {str(out)!r},
                       "--max-pixels", "1000", "--no-progress"]))
        """
    )
    assert result.returncode == 1, result.stderr
    assert f"{claimed:,} pixels, more than the budget of 1,000" in result.stderr
    assert not out.exists()


# ---------------------------------------------------------------- odd pixel types


def test_float16_images_are_clustered_as_float32():
    image = blobs(dtype=np.float32)
    half = image.astype(np.float16)
    seg = nk.segment(half, 3, seed=0)
    expected = nk.segment(half.astype(np.float32), 3, seed=0)
    np.testing.assert_array_equal(seg.labels, expected.labels)
    assert seg.recolored.dtype == np.float16
    np.testing.assert_allclose(seg.recolored, expected.recolored.astype(np.float16))


def test_uint64_near_the_top_recolours_to_the_cluster_mean():
    top = np.iinfo(np.uint64).max
    image = np.array([[0, 1, top, top - 1]], np.uint64)
    seg = nk.segment(image, 2, seed=0)
    assert seg.labels.tolist() == [[1, 1, 2, 2]]
    recolored = seg.recolored.astype(object)  # exact integers
    assert recolored[0, :2].tolist() == [0, 0]
    # the mean of the top two values, as near as float64 gets below 2**64
    assert all(top - 4096 <= value <= top for value in recolored[0, 2:])


def test_kmeans_with_more_given_centres_than_distinct_rows_warns():
    rows = np.array([[0.0], [0.0], [1.0]])
    with pytest.warns(UserWarning, match="3 starting centres but only 2 distinct rows"):
        result = nk.kmeans(rows, 3, init=np.array([[0.0], [0.5], [1.0]]))
    assert result.centers.shape == (3, 1)
