"""Benchmark W4: a 2 GiB uint16 volume through the dask path, against the in-memory path.

The volume (128 x 2048 x 4096 uint16, four smooth phases plus noise) is written once to a
Zarr store in slabs, never held whole in memory. Then, each in a fresh process so that its
peak memory is its own:

- dask: ``open_lazy`` on the store, ``segment`` (k = 4, seed 0) and ``write_labels_zarr`` of
  the labels to a new store, chunk by chunk;
- in memory: the first 16 slices (256 MiB) loaded as a NumPy array and ``segment`` on it.

It prints a Markdown table and a PASS/FAIL line per target: the dask path's peak memory at
most 0.25 x the volume's size, and its throughput (voxels/s) at least 0.5 x the in-memory
path's. See ``benchmarks/README.md``.

Examples
--------
Smoke run (a 4 MiB volume, seconds; the numbers mean nothing)::

    python benchmarks/bench_dask.py --quick

Full run (builds the 2 GiB store once, then about a minute on 2 cores)::

    python benchmarks/bench_dask.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kmeans import PeakRSS  # noqa: E402  (the same memory meter as W1-W3)

STORE_VERSION = 1  # bump when the way the volume is built changes
N_CLUSTERS = 4
SEED = 0
LEVELS = np.array([6000.0, 20000.0, 36000.0, 52000.0])
NOISE_SD = 2500.0
SHAPES = {  # volume shape, crop slices, Zarr chunks of the stored volume
    "full": ((128, 2048, 4096), 16, (16, 512, 1024)),
    "quick": ((16, 256, 512), 2, (4, 128, 256)),
}
MEMORY_TARGET = 0.25  # dask peak memory <= this x the volume's bytes
THROUGHPUT_TARGET = 0.5  # dask voxels/s >= this x the in-memory path's


# --------------------------------------------------------------------------- the volume


def _phases(z: np.ndarray, y: np.ndarray, x: np.ndarray, shape) -> np.ndarray:
    """Phase 0..3 of each voxel: thresholds of a smooth field, blobs hundreds of voxels wide."""
    depth, height, width = shape
    field = (
        np.sin(2 * np.pi * (z[:, None, None] / depth * 1.5 + y[None, :, None] / height * 3))
        + np.cos(2 * np.pi * (x[None, None, :] / width * 5 - y[None, :, None] / height * 2))
    ).astype(np.float32)
    return np.digitize(field, np.array([-0.8, 0.0, 0.8], np.float32))


def build_volume(path: Path, shape, chunks) -> None:
    """Write the volume slab by slab (one Zarr chunk deep) to an uncompressed Zarr store."""
    import zarr

    target = zarr.create_array(
        str(path),
        shape=shape,
        chunks=chunks,
        dtype=np.uint16,
        compressors=None,
        overwrite=True,
    )
    depth, height, width = shape
    y, x = np.arange(height), np.arange(width)
    for start in range(0, depth, chunks[0]):
        z = np.arange(start, min(start + chunks[0], depth))
        rng = np.random.default_rng([SEED, start])
        slab = LEVELS.astype(np.float32)[_phases(z, y, x, shape)]
        slab += rng.standard_normal(slab.shape, dtype=np.float32) * np.float32(NOISE_SD)
        target[z[0] : z[-1] + 1] = np.clip(np.rint(slab), 0, 65535).astype(np.uint16)
    target.attrs["napari_kmeans_bench"] = STORE_VERSION


def volume_store(store_dir: Path, size: str) -> Path:
    import zarr

    shape, _, chunks = SHAPES[size]
    path = store_dir / f"w4_{size}.zarr"
    try:
        if zarr.open_array(str(path), mode="r").attrs.get("napari_kmeans_bench") == STORE_VERSION:
            return path
    except Exception:  # missing or half-written: build it again
        pass
    print(f"building {path} {shape} uint16 ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    build_volume(path, shape, chunks)
    print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return path


# --------------------------------------------------------------------------- one run


def run_dask(store: Path, out: Path) -> dict:
    import dask

    import napari_kmeans as nk
    from napari_kmeans.lazy.store import open_lazy, write_labels_zarr

    image = open_lazy(store)  # metadata only
    meter = PeakRSS()
    meter.start()
    started = time.perf_counter()
    seg = nk.segment(image, N_CLUSTERS, seed=SEED)
    fitted = time.perf_counter()
    write_labels_zarr(seg.labels, out, progress=False)
    done = time.perf_counter()
    return {
        "path": "dask",
        "voxels": int(image.size),
        "bytes": int(image.nbytes),
        "chunks": list(image.chunksize),
        "workers": dask.system.CPU_COUNT,
        "fit_seconds": fitted - started,
        "seconds": done - started,
        "peak_mib": meter.stop(),
        "counts": seg.counts.tolist(),
    }


def run_memory(store: Path, crop: int, out: Path) -> dict:
    import zarr

    import napari_kmeans as nk

    image = np.asarray(zarr.open_array(str(store), mode="r")[:crop])
    meter = PeakRSS()
    meter.start()
    started = time.perf_counter()
    seg = nk.segment(image, N_CLUSTERS, seed=SEED)
    seconds = time.perf_counter() - started
    peak = meter.stop()
    np.save(out, seg.labels)
    return {
        "path": "memory",
        "voxels": int(image.size),
        "bytes": int(image.nbytes),
        "seconds": seconds,
        "peak_mib": peak,
        "counts": seg.counts.tolist(),
    }


def run_in_subprocess(*arguments: str) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--one", *arguments]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def markdown_table(runs: list[dict]) -> str:
    lines = [
        "| path | data | voxels | seconds | voxels/s | peak RSS increase (MiB) "
        "| peak / data size |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        size = run["bytes"] / 2**20
        what = f"{size / 1024:g} GiB" if size >= 1024 else f"{size:g} MiB"
        what += " volume" if run["path"] == "dask" else " crop"
        name = (
            "**dask** (segment + labels to Zarr)"
            if run["path"] == "dask"
            else ("in memory (segment)")
        )
        lines.append(
            f"| {name} | {what} | {run['voxels']:,} | {run['seconds']:.2f} "
            f"| {run['voxels'] / run['seconds'] / 1e6:.1f} M | {run['peak_mib']:.0f} "
            f"| {run['peak_mib'] * 2**20 / run['bytes']:.3f} |"
        )
    return "\n".join(lines)


def check_targets(lazy: dict, eager: dict) -> list[tuple[str, bool, str]]:
    memory_ratio = lazy["peak_mib"] * 2**20 / lazy["bytes"]
    speed_ratio = (lazy["voxels"] / lazy["seconds"]) / (eager["voxels"] / eager["seconds"])
    return [
        (
            f"dask peak memory <= {MEMORY_TARGET} x the volume size",
            memory_ratio <= MEMORY_TARGET,
            f"{memory_ratio:.3f} x",
        ),
        (
            f"dask throughput >= {THROUGHPUT_TARGET} x the in-memory path's",
            speed_ratio >= THROUGHPUT_TARGET,
            f"{speed_ratio:.2f} x",
        ),
    ]


def crop_agreement(labels_store: Path, memory_labels: Path) -> float:
    """Fraction of the crop's voxels with the same label in both runs (labels are ordered
    dark to bright, so the same phase gets the same label however each model was fitted)."""
    import zarr

    eager = np.load(memory_labels)
    lazy = zarr.open_array(str(labels_store), mode="r")[: eager.shape[0]]
    return float((lazy == eager).mean())


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a 4 MiB volume: checks that everything runs, measures nothing",
    )
    parser.add_argument(
        "--store-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "napari_kmeans_bench",
        help="where the volume's Zarr store is kept (built once, ~2 GiB)",
    )
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)  # internal: one run
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        kind, store, *rest = args.one
        if kind == "dask":
            result = run_dask(Path(store), Path(rest[0]))
        else:
            result = run_memory(Path(store), int(rest[0]), Path(rest[1]))
        print(json.dumps(result))
        return 0

    size = "quick" if args.quick else "full"
    shape, crop, _ = SHAPES[size]
    args.store_dir.mkdir(parents=True, exist_ok=True)
    store = volume_store(args.store_dir, size)
    work = Path(tempfile.mkdtemp(prefix="w4_", dir=args.store_dir))
    try:
        labels_store, memory_labels = work / "labels.zarr", work / "memory_labels.npy"
        lazy = run_in_subprocess("dask", str(store), str(labels_store))
        eager = run_in_subprocess("memory", str(store), str(crop), str(memory_labels))
        agreement = crop_agreement(labels_store, memory_labels)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import dask

    import napari_kmeans

    print(f"# napari-kmeans W4: dask vs in-memory ({size} size)\n")
    print(
        f"- volume {'x'.join(map(str, shape))} uint16 ({lazy['bytes'] / 2**30:.2f} GiB), "
        f"4 smooth phases + noise sd {NOISE_SD:g}, uncompressed Zarr; k = {N_CLUSTERS}, "
        f"seed {SEED}"
    )
    print(
        f"- dask {dask.__version__} threaded scheduler, {lazy['workers']} workers, chunks "
        f"{tuple(lazy['chunks'])}; napari-kmeans {napari_kmeans.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"- dask fit (histogram pass + Lloyd) {lazy['fit_seconds']:.2f} s of "
        f"{lazy['seconds']:.2f} s; labels on the crop agree with the in-memory run on "
        f"{agreement:.4%} of voxels\n"
    )
    print(markdown_table([lazy, eager]))
    print()
    for target, passed, measured in check_targets(lazy, eager):
        print(f"- {'PASS' if passed else 'FAIL'}: {target} (measured {measured})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
