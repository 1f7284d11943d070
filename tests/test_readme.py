"""The README's Python examples run as written (from a clone, beside sample_data/)."""

import pathlib
import re
import shutil

import dask.array as da
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    # the napari console examples need a viewer holding the named layers
    return [block for block in blocks if "viewer" not in block]


@pytest.mark.slow
def test_the_readme_python_examples_run_as_written(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 3
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    # the larger-than-memory example opens a Zarr volume: a small one stands in for it
    da.from_array(np.arange(4 * 32 * 48, dtype=np.uint16).reshape(4, 32, 48), chunks=16).to_zarr(
        str(tmp_path / "volume.zarr")
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "stains.json").is_file() and (tmp_path / "labels.zarr").is_dir()
