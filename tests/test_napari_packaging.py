"""The npe2 manifest reaches napari from a built wheel and from the installed package."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FILES = sorted(p for p in (ROOT / "sample_data").iterdir() if p.is_file())


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Without hatchling installed, build fetches it into an isolated environment.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-isolation"]
    result = run(
        sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(out), str(ROOT)
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = out.glob("napari_kmeans-*.whl")
    return path


def test_wheel_holds_the_real_manifest_and_sample_images(wheel):
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("napari_kmeans/napari.yaml") == (ROOT / "napari.yaml").read_bytes()
        for sample in SAMPLE_FILES:
            assert archive.read(f"napari_kmeans/sample_data/{sample.name}") == sample.read_bytes()
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "[napari.manifest]" in text and "napari-kmeans = napari_kmeans:napari.yaml" in text


def test_napari_finds_the_plugin_in_the_unpacked_wheel(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
    probe = (
        "import json, napari_kmeans\n"
        "from npe2 import PluginManifest\n"
        "from napari_kmeans._napari.sample_data import synthetic_cells\n"
        "m = PluginManifest.from_distribution('napari-kmeans')\n"
        "m.validate_imports()\n"
        "print(json.dumps({'package': napari_kmeans.__file__, 'name': m.name,\n"
        "  'samples': [s.key for s in m.contributions.sample_data],\n"
        "  'shape': list(synthetic_cells()[0][0].shape)}))\n"
    )
    result = run(sys.executable, "-c", probe, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(tmp_path)
    assert found["name"] == "napari-kmeans" and len(found["samples"]) >= 4
    assert found["shape"] == [384, 512]


def test_npe2_validate_accepts_the_installed_plugin():
    result = run(sys.executable, "-m", "npe2", "validate", "--imports", "napari-kmeans")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_installed_package_reads_the_root_manifest():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-kmeans")
    assert manifest == PluginManifest.from_file(ROOT / "napari.yaml")
