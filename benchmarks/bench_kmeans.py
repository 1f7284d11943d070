"""Benchmark napari-kmeans against ``cv2.kmeans``, scikit-learn, faiss-cpu and kmeans1d.

Three regimes. Every (workload, method, seed) runs in a fresh Python process (numba's cache
already filled): its first call is what a command-line run pays ("fresh"), and the same call
made again in that process is what a napari session or a console pays ("warm"); the peak
memory is that of the first call. The first use with an empty numba cache (a fresh install)
is timed separately on a small image, step by step (``--first-use``). The parent builds the
workloads once (cached as ``.npy``), collects the results and prints Markdown tables plus a
pass/fail line per target.  See ``benchmarks/README.md`` for what each column means.

Examples
--------
Smoke run (small images, one seed, about a minute)::

    python benchmarks/bench_kmeans.py --quick

Full run of two workloads::

    python benchmarks/bench_kmeans.py --workloads W1,W3

First use with an empty numba cache only::

    python benchmarks/bench_kmeans.py --workloads none --first-use
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE_VERSION = 2  # bump when the way an image is built changes
SEEDS = (0, 1, 2)
CV2_CRITERIA_MAX_ITER = 300
CV2_CRITERIA_EPS = 0.1
# Relative slack for "inertia <= other": the 1-D optimum and a converged Lloyd
# run can reach the same partition, whose inertia then differs only by rounding.
ROUNDING_SLACK = 1e-9
FAISS_NITER = 25  # faiss.Kmeans's own default
# "faiss converged": enough iterations to converge, and every row used (faiss otherwise
# trains on 256 rows per centroid), to compare times at equal quality.
FAISS_CONVERGED_NITER = 300
# Ours on W5 before issue 11: the median inertia of seeds 0-2 of commit 9ec75f5 (the end of
# the round that filed issue 11, k-means in numpy) on this script's W1 image (cache version 2).
# The table (3.742e8, 1.535e8) came from an image built otherwise: its W1 inertia,
# 1.703e9, is 1.709e9 here with the same code and seed.
W5_INERTIA_BEFORE = {"W5-64": 3.7722086e8, "W5-256": 1.5452233e8}


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    image: str  # which image (see build_image)
    n_clusters: int
    methods: tuple[str, ...]
    reference: str  # the "ours" method that the ratios compare against
    options: tuple[tuple[str, object], ...] = ()  # more keywords of nk.segment
    rows: bool = False  # ours clusters the pixels as plain feature rows (nk.kmeans)


WORKLOADS = {
    "W1": Workload(
        "W1",
        "12 MP uint8 RGB (retina 4000x3000 cubic + noise sd 3)",
        "W1",
        8,
        ("ours kmeans++", "cv2.kmeans", "sklearn", "faiss"),
        "ours kmeans++",
    ),
    "W2": Workload(
        "W2",
        "12 MP uint16 grey (retina grey x257 + noise sd 200)",
        "W2",
        4,
        ("ours optimal", "ours kmeans++", "cv2.kmeans", "sklearn", "kmeans1d"),
        "ours optimal",
    ),
    "W3": Workload(
        "W3",
        "4 MP float32 RGB (retina 2000x2000 cubic, 0..255 units + noise sd 3)",
        "W3",
        8,
        ("ours kmeans++", "cv2.kmeans", "sklearn", "faiss"),
        "ours kmeans++",
    ),
    "W5-64": Workload(
        "W5-64", "W1's image, k = 64", "W1", 64, ("ours kmeans++", "faiss"), "ours kmeans++"
    ),
    "W5-256": Workload(
        "W5-256",
        "W1's image, k = 256 (colour quantisation)",
        "W1",
        256,
        ("ours kmeans++", "faiss"),
        "ours kmeans++",
    ),
    "W6": Workload(
        "W6",
        "W1 with spatial_weight=0.5 (x, y features)",
        "W1",
        8,
        ("ours kmeans++",),
        "ours kmeans++",
        (("spatial_weight", 0.5),),
    ),
    "W7": Workload(
        "W7",
        "W3 as grey (float32 mean of the channels), exact 1-D",
        "W7",
        6,
        ("ours optimal", "kmeans1d"),
        "ours optimal",
    ),
    "W8": Workload(
        "W8",
        "768x768 x 30 channels float32 (12 marker profiles + noise), as feature rows",
        "W8",
        50,
        ("ours kmeans++", "faiss", "faiss converged"),
        "ours kmeans++",
        rows=True,
    ),
    "S1": Workload(
        "S1",
        "512x512 uint8 RGB photo (scikit-image's astronaut), live preview size",
        "S1",
        6,
        ("ours kmeans++", "cv2.kmeans x3", "faiss"),
        "ours kmeans++",
    ),
}

# (height, width) per image: full size and --quick size.
SIZES = {
    "W1": {"full": (3000, 4000), "quick": (300, 400)},
    "W2": {"full": (3000, 4000), "quick": (300, 400)},
    "W3": {"full": (2000, 2000), "quick": (200, 200)},
    "W7": {"full": (2000, 2000), "quick": (200, 200)},
    "W8": {"full": (768, 768), "quick": (96, 96)},
    "S1": {"full": (512, 512), "quick": (128, 128)},
}


# --------------------------------------------------------------------------- workloads


def _retina(height: int, width: int, dtype=np.uint8) -> np.ndarray:
    import cv2
    from skimage import data

    photo = data.retina().astype(dtype)
    return cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)


def build_image(name: str, height: int, width: int) -> np.ndarray:
    """Return image ``name`` (see ``SIZES``) at the given size (deterministic)."""
    import cv2

    rng = np.random.default_rng(0)
    if name == "W1":
        photo = _retina(height, width).astype(np.float64)
        noisy = photo + rng.normal(0.0, 3.0, photo.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if name == "W2":
        grey = cv2.cvtColor(_retina(height, width), cv2.COLOR_RGB2GRAY).astype(np.float64)
        noisy = grey * 257 + rng.normal(0.0, 200.0, grey.shape)
        return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)
    if name == "W3":
        # Kept in 0..255 units so that cv2's stopping rule (centre shift <= 0.1)
        # means what it means on W1; on [0, 1] data it stops after a step or two.
        # Not clipped: clipping would pile the black background onto 0.0 and
        # make the pixels compressible, which this workload must not be.
        photo = _retina(height, width, np.float32)
        return (photo + rng.normal(0.0, 3.0, photo.shape)).astype(np.float32)
    if name == "W7":
        return build_image("W3", height, width).mean(axis=2, dtype=np.float32)
    if name == "W8":
        # 12 cell types, each a marker profile over 30 channels, in patches of pixels
        profiles = rng.gamma(0.6, 1.0, (12, 30))
        types = cv2.resize(
            rng.integers(0, 12, (height // 16, width // 16)).astype(np.uint8),
            (width, height),
            interpolation=cv2.INTER_NEAREST,
        )
        image = profiles[types] + rng.normal(0.0, 0.15, (height, width, 30))
        return image.astype(np.float32)
    if name == "S1":
        from skimage import data

        return cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    raise ValueError(f"image must be one of {sorted(SIZES)}, got {name!r}")


def cached_workload_path(cache_dir: Path, name: str, height: int, width: int) -> Path:
    path = cache_dir / f"{name}_{height}x{width}_v{CACHE_VERSION}.npy"
    if not path.exists():
        image = build_image(name, height, width)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, image)
        partial.replace(path)
    return path


def feature_rows(image: np.ndarray) -> np.ndarray:
    """Pixel values as float32 rows, one row per pixel (what cv2/sklearn get)."""
    channels = image.shape[2] if image.ndim == 3 else 1
    return image.reshape(-1, channels).astype(np.float32)


def inertia(image: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> float:
    """Sum over pixels of the squared distance to the assigned centre, in float64.

    ``labels`` are 0-based centre indices, one per pixel.  Computed in blocks so
    that it never holds a float64 copy of the whole image.
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    pixels = image.reshape(-1, channels)
    labels = labels.reshape(-1)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, channels)
    total = 0.0
    block = 1 << 20
    for start in range(0, len(pixels), block):
        diff = pixels[start : start + block].astype(np.float64)
        diff -= centers[labels[start : start + block]]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def nearest_inertia(image: np.ndarray, centers: np.ndarray) -> float:
    """Sum over pixels of the squared distance to the *nearest* of ``centers``, in float64.

    For methods whose own labels come from float32 arithmetic (faiss): the partition their
    centres define, measured exactly. Integer images are reduced to their distinct values
    first; distances are brute force, block by block.
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    pixels = image.reshape(-1, channels)
    counts = None
    if pixels.dtype.kind in "ui":
        pixels, counts = np.unique(pixels, axis=0, return_counts=True)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, channels)
    total = 0.0
    block = max(1, (1 << 24) // len(centers))
    for start in range(0, len(pixels), block):
        rows = pixels[start : start + block].astype(np.float64)
        best = np.full(len(rows), np.inf)
        for centre in centers:
            np.minimum(best, ((rows - centre) ** 2).sum(axis=1), out=best)
        weights = None if counts is None else counts[start : start + block]
        total += float(best.sum() if weights is None else best @ weights)
    return total


# --------------------------------------------------------------------------- memory


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


class PeakRSS:
    """Peak resident memory of this process above the level at ``start()``, in MiB.

    On Linux the high-water mark is reset (``/proc/self/clear_refs``) so that
    transient allocations made while loading the workload do not hide the
    method's own peak; elsewhere ``ru_maxrss`` is used as is.
    """

    def start(self) -> None:
        self.exact = False
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            self.exact = _proc_status_kib("VmHWM") is not None
        except OSError:
            pass
        self.baseline_kib = _proc_status_kib("VmRSS") if self.exact else self._maxrss_kib()

    def stop(self) -> float:
        peak_kib = _proc_status_kib("VmHWM") if self.exact else self._maxrss_kib()
        return max(peak_kib - self.baseline_kib, 0) / 1024

    @staticmethod
    def _maxrss_kib() -> int:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss // 1024 if sys.platform == "darwin" else maxrss  # bytes on macOS


# --------------------------------------------------------------------------- one run


def _import_method(method: str, options: dict):
    """Import what ``method`` needs (before the memory baseline) and return a runner.

    The runner takes (image, k, seed) and returns 0-based labels
    (one per pixel) and centres in pixel units.  Converting the image to float32
    rows is part of the cv2/sklearn/faiss runs (float64 values for kmeans1d): a user
    holding an image has to do it.
    """
    if method.startswith("ours"):
        import napari_kmeans as nk

        algorithm = method.split()[1]
        if options.pop("rows", False):

            def run(image, k, seed):
                return nk.kmeans(feature_rows(image), k, seed=seed)

            return run

        def run(image, k, seed):
            # "rgb" keeps the pixel values as features (a grey image: its one channel).
            return nk.segment(
                image, n_clusters=k, seed=seed, method=algorithm, color_space="rgb", **options
            )

        return run
    if method in ("faiss", "faiss converged"):
        import faiss

        converged = method == "faiss converged"

        def run(image, k, seed):
            rows = feature_rows(image)
            model = faiss.Kmeans(
                rows.shape[1],
                k,
                niter=FAISS_CONVERGED_NITER if converged else FAISS_NITER,
                seed=seed,
                max_points_per_centroid=len(rows) if converged else 256,
            )
            model.train(rows)
            _, labels = model.index.search(rows, 1)
            return labels.ravel(), model.centroids

        return run
    if method == "kmeans1d":
        import kmeans1d

        def run(image, k, seed):
            labels, centroids = kmeans1d.cluster(image.reshape(-1).astype(np.float64), k)
            return np.asarray(labels), np.asarray(centroids)

        return run
    if method.startswith("cv2.kmeans"):
        import cv2

        attempts = 3 if method.endswith("x3") else 1

        def run(image, k, seed):
            cv2.setRNGSeed(seed)
            criteria = (
                cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER,
                CV2_CRITERIA_MAX_ITER,
                CV2_CRITERIA_EPS,
            )
            _, labels, centers = cv2.kmeans(
                feature_rows(image), k, None, criteria, attempts, cv2.KMEANS_PP_CENTERS
            )
            return labels, centers

        return run
    if method == "sklearn":
        from sklearn.cluster import KMeans

        def run(image, k, seed):
            model = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(feature_rows(image))
            return model.labels_, model.cluster_centers_

        return run
    raise ValueError(f"unknown method {method!r}")


def run_one(path: Path, workload: str, method: str, seed: int) -> dict:
    """Time one method on one cached workload in this process; return a result dict."""
    spec = WORKLOADS[workload]
    options = dict(spec.options, rows=spec.rows)
    runner = _import_method(method, options)
    image = np.load(path)
    meter = PeakRSS()
    meter.start()
    started = time.perf_counter()
    result = runner(image, spec.n_clusters, seed)
    seconds = time.perf_counter() - started
    peak_mib = meter.stop()
    started = time.perf_counter()  # again in this process: the in-session regime
    runner(image, spec.n_clusters, seed)
    warm_seconds = time.perf_counter() - started
    note = ""
    if method.startswith("ours") and spec.rows:
        labels, centers = result.labels, result.centers
    elif method.startswith("ours"):
        seg = result
        if seg.labels.min() < 1:
            raise RuntimeError(f"{method}: some pixels were left unlabelled")
        labels = seg.labels.astype(np.intp) - 1
        centers = np.asarray(seg.centers, dtype=np.float64)
        if options.get("spatial_weight"):
            # x/y features: measure the colour part, about each cluster's mean colour
            centers = np.asarray(seg.palette, dtype=np.float64)
        elif centers.shape != (spec.n_clusters, image.shape[2] if image.ndim == 3 else 1):
            raise RuntimeError(
                f"{method}: centers have shape {centers.shape}, "
                "expected (k, channels) in pixel units"
            )
        # Centres must be in pixel units for the inertias to be comparable; the
        # palette (mean original value per cluster) is, so they should agree.
        scale = max(float(np.ptp(seg.palette)), 1e-12)
        drift = float(np.max(np.abs(centers - seg.palette))) / scale
        if drift > 1e-2:
            note = f"centers differ from palette by {drift:.1%} of the range"
    else:
        labels, centers = result
    exact = (
        nearest_inertia(image, centers) if method == "faiss" else inertia(image, labels, centers)
    )
    return {
        "workload": workload,
        "method": method,
        "seed": seed,
        "seconds": seconds,
        "warm_seconds": warm_seconds,
        "peak_mib": peak_mib,
        "inertia": exact,
        "input_mib": image.nbytes / 2**20,
        "note": note,
    }


def run_in_subprocess(path: Path, workload: str, method: str, seed: int) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--one",
        f"{path}|{workload}|{method}|{seed}",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{workload} {method} seed {seed} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def _shipped_by(library_path: str) -> str:
    """The package whose wheel ships a shared library (``numpy.libs/...`` -> numpy)."""
    folder = Path(library_path).parent.name
    return folder.removesuffix(".libs") if folder.endswith(".libs") else library_path


def environment_header() -> str:
    import cv2
    import faiss
    import numba
    import sklearn
    from threadpoolctl import threadpool_info

    try:
        import napari_kmeans

        ours = napari_kmeans.__version__
    except ImportError:
        ours = "not importable"
    pools = ", ".join(
        f"{pool['internal_api']} {pool.get('version') or '?'} from {_shipped_by(pool['filepath'])}"
        f" ({pool['num_threads']} threads)"
        for pool in threadpool_info()
    )
    blas_env = " ".join(
        f"{key}={value}"
        for key, value in sorted(os.environ.items())
        if key.startswith(("OPENBLAS", "OMP_", "MKL_"))
    )
    lines = [
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, cv2 {cv2.__version__} "
        f"({cv2.getNumThreads()} threads), scikit-learn {sklearn.__version__}, "
        f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads), "
        f"kmeans1d {_version('kmeans1d')}, numba {numba.__version__}, napari-kmeans {ours}",
        f"- threadpoolctl: {pools}",
        f"- thread/BLAS environment: {blas_env or '(none set)'}",
    ]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def summarise(workload: Workload, results: list[dict]) -> dict[str, dict]:
    by_method = {}
    for method in workload.methods:
        runs = [r for r in results if r["method"] == method]
        by_method[method] = {
            "seconds": _median(runs, "seconds"),
            "warm_seconds": _median(runs, "warm_seconds"),
            "inertia": _median(runs, "inertia"),
            "peak_mib": _median(runs, "peak_mib"),
            "input_mib": _median(runs, "input_mib"),
            "notes": sorted({r["note"] for r in runs if r["note"]}),
        }
    return by_method


def markdown_table(summaries: dict[str, dict[str, dict]], n_seeds: int) -> str:
    rows = [
        f"| workload | method | fresh process s (median of {n_seeds}) | in session s "
        "| in session time / ours | inertia | ours inertia / this | peak RSS increase (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, by_method in summaries.items():
        reference = by_method[WORKLOADS[name].reference]
        for method, stats in by_method.items():
            label = f"**{method}**" if method == WORKLOADS[name].reference else method
            rows.append(
                f"| {name} | {label} | {stats['seconds']:.3f} | {stats['warm_seconds']:.3f} "
                f"| {stats['warm_seconds'] / reference['warm_seconds']:.1f}x "
                f"| {stats['inertia']:.6e} "
                f"| {reference['inertia'] / stats['inertia']:.5f} "
                f"| {stats['peak_mib']:.0f} |"
            )
    return "\n".join(rows)


def check_targets(summaries: dict[str, dict[str, dict]]) -> list[tuple[str, bool, str]]:
    """Evaluate the issue's targets; return (target, passed, measured) triples."""
    checks = []

    def add(target, passed, measured):
        checks.append((target, bool(passed), measured))

    def faster(name, ours, other, label, factor=1.0):
        # in session: what a napari or console user waits, each library warm
        add(
            f"{name} ours >= {factor:g}x faster than {label} (in session)"
            if factor > 1
            else f"{name} ours time <= {label} (in session)",
            other["warm_seconds"] >= factor * ours["warm_seconds"],
            f"{other['warm_seconds'] / ours['warm_seconds']:.2f}x",
        )

    def lower(name, ours, reference, label, slack=1.0):
        bound = f"{slack:g} x {label}" if slack != 1.0 else label
        add(
            f"{name} ours inertia <= {bound}",
            ours["inertia"] <= slack * reference,
            f"{ours['inertia'] / reference:.5f}",
        )

    if "W1" in summaries:
        s = summaries["W1"]
        ours, cv, sk, fa = s["ours kmeans++"], s["cv2.kmeans"], s["sklearn"], s["faiss"]
        faster("W1", ours, cv, "cv2.kmeans", 20)
        faster("W1", ours, sk, "sklearn", 10)
        faster("W1", ours, fa, "faiss", 5)
        lower("W1", ours, min(cv["inertia"], sk["inertia"]), "best of cv2/sklearn", 1.001)
        add(
            "W1 ours inertia < faiss",
            ours["inertia"] < fa["inertia"],
            f"{ours['inertia'] / fa['inertia']:.5f}",
        )
        add(
            "W1 ours peak memory <= cv2.kmeans",
            ours["peak_mib"] <= cv["peak_mib"],
            f"{ours['peak_mib']:.0f} vs {cv['peak_mib']:.0f} MiB",
        )
    if "W2" in summaries:
        s = summaries["W2"]
        opt, cv = s["ours optimal"], s["cv2.kmeans"]
        faster("W2", opt, cv, "cv2.kmeans", 100)
        for other in ("cv2.kmeans", "sklearn", "ours kmeans++", "kmeans1d"):
            ratio = opt["inertia"] / s[other]["inertia"]
            add(f"W2 optimal inertia <= {other}", ratio <= 1 + ROUNDING_SLACK, f"{ratio:.9f}")
    if "W3" in summaries:
        s = summaries["W3"]
        ours, cv, sk, fa = s["ours kmeans++"], s["cv2.kmeans"], s["sklearn"], s["faiss"]
        faster("W3", ours, cv, "cv2.kmeans", 2)
        faster("W3", ours, sk, "sklearn")
        faster("W3", ours, fa, "faiss")
        best = min(cv["inertia"], sk["inertia"], fa["inertia"])
        lower("W3", ours, best, "best of cv2/sklearn/faiss", 1.001)
    for name in ("W5-64", "W5-256"):
        if name in summaries:
            ours, fa = summaries[name]["ours kmeans++"], summaries[name]["faiss"]
            faster(name, ours, fa, "faiss")
            lower(name, ours, fa["inertia"], "faiss")
            lower(name, ours, W5_INERTIA_BEFORE[name], "ours before issue 11", 1.001)
    if "W6" in summaries:
        ours = summaries["W6"]["ours kmeans++"]
        if "W1" in summaries:
            plain = summaries["W1"]["ours kmeans++"]
            add(
                "W6 time <= 2 x ours on W1 (in session)",
                ours["warm_seconds"] <= 2 * plain["warm_seconds"],
                f"{ours['warm_seconds'] / plain['warm_seconds']:.2f}x",
            )
        add(
            "W6 peak memory <= 3 x the input",
            ours["peak_mib"] <= 3 * ours["input_mib"],
            f"{ours['peak_mib'] / ours['input_mib']:.1f}x",
        )
    if "W7" in summaries:
        opt, k1 = summaries["W7"]["ours optimal"], summaries["W7"]["kmeans1d"]
        gap = abs(opt["inertia"] / k1["inertia"] - 1)
        add("W7 inertia equals kmeans1d's (1e-9 relative)", gap <= ROUNDING_SLACK, f"{gap:.1e}")
        add(
            "W7 time <= 0.5 x kmeans1d (in session)",
            opt["warm_seconds"] <= 0.5 * k1["warm_seconds"],
            f"{opt['warm_seconds'] / k1['warm_seconds']:.2f}x",
        )
    if "W8" in summaries:
        s = summaries["W8"]
        ours, fa, converged = s["ours kmeans++"], s["faiss"], s["faiss converged"]
        faster("W8", ours, fa, "faiss")
        lower("W8", ours, fa["inertia"], "faiss")
        faster("W8", ours, converged, "faiss converged")
        lower("W8", ours, converged["inertia"], "faiss converged")
    if "S1" in summaries:
        s = summaries["S1"]
        ours = s["ours kmeans++"]
        add(
            "S1 ours <= 80 ms (in session)",
            ours["warm_seconds"] <= 0.080,
            f"{1000 * ours['warm_seconds']:.0f} ms",
        )
        faster("S1", ours, s["cv2.kmeans x3"], "cv2.kmeans with 3 attempts", 5)
        lower("S1", ours, s["cv2.kmeans x3"]["inertia"], "cv2.kmeans with 3 attempts", 1.001)
    return checks


# --------------------------------------------------------------------------- first use

FIRST_USE_STEPS = """
import json, sys, time
started = time.perf_counter()
import numpy as np
import napari_kmeans as nk
times = {"import napari_kmeans": time.perf_counter() - started}
rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
steps = [
    ("segment 300x400 uint8 RGB, k 4", lambda: nk.segment(rgb, n_clusters=4, seed=0)),
    ("then k 12", lambda: nk.segment(rgb, n_clusters=12, seed=0)),
    ("then a float32 image, k 4",
     lambda: nk.segment(rgb.astype(np.float32) / 255, n_clusters=4, seed=0)),
    ("then method='optimal' (grey)",
     lambda: nk.segment(rgb[..., 0], n_clusters=4, seed=0, method="optimal")),
    ("then suggest_k", lambda: nk.suggest_k(rgb, seed=0)),
    ("then spatial_weight=0.5",
     lambda: nk.segment(rgb, n_clusters=4, seed=0, spatial_weight=0.5)),
]
for name, step in steps:
    started = time.perf_counter()
    step()
    times[name] = time.perf_counter() - started
print(json.dumps(times))
"""


def first_use_table() -> str:
    """Time the first uses in a fresh process, with an empty numba cache, then a full one."""
    columns = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for regime in ("empty numba cache (first use)", "filled cache (fresh process)"):
            done = subprocess.run(
                [sys.executable, "-c", FIRST_USE_STEPS], capture_output=True, text=True, env=env
            )
            if done.returncode != 0:
                raise RuntimeError(f"first-use steps failed:\n{done.stderr}")
            columns[regime] = json.loads(done.stdout.strip().splitlines()[-1])
    names = list(next(iter(columns.values())))
    rows = [
        "| step (one process, in order) | " + " | ".join(f"{r} s" for r in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name in names:
        rows.append(f"| {name} | " + " | ".join(f"{c[name]:.2f}" for c in columns.values()) + " |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small images and one seed: a smoke run, not a measurement",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds 0..n-1 (default 3, or 1 with --quick)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "napari_kmeans_bench",
        help="where built workloads are cached as .npy",
    )
    parser.add_argument(
        "--first-use",
        action="store_true",
        help="also time the first uses with an empty numba cache (a fresh install)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: "path|workload|method|seed"
    args = parser.parse_args(argv)
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    if args.workloads == ["NONE"]:
        args.workloads = []
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"--workloads: unknown {unknown}; allowed: {sorted(WORKLOADS)}")
    if args.seeds is None:
        args.seeds = 1 if args.quick else len(SEEDS)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        path, workload, method, seed = args.one.split("|")
        print(json.dumps(run_one(Path(path), workload, method, int(seed))))
        return 0

    size_key = "quick" if args.quick else "full"
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    print(f"# napari-kmeans benchmark ({size_key} sizes, seeds {seeds})\n")
    print(environment_header() + "\n")
    summaries = {}
    started = time.perf_counter()
    for name in args.workloads:
        spec = WORKLOADS[name]
        height, width = SIZES[spec.image][size_key]
        path = cached_workload_path(args.cache_dir, spec.image, height, width)
        print(f"- {name}: {spec.description}, {height}x{width}, k={spec.n_clusters}", flush=True)
        results = []
        for seed in seeds:
            for method in spec.methods:
                result = run_in_subprocess(path, name, method, seed)
                results.append(result)
                print(
                    f"  {name} {method:<14} seed {seed}: {result['seconds']:8.3f} s, "
                    f"again {result['warm_seconds']:8.3f} s, "
                    f"inertia {result['inertia']:.6e}, +{result['peak_mib']:.0f} MiB"
                    + (f"  [{result['note']}]" if result["note"] else ""),
                    file=sys.stderr,
                    flush=True,
                )
        summaries[name] = summarise(spec, results)
    print()
    if summaries:
        print(markdown_table(summaries, len(seeds)))
        print()
    if args.first_use:
        print(first_use_table())
        print()
    checks = check_targets(summaries)
    for target, passed, measured in checks:
        print(f"- {'PASS' if passed else 'FAIL'}: {target} (measured {measured})")
    for name, by_method in summaries.items():
        for method, stats in by_method.items():
            for note in stats["notes"]:
                print(f"- WARNING {name} {method}: {note}")
    if args.quick:
        print("\n(--quick: small images, targets are not meaningful at this size)")
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
