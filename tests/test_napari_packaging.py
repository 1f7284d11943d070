"""napari finds the manifest and the sample images on every route a user installs by.

The routes: a wheel built from the tree, a wheel built from the sdist (``python -m build``,
the way packages reach an index), an editable install and a Git clone made with
``core.symlinks=false`` (Git for Windows' default). The repository holds no symlinks: the root
``napari.yaml`` and ``sample_data/`` the card asks for have real copies inside the package.

The tests that build and install are marked ``packaging`` (a few seconds each): deselect them
with ``-m "not packaging"``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path("src", "napari_kmeans")
# What the package ships from the root sample_data/: the images and their licences (README),
# not the script that generates the synthetic image.
SAMPLE_FILES = sorted(
    p.name for p in (ROOT / "sample_data").iterdir() if p.suffix.lower() in (".png", ".md")
)
ENTRY_POINT = "napari-kmeans = napari_kmeans:napari.yaml"

# Run inside an environment where napari_kmeans is installed: where napari finds it, whether
# the manifest's commands import, and what every sample-data command returns.
PROBE = """
import json, napari_kmeans
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name
manifest = PluginManifest.from_distribution("napari-kmeans")
manifest.validate_imports()
commands = {c.id: c.python_name for c in manifest.contributions.commands}
samples = {}
for sample in manifest.contributions.sample_data:
    (data, settings, kind), = import_python_name(commands[sample.command])()
    samples[sample.key] = [settings["metadata"]["path"], list(data.shape), str(data.dtype)]
print(json.dumps({"package": napari_kmeans.__file__, "name": manifest.name, "samples": samples}))
"""


def run(*args: str | os.PathLike[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def build(source: Path, outdir: Path, *flags: str) -> None:
    # hatchling is a test dependency: build without fetching it into an isolated environment.
    run(sys.executable, "-m", "build", "--no-isolation", *flags, "--outdir", outdir, source)


def probe(python: str | os.PathLike[str], **kwargs) -> dict:
    result = run(python, "-c", PROBE, **kwargs)
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_samples_found(found: dict, package_dir: Path) -> None:
    manifest = yaml.safe_load((ROOT / "napari.yaml").read_text())
    keys = {s["key"] for s in manifest["contributions"]["sample_data"]}
    assert found["name"] == "napari-kmeans" and set(found["samples"]) == keys
    for path, shape, _ in found["samples"].values():
        assert Path(path).parent == package_dir / "sample_data", path
        assert (ROOT / "sample_data" / Path(path).name).read_bytes() == Path(path).read_bytes()
        assert len(shape) in (2, 3) and min(shape[:2]) >= 256


def git(*args: str, cwd: Path = ROOT) -> str:
    return run("git", *args, cwd=cwd).stdout


@pytest.fixture(scope="module")
def git_checkout() -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a Git checkout (e.g. an unpacked sdist)")
    return ROOT


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """An sdist, the wheel built from that sdist, and a wheel built straight from the tree."""
    via_sdist = tmp_path_factory.mktemp("via_sdist")
    build(ROOT, via_sdist)  # python -m build: the sdist, then the wheel from the sdist
    from_tree = tmp_path_factory.mktemp("from_tree")
    build(ROOT, from_tree, "--wheel")
    (sdist,) = via_sdist.glob("napari_kmeans-*.tar.gz")
    (sdist_wheel,) = via_sdist.glob("napari_kmeans-*.whl")
    (tree_wheel,) = from_tree.glob("napari_kmeans-*.whl")
    return {"sdist": sdist, "wheel from sdist": sdist_wheel, "wheel from tree": tree_wheel}


def test_package_copies_match_the_root_manifest_and_samples():
    advice = "copy napari.yaml and sample_data/ into src/napari_kmeans/ (both are real files)"
    package = ROOT / PACKAGE
    assert (package / "napari.yaml").read_bytes() == (ROOT / "napari.yaml").read_bytes(), advice
    shipped = sorted(p.name for p in (package / "sample_data").iterdir())
    assert shipped == SAMPLE_FILES, advice
    for name in SAMPLE_FILES:
        root_bytes = (ROOT / "sample_data" / name).read_bytes()
        assert (package / "sample_data" / name).read_bytes() == root_bytes, (name, advice)


def test_repository_tracks_no_symlinks(git_checkout):
    symlinks = [line for line in git("ls-files", "-s").splitlines() if line.startswith("120000")]
    assert symlinks == []
    assert not any(p.is_symlink() for p in (ROOT / PACKAGE).rglob("*"))


@pytest.mark.packaging
@pytest.mark.parametrize("route", ["wheel from sdist", "wheel from tree"])
def test_wheel_holds_the_manifest_and_every_sample_image(dists, route):
    with zipfile.ZipFile(dists[route]) as archive:
        assert archive.read("napari_kmeans/napari.yaml") == (ROOT / "napari.yaml").read_bytes()
        for name in SAMPLE_FILES:
            shipped = archive.read(f"napari_kmeans/sample_data/{name}")
            assert shipped == (ROOT / "sample_data" / name).read_bytes(), name
        (entry_points,) = [
            n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")
        ]
        text = archive.read(entry_points).decode()
    assert "[napari.manifest]" in text and ENTRY_POINT in text


@pytest.mark.packaging
def test_sdist_holds_the_root_files_and_the_package_copies(dists):
    with tarfile.open(dists["sdist"]) as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
        assert not any(m.issym() or m.islnk() for m in members.values())
        for folder in ("sample_data", "src/napari_kmeans/sample_data"):
            for name in SAMPLE_FILES:
                data = archive.extractfile(members[f"{folder}/{name}"]).read()
                assert data == (ROOT / "sample_data" / name).read_bytes(), (folder, name)
        for manifest in ("napari.yaml", "src/napari_kmeans/napari.yaml"):
            assert (
                archive.extractfile(members[manifest]).read() == (ROOT / "napari.yaml").read_bytes()
            )


@pytest.mark.packaging
def test_napari_finds_the_plugin_in_the_wheel_built_from_the_sdist(dists, tmp_path):
    with zipfile.ZipFile(dists["wheel from sdist"]) as archive:
        archive.extractall(tmp_path)
    found = probe(sys.executable, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert Path(found["package"]).is_relative_to(tmp_path)
    assert_samples_found(found, tmp_path / "napari_kmeans")


def venv_seeing_this_environment(path: Path) -> Path:
    """A new venv that also imports what this interpreter imports; returns its python.

    A ``.pth`` file adds this interpreter's site directories after the venv's own (and runs
    their ``.pth`` files). ``--system-site-packages`` would not do: it gives the packages of
    the *base* interpreter, not those of the venv the tests run in.
    """
    run(sys.executable, "-m", "venv", "--without-pip", path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    ours = [
        *site.getsitepackages(),
        *([site.getusersitepackages()] if site.ENABLE_USER_SITE else []),
    ]
    lines = [f"import site; site.addsitedir({d!r})" for d in ours if Path(d).is_dir()]
    # named to sort after the package's own .pth file: the venv's napari-kmeans comes first
    Path(purelib.stdout.strip(), "zz_tested_environment.pth").write_text("\n".join(lines) + "\n")
    return python


@pytest.mark.packaging
def test_editable_install_finds_the_manifest_and_the_samples(tmp_path):
    # A throwaway venv that sees the installed dependencies (hatchling included); only
    # napari-kmeans is installed into it, editable (hatchling: a .pth file naming src/).
    python = venv_seeing_this_environment(tmp_path / "venv")
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
        "--no-deps", "--no-build-isolation", "--no-index", "-e", ROOT,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = probe(python, env=env, cwd=tmp_path)
    assert Path(found["package"]).parent == ROOT / PACKAGE
    assert_samples_found(found, ROOT / PACKAGE)
    validated = run(python, "-m", "npe2", "validate", "napari-kmeans", env=env, cwd=tmp_path)
    assert "valid" in validated.stdout


@pytest.mark.packaging
def test_clone_without_symlinks_has_real_manifest_and_images(git_checkout, tmp_path):
    """What Git for Windows checks out (core.symlinks=false), from the last commit."""
    clone = tmp_path / "clone"
    run("git", "clone", "--quiet", "-c", "core.symlinks=false", git_checkout, clone)
    assert not [
        line for line in git("ls-files", "-s", cwd=clone).splitlines() if line.startswith("1200")
    ]
    tracked = [clone / name for name in git("ls-files", "-z", cwd=clone).split("\0") if name]
    for path in tracked:  # a symlink checked out as text holds its target's relative path
        if path.stat().st_size < 256:
            text = path.read_bytes().decode("utf-8", "replace").strip()
            one_path = text and not any(c in text for c in "\0\n")
            assert not (one_path and (path.parent / text).exists()), f"{path} is a symlink"
    manifest = yaml.safe_load((clone / PACKAGE / "napari.yaml").read_text())
    assert isinstance(manifest, dict) and manifest["name"] == "napari-kmeans"
    for name in SAMPLE_FILES:
        shipped = (clone / PACKAGE / "sample_data" / name).read_bytes()
        assert shipped == (clone / "sample_data" / name).read_bytes(), name


def test_ci_runs_the_readme_test_command_with_ruff_and_doctests(pytestconfig):
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", quick_start, flags=re.DOTALL)
    test_command = commands[1]
    assert "\n" not in test_command
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == test_command
    for step in ("ruff check src tests", "ruff format --check src tests", "python3 -m pytest"):
        assert step in test_command
    assert "--doctest-modules" in pytestconfig.getini("addopts")
    assert "src" in pytestconfig.getini("testpaths")


# --- Installed as napari's plugin manager installs it: the base package, no extras ---------


def _requirement_closure(requirements: list[str]) -> set[str]:
    """Canonical names of the installed distributions these requirements pull in."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            needs = requires(requirement.name) or []
        except PackageNotFoundError:
            continue
        extras = {""} | set(requirement.extras)
        for text in needs:
            need = Requirement(text)
            if need.marker is None or any(need.marker.evaluate({"extra": e}) for e in extras):
                todo.append(need)
    return {name for name, _ in seen}


def modules_missing_without_extras() -> list[str]:
    """Top-level modules of the `all` extra that napari and the base package do not bring."""
    from importlib.metadata import packages_distributions

    from hatchling.metadata.core import ProjectMetadata
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    core = ProjectMetadata(str(ROOT), None).core
    extra = [Requirement(text) for text in core.optional_dependencies["all"]]
    (napari,) = [str(r) for r in extra if canonicalize_name(r.name) == "napari"]
    present = _requirement_closure([*core.dependencies, napari])
    absent = {canonicalize_name(r.name) for r in extra} - present
    return sorted(
        module
        for module, distributions in packages_distributions().items()
        if absent & {canonicalize_name(d) for d in distributions} and module.isidentifier()
    )


# Runs with the extras refused at import time; every step reports instead of stopping.
BASE_INSTALL_PROBE = """
import json, sys
BLOCKED = set(sys.argv[1].split(","))

class RefuseExtras:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (extra not installed)", name=name)

sys.meta_path.insert(0, RefuseExtras())
import napari  # noqa: F401  (napari itself must not need the extras)
from npe2 import PluginManifest
from npe2.manifest.utils import import_python_name

manifest = PluginManifest.from_file(sys.argv[2])
failures = {}
for command in manifest.contributions.commands:
    try:
        function = import_python_name(command.python_name)
        if command.id in {s.command for s in manifest.contributions.sample_data}:
            function()
        if command.id in {r.command for r in manifest.contributions.readers}:
            assert function(sys.argv[3])(sys.argv[3])[0][0].shape == (2, 3)
    except Exception as error:
        failures[command.id] = f"{type(error).__name__}: {error}"
try:
    import zarr  # noqa: F401
    refused = False
except ModuleNotFoundError:
    refused = True
import napari_kmeans
print(json.dumps({"failures": failures, "refused": refused, "package": napari_kmeans.__file__}))
"""


@pytest.mark.slow
def test_every_manifest_command_works_without_the_extras(tmp_path):
    blocked = modules_missing_without_extras()
    assert "zarr" in blocked  # what napari[pyqt6] does not bring
    image = tmp_path / "grey.pgm"
    image.write_bytes(b"P5\n3 2\n255\n" + bytes(range(6)))
    manifest = ROOT / PACKAGE / "napari.yaml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    result = run(
        sys.executable, "-c", BASE_INSTALL_PROBE, ",".join(blocked), manifest, image, env=env
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["refused"] and Path(found["package"]).parent == ROOT / PACKAGE
    assert found["failures"] == {}, f"without {blocked}: {found['failures']}"
