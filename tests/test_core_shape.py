"""The shape of the core: one options record, one colour-space registry, one alpha rule,
and imports that point one way only."""

import ast
import inspect
import pathlib
import subprocess
import sys

import dask.array as da
import numpy as np
import pytest

import napari_kmeans as nk
from napari_kmeans.features import color_spaces
from napari_kmeans.options import OPTIONS, make_options, segment_options

SRC = pathlib.Path(nk.__file__).parent


# --------------------------------------------------------------------------- imports


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """Modules of the package that module ``name`` imports, at any depth (in functions too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    # imports for type checkers only never run
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m in MODULES and m != name}


# Deferred back edges, imported inside functions at call time: ``KMeansModel.save`` hands the
# model to the model-file module, which builds models when it loads them; the engine's warm-up
# runs the engine's own entry points, which load the compiled kernels through it.
DEFERRED = {
    ("napari_kmeans.model.kmeans_model", "napari_kmeans.io.model_file"),
    *(
        ("napari_kmeans.engine.compiled", f"napari_kmeans.engine.{name}")
        for name in ("distances", "kmeans", "optimal1d", "lloyd", "grid_rows")
    ),
}


def test_no_import_cycle_under_src():
    graph = {name: _imports(name) for name in MODULES}
    assert "napari_kmeans.api" not in graph["napari_kmeans.lazy.segment"]
    for source, target in DEFERRED:
        graph[source].discard(target)
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


@pytest.mark.slow
@pytest.mark.parametrize(
    "module",
    [
        "lazy.segment",
        "lazy.labels",
        "model.kmeans_model",
        "assess.cross_check",
        "options",
        "features.color_spaces",
    ],
)
def test_each_core_module_imports_alone_in_a_fresh_interpreter(module):
    code = f"import napari_kmeans.{module}"
    subprocess.run([sys.executable, "-c", code], check=True, env=None)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("func", [nk.segment, nk.fit])
def test_public_signatures_are_the_options_table_with_its_defaults(func):
    params = inspect.signature(func).parameters
    names = list(params)
    assert names[1:] == [*OPTIONS, "mask"]
    for name, option in OPTIONS.items():
        assert params[name].default == option.default, name
        assert params[name].kind is (
            params[name].POSITIONAL_OR_KEYWORD
            if name == "n_clusters"
            else params[name].KEYWORD_ONLY
        )
    header = pydoc_text(func).split("\n\n")[1]
    for name in OPTIONS:
        assert f" {name}" in header
        assert f"{name} : {OPTIONS[name].kind}" in func.__doc__


def pydoc_text(func) -> str:
    import pydoc

    return pydoc.render_doc(func, renderer=pydoc.plaintext)


def test_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="colour_space"):
        nk.segment(np.zeros((4, 4)), 2, colour_space="lab")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_clusters": 0}, "n_clusters=0"),
        ({"method": "magic"}, "method='magic'"),
        ({"color_space": "hsv"}, "color_space='hsv'"),
        ({"channel_axis": "first"}, "channel_axis='first'"),
        ({"spatial_weight": -1}, "spatial_weight=-1"),
        ({"spatial_weight": 1e300}, r"spatial_weight=1e\+300 .* from 0 to 1e\+06"),
        ({"seed": -1}, "seed=-1"),
        ({"max_iter": 0}, "max_iter=0"),
        ({"progress": 3}, "progress=3"),
    ],
)
def test_make_options_checks_before_any_image(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_options(**kwargs)


def test_options_record_reaches_the_dask_path_whole():
    img = np.random.default_rng(0).random((30, 40)).astype(np.float32)
    lazy = da.from_array(img, chunks=10)
    for bad in ({"method": "magic"}, {"channel_axis": "first"}, {"tol": -1}):
        with pytest.raises(ValueError):
            nk.segment(lazy, 2, **bad)
    seen = []
    seg = nk.segment(lazy, 2, seed=0, progress=lambda *a: seen.append(a))
    assert seg.params["seed"] == 0
    assert seen and all(s[1] <= s[2] for s in seen)


# --------------------------------------------------------------------------- colour spaces


def test_every_registry_entry_is_accepted_or_refused_by_its_own_rule():
    rng = np.random.default_rng(0)
    for n_channels in (1, 2, 3, 5):
        shape = (12, 10) if n_channels == 1 else (12, 10, n_channels)
        img = rng.integers(0, 255, shape, dtype=np.uint8)
        axis = None if n_channels == 1 else -1
        for space in color_spaces.COLOR_SPACES.values():
            if space.accepts(n_channels):
                seg = nk.segment(img, 2, color_space=space.name, channel_axis=axis, seed=0)
                assert seg.centers.shape[1] == space.n_features(n_channels)
                assert seg.params["features"] == list(space.feature_names(n_channels))
            else:
                with pytest.raises(ValueError, match=f"color_space='{space.name}'"):
                    nk.segment(img, 2, color_space=space.name, channel_axis=axis)
    assert [s.name for s in color_spaces.choices(3)] == list(color_spaces.COLOR_SPACES)


def _srgb_to_oklab(rgb):
    """Ottosson's reference code (https://bottosson.github.io/posts/oklab/), one colour."""

    def linear(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    l_ = (0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b) ** (1 / 3)
    m_ = (0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b) ** (1 / 3)
    s_ = (0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b) ** (1 / 3)
    return (
        0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_,
        1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_,
        0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_,
    )


def test_oklab_matches_ottossons_reference_values():
    oklab = color_spaces.get("oklab")
    white = oklab.convert(np.array([[255, 255, 255]], np.uint8), np.dtype(np.float64))
    np.testing.assert_allclose(white[0], [1.0, 0.0, 0.0], atol=1e-4)
    red = oklab.convert(np.array([[1.0, 0.0, 0.0]]), np.dtype(np.float64))
    np.testing.assert_allclose(red[0], [0.62796, 0.22486, 0.12585], atol=1e-4)
    black = oklab.convert(np.array([[0, 0, 0]], np.uint16), np.dtype(np.float64))
    np.testing.assert_allclose(black[0], [0.0, 0.0, 0.0], atol=1e-6)
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 65536, (50, 3), dtype=np.uint16)
    got = oklab.convert(colours, np.dtype(np.float64))
    want = np.array([_srgb_to_oklab(c / 65535.0) for c in colours])
    np.testing.assert_allclose(got, want, atol=2e-6)
    with pytest.raises(ValueError, match=r"color_space='oklab' needs float images.*\[0, 1\]"):
        oklab.convert(np.array([[0.5, 2.0, 0.1]]), np.dtype(np.float64))


def test_oklab_segments_models_and_model_files_like_any_space(tmp_path):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    seg = nk.segment(img, 4, color_space="oklab", seed=0)
    check = nk.cross_check(img, seg)
    assert check.inertia_ratio <= 1.0 + 1e-3
    # features are independent of the dtype: the uint8 model labels the same image in uint16
    model = nk.fit(img, 4, color_space="oklab", seed=0)
    wide = img.astype(np.uint16) * 257
    np.testing.assert_array_equal(model.predict(wide).labels, seg.labels)
    model.save(tmp_path / "m.json")
    np.testing.assert_array_equal(
        nk.load_model(tmp_path / "m.json").predict(img).labels, seg.labels
    )


# --------------------------------------------------------------------------- alpha


def _rgba(seed=0, shape=(20, 30)):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (*shape, 1), dtype=np.uint8)
    return rgb, np.concatenate([rgb, alpha], axis=-1)


def test_explicit_rgb_axis_keeps_alpha_out_of_the_clustering():
    rgb, rgba = _rgba()
    auto = nk.segment(rgba, 4, seed=0)
    explicit = nk.segment(rgba, 4, seed=0, channel_axis="rgb")
    plain = nk.segment(rgb, 4, seed=0)
    for seg in (auto, explicit):
        np.testing.assert_array_equal(seg.labels, plain.labels)
        assert seg.palette.shape == (4, 3)
        np.testing.assert_array_equal(seg.recolored[..., 3], rgba[..., 3])
        np.testing.assert_array_equal(seg.recolored[..., :3], plain.recolored)
    for space in color_spaces.choices(3):
        seg = nk.segment(rgba, 3, seed=0, channel_axis="rgb", color_space=space.name)
        ref = nk.segment(rgb, 3, seed=0, color_space=space.name)
        np.testing.assert_array_equal(seg.labels, ref.labels)
    with pytest.raises(ValueError, match="channel_axis='rgb' needs a last axis of 3"):
        nk.segment(np.zeros((4, 4, 5)), 2, channel_axis="rgb")


def test_an_int_axis_clusters_every_channel():
    _, rgba = _rgba()
    seg = nk.segment(rgba, 3, seed=0, channel_axis=-1)
    assert seg.palette.shape == (3, 4)


def test_alpha_rule_holds_on_the_dask_path_and_in_models():
    rgb, rgba = _rgba(3)
    ref = nk.segment(rgb, 4, seed=0)
    lazy = da.from_array(rgba, chunks=(7, 11, 4))
    seg = nk.segment(lazy, 4, seed=0, channel_axis="rgb")
    np.testing.assert_array_equal(seg.labels.compute(), ref.labels)
    np.testing.assert_array_equal(seg.recolored.compute()[..., 3], rgba[..., 3])
    model = nk.fit(rgba, 4, seed=0, channel_axis="rgb")
    np.testing.assert_array_equal(model.predict(rgba).labels, ref.labels)
    np.testing.assert_array_equal(model.predict(lazy).labels.compute(), ref.labels)


def test_napari_rgba_layer_gives_the_labels_and_palette_of_segment():
    napari_layers = pytest.importorskip("napari.layers")
    from napari_kmeans._napari.segmentation import prepare

    rgb, rgba = _rgba(5)
    job = prepare(None, napari_layers.Image(rgba, rgb=True), n_clusters=4, seed=0)
    seg = job.run().seg
    ref = nk.segment(rgba, 4, seed=0)
    np.testing.assert_array_equal(seg.labels, ref.labels)
    assert seg.palette.shape == (4, 3)


# --------------------------------------------------------------------------- progress


@pytest.mark.parametrize("lazy", [False, True])
def test_progress_reaches_the_engine_and_labelling_on_every_path(lazy):
    img = np.random.default_rng(4).random((60, 80, 3)).astype(np.float32)
    image = da.from_array(img, chunks=(30, 40, 3)) if lazy else img
    seen = []
    nk.segment(image, 3, seed=0, progress=lambda *a: seen.append(a))
    stages = {s[0] for s in seen}
    assert {"seeding", "lloyd", "labelling"} <= stages
    assert ("reading" in stages) == lazy
    seen.clear()
    model = nk.fit(image, 3, seed=0, progress=lambda *a: seen.append(a))
    assert {"seeding", "lloyd"} <= {s[0] for s in seen}
    seen.clear()
    model.predict(img, progress=lambda *a: seen.append(a))
    assert {s[0] for s in seen} == {"labelling"}


def test_progress_must_be_callable_everywhere():
    img = np.zeros((4, 4), np.uint8)
    seg = nk.segment(img, 1, seed=0)
    for call in (
        lambda: nk.segment(img, 1, progress="bar"),
        lambda: seg.model.predict(img, progress="bar"),
        lambda: nk.cross_check(img, seg, progress="bar"),
    ):
        with pytest.raises(ValueError, match="progress='bar'"):
            call()


def test_progress_reaches_the_exact_1d_method():
    img = np.random.default_rng(6).random((50, 60)).astype(np.float32)
    seen = []
    nk.segment(img, 4, method="optimal", seed=0, progress=lambda *a: seen.append(a))
    assert {"optimal 1-D", "labelling"} <= {s[0] for s in seen}


def test_raising_in_progress_stops_a_segmentation():
    class Stop(Exception):
        pass

    def stop(stage, done, total):
        raise Stop

    img = np.random.default_rng(5).random((40, 40)).astype(np.float32)
    with pytest.raises(Stop):
        nk.segment(img, 3, seed=0, progress=stop)
    with pytest.raises(Stop):
        nk.segment(da.from_array(img, chunks=20), 3, seed=0, progress=stop)
    reads = []

    def stop_reading(stage, done, total):
        reads.append(stage)
        if stage == "reading" and done > 0:
            raise Stop

    grey = (img * 255).astype(np.uint8)
    with pytest.raises(Stop):
        nk.segment(da.from_array(grey, chunks=10), 3, seed=0, progress=stop_reading)
    assert set(reads) == {"reading"}


# --------------------------------------------------------------------------- recorded params

RGB = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
TWO_CHANNELS = np.random.default_rng(1).integers(0, 4000, (2, 20, 30), dtype=np.uint16)


@pytest.mark.parametrize(
    "image, options",
    [
        (RGB, {"color_space": "lab", "max_iter": 40, "n_init": 2, "tol": 1e-3}),
        (RGB, {"spatial_weight": 0.4, "spacing": (2.0, 1.0)}),
        (TWO_CHANNELS, {"channel_axis": 0, "standardize": True}),
        (TWO_CHANNELS[0], {"method": "optimal"}),
    ],
)
def test_every_recorded_option_repeats_the_run(image, options):
    seg = nk.segment(image, 3, seed=5, **options)
    kept = segment_options(seg.params)
    # every keyword of segment that chooses a run is recorded, and kept
    # (sample_size only chooses how a dask array is fitted: recorded there)
    not_recorded = {"image", "mask", "callback", "progress", "sample_size"}
    assert set(kept) == set(inspect.signature(nk.segment).parameters) - not_recorded
    again = nk.segment(image, **kept)
    np.testing.assert_array_equal(again.labels, seg.labels)
    for name in kept:
        assert again.params[name] == seg.params[name], name
    model = nk.fit(image, **segment_options(seg.model.params))
    np.testing.assert_array_equal(model.predict(image).labels, seg.labels)


def test_a_generator_seed_is_not_repeated():
    seg = nk.segment(RGB, 2, seed=np.random.default_rng(0))
    assert seg.params["seed"] == "numpy.random.Generator"
    assert "seed" not in segment_options(seg.params)
