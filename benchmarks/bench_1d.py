"""Benchmark the exact 1-D optimum (W7) against kmeans1d, and ``suggest_k`` against ``segment``.

Every run is a fresh Python process (time and peak memory of that run alone, the numba
kernel loaded from its disk cache as a user's second run would), repeated; the median is
reported beside what we expect of it:

- W7: W3 (4 MP float32 RGB) as grey (mean of the channels), k = 6, ``method="optimal"``:
  inertia equal to kmeans1d's within 1e-9 relative, time <= 0.5 x kmeans1d.
- SK: ``suggest_k`` on W1 (12 MP uint8 RGB) for k = 2..12: time <= 3 x one ``segment``
  at k = 8 on the same image.
- SK20000: the same with ``sample_size=20000``: peak memory (the silhouette is blocked).

Examples
--------
::

    python benchmarks/bench_1d.py            # full size, 3 repeats
    python benchmarks/bench_1d.py --quick    # small images, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_kmeans import SIZES, PeakRSS, cached_workload_path

RUNS = {
    "W7 ours optimal": ("W7", "ours"),
    "W7 kmeans1d": ("W7", "kmeans1d"),
    "W1 segment k=8": ("W1", "segment"),
    "W1 suggest_k 2..12": ("W1", "suggest_k"),
    "W1 suggest_k sample 20000": ("W1", "suggest_k_20000"),
}


def _grey_path(cache: Path, size: str) -> Path:
    rgb = cached_workload_path(cache, "W3", *SIZES["W3"][size])
    path = rgb.with_name(rgb.stem + "_grey.npy")
    if not path.exists():
        np.save(path, np.load(rgb).mean(axis=-1, dtype=np.float32))
    return path


def run_one(path: str, what: str) -> dict:
    """Run ``what`` on the image at ``path`` in this process; return time, memory, result."""
    import napari_kmeans as nk

    image = np.load(path)
    if what == "kmeans1d":
        import kmeans1d
    else:  # load the numba kernel before the clock starts, as a user's second call would
        from napari_kmeans.engine.optimal1d import optimal_kmeans_1d

        optimal_kmeans_1d(np.arange(3.0), np.ones(3), 2)
    meter = PeakRSS()
    meter.start()
    started = time.perf_counter()
    if what == "ours":
        value = nk.segment(image, n_clusters=6, method="optimal").inertia
    elif what == "kmeans1d":
        labels, centers = kmeans1d.cluster(image.ravel(), 6)
        x = image.ravel().astype(np.float64)
        value = float(((x - np.asarray(centers)[np.asarray(labels)]) ** 2).sum())
    elif what == "segment":
        value = nk.segment(image, n_clusters=8, seed=0).inertia
    else:
        sample = 20000 if what.endswith("20000") else 2000
        value = nk.suggest_k(image, range(2, 13), seed=0, sample_size=sample).recommended
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": meter.stop(), "value": value}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small images, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(*args.one.split("|"))))
        return 0
    size = "quick" if args.quick else "full"
    repeats = 1 if args.quick else args.repeats
    cache = Path(tempfile.gettempdir()) / "napari_kmeans_bench"
    cache.mkdir(exist_ok=True)
    paths = {
        "W7": _grey_path(cache, size),
        "W1": cached_workload_path(cache, "W1", *SIZES["W1"][size]),
    }
    results = {}
    for _ in range(repeats):  # interleaved, so that load on the machine hits every method
        for name, (workload, what) in RUNS.items():
            command = [sys.executable, __file__, "--one", f"{paths[workload]}|{what}"]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results.setdefault(name, []).append(json.loads(done.stdout.splitlines()[-1]))
    median = {
        name: {key: statistics.median(r[key] for r in runs) for key in ("seconds", "peak_mib")}
        | {"value": runs[0]["value"]}
        for name, runs in results.items()
    }
    print(f"| run ({size}, median of {repeats}) | seconds | peak MiB | inertia / recommended k |")
    print("|---|---|---|---|")
    for name, m in median.items():
        print(f"| {name} | {m['seconds']:.2f} | {m['peak_mib']:.0f} | {m['value']:.10g} |")
    ours, peer = median["W7 ours optimal"], median["W7 kmeans1d"]
    gap = abs(ours["value"] - peer["value"]) / peer["value"]
    sk, seg = median["W1 suggest_k 2..12"], median["W1 segment k=8"]
    for target, passed, measured in [
        ("W7 inertia = kmeans1d within 1e-9", gap <= 1e-9, f"{gap:.1e}"),
        (
            "W7 time <= 0.5 x kmeans1d",
            ours["seconds"] <= 0.5 * peer["seconds"],
            f"{ours['seconds'] / peer['seconds']:.2f}x",
        ),
        (
            "suggest_k W1 <= 3 x segment k=8",
            sk["seconds"] <= 3 * seg["seconds"],
            f"{sk['seconds'] / seg['seconds']:.2f}x",
        ),
    ]:
        print(f"{'PASS' if passed else 'FAIL'}  {target}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
