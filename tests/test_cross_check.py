"""Cross-check with cv2.kmeans, and the agreement measures against scikit-learn and SciPy."""

import subprocess
import sys
import time
import tracemalloc

import dask.array as da
import numpy as np
import psutil
import pytest
from sklearn.metrics import adjusted_rand_score

import napari_kmeans as nk
from napari_kmeans.assess.agreement import adjusted_rand_index
from napari_kmeans.features.recipe import FeatureRecipe


def colour_blobs(seed, shape=(60, 80)):
    rng = np.random.default_rng(seed)
    colours = np.array([[230, 30, 30], [30, 220, 40], [20, 30, 230], [240, 240, 230], [15, 10, 5]])
    truth = rng.integers(0, len(colours), shape)
    img = np.clip(colours[truth] + rng.normal(0, 6, (*shape, 3)), 0, 255).astype(np.uint8)
    return img, truth


@pytest.mark.parametrize("seed", range(3))
def test_well_separated_blobs_agree_with_opencv(seed):
    img, truth = colour_blobs(seed)
    seg = nk.segment(img, n_clusters=5, seed=seed)
    check = nk.cross_check(img, seg, seed=seed)
    assert check.adjusted_rand_index == 1.0
    assert check.inertia_ratio <= 1.0 + 1e-6
    assert check.max_center_distance < 0.01
    assert adjusted_rand_score(truth.ravel(), seg.labels.ravel()) == 1.0
    assert check.opencv_seconds > 0 and check.ours_seconds == seg.seconds
    assert set(check.to_dict()) >= {"adjusted_rand_index", "inertia_ratio", "opencv_seconds"}


def test_cross_check_follows_mask_colour_space_and_spatial_features():
    img, _ = colour_blobs(5, (40, 40))
    mask = np.zeros((40, 40), bool)
    mask[:, :25] = True
    seg = nk.segment(img, 5, seed=0, mask=mask, color_space="lab")
    check = nk.cross_check(img, seg)
    assert check.adjusted_rand_index == 1.0
    seg = nk.segment(img, 5, seed=0, spatial_weight=0.01)
    assert nk.cross_check(img, seg).adjusted_rand_index > 0.95


def test_opencv_inertia_is_recomputed_from_its_labels():
    img, _ = colour_blobs(7, (30, 30))
    seg = nk.segment(img, 2, seed=0)  # few clusters for five colours: a real optimisation
    check = nk.cross_check(img, seg)
    assert check.opencv_inertia > 0
    assert check.inertia_ratio == pytest.approx(seg.inertia / check.opencv_inertia, rel=1e-5)


def test_cross_check_refuses_another_image():
    img, _ = colour_blobs(1, (20, 20))
    seg = nk.segment(img, 3, seed=0)
    with pytest.raises(ValueError, match="same image"):
        nk.cross_check(img[:10], seg)


@pytest.mark.parametrize("seed", range(20))
def test_adjusted_rand_index_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, int(rng.integers(1, 6)), 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 4, 200))
    assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)


def test_cross_check_uses_the_model_recipe_of_a_spatial_dask_fit_on_a_sample():
    # One outlier pixel outside the sample: the fit scaled coordinates by the sample's
    # colour range (1.0); re-deriving it from every pixel gave 5.0, an inertia ratio of 7
    # and an adjusted Rand index of 0.7 for a correct segmentation.
    rng = np.random.default_rng(0)
    img = np.zeros((200, 200), np.float32)
    img[:, 100:] = 1.0
    img = np.clip(img + rng.normal(0, 0.05, img.shape).astype(np.float32), 0, 1)
    img[7, 3] = 5.0
    lazy = da.from_array(img, chunks=50)
    seg = nk.segment(lazy, 3, spatial_weight=1.0, sample_size=2000, seed=0)
    assert seg.model.recipe.value_range == pytest.approx(1.0, abs=0.05)
    check = nk.cross_check(img, seg)
    assert check.inertia_ratio < 1.05
    assert check.adjusted_rand_index > 0.95
    # the same on the dask array itself
    assert nk.cross_check(lazy, seg).inertia_ratio == pytest.approx(check.inertia_ratio)


def test_cross_check_reports_progress_and_stops_while_opencv_runs():
    rng = np.random.default_rng(0)
    img = rng.random((1000, 1000, 3)).astype(np.float32)
    centers = rng.random((64, 3))
    model = nk.KMeansModel(
        FeatureRecipe("rgb", 0.0, (1.0, 1.0), 1.0, np.dtype(np.float32)),
        centers,
        centers.copy(),
        np.ones(64, np.int64),
        0.0,
        1,
        "auto",
        3,
        np.dtype(np.float32),
        {
            "channel_axis": "auto",
            "n_channels": 3,
            "fitted_dtype": "float32",
            "tol": 0.0,
            "max_iter": 10_000,
        },
    )
    seg = model.predict(img)
    seen, stopped = [], {}
    children = {p.pid for p in psutil.Process().children()}

    class Stop(Exception):
        pass

    def progress(stage, done, total):
        seen.append((stage, done, total))
        if done == total // 3 and "at" not in stopped:  # features written: OpenCV is running
            stopped["at"] = time.perf_counter()
        if "at" in stopped and time.perf_counter() - stopped["at"] > 0.5:
            raise Stop

    with pytest.raises(Stop):
        nk.cross_check(img, seg, progress=progress)
    assert time.perf_counter() - stopped["at"] < 1.5
    assert {s[0] for s in seen} == {"cross-check"}
    dones = [s[1] for s in seen]
    assert dones == sorted(dones) and all(s[1] <= s[2] for s in seen)
    assert {p.pid for p in psutil.Process().children()} == children  # OpenCV's is gone


def test_cross_check_memory_is_bounded_by_blocks_not_by_the_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)  # 9 MB, 3 MP
    seg = nk.segment(img, 4, seed=0, spatial_weight=0.5)
    tracemalloc.start()
    nk.cross_check(img, seg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # before: float32 features, float64 copies and label inverses of every pixel (> 10x)
    assert peak < 2.5 * img.nbytes


def test_cross_check_runs_from_a_script_without_a_main_guard(tmp_path):
    # multiprocessing's spawn would re-run this script in the child and fail
    script = tmp_path / "check.py"
    script.write_text(
        "import numpy as np, napari_kmeans as nk\n"
        "img = np.repeat(np.array([[0, 200]], np.uint8), 20, axis=0)\n"
        "print(nk.cross_check(img, nk.segment(img, 2, seed=0)).adjusted_rand_index)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "1.0"
