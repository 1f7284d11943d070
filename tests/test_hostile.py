"""Hostile inputs: every file of ``hostile_corpus`` loads correctly or raises the
module's own error, and hypothesis mutates bytes and JSON to find anything else.

The only exceptions ``load_image`` may raise are ``ImageLoadError``; ``load_model`` only
``ModelFileError``; and any model ``load_model`` accepts must label an image of its kind.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tifffile")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_corpus  # noqa: E402
from napari_kmeans.io.images import ImageLoadError, load_image  # noqa: E402
from napari_kmeans.io.model_file import ModelFileError, load_model  # noqa: E402

ALLOWED_DTYPES = {np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)}
SEEDS = hostile_corpus.image_seeds()
IMAGES = hostile_corpus.image_corpus()
MODELS = hostile_corpus.model_corpus()
BUDGET = 10**7  # pixels: the bombs claim 10^10


def _load_or_refuse(path: Path) -> np.ndarray | None:
    """The image, or None when refused with ImageLoadError naming the path."""
    try:
        image = load_image(path, max_pixels=BUDGET)
    except ImageLoadError as error:
        assert str(path) in str(error)
        return None
    assert isinstance(image, np.ndarray) and image.dtype in ALLOWED_DTYPES
    assert image.ndim in (2, 3, 4) and image.size > 0
    return image


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for name, data in IMAGES.items():
        (folder / name).write_bytes(data)
    return folder


def test_every_corpus_image_loads_or_is_refused(image_folder):
    assert len(IMAGES) > 1000
    loaded = 0
    for name in IMAGES:
        loaded += _load_or_refuse(image_folder / name) is not None
    assert loaded >= len(SEEDS)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_loads_as_written(image_folder, name):
    expected = SEEDS[name][1]
    image = _load_or_refuse(image_folder / name)
    assert image is not None
    if expected is not None:  # lossless formats: exactly the array written
        np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("name", sorted(hostile_corpus.bomb_headers()))
def test_bombs_are_refused_from_the_header(image_folder, name):
    with pytest.raises(ImageLoadError, match="pixels, more than the budget"):
        load_image(image_folder / name)


@pytest.mark.parametrize("name", sorted(hostile_corpus.odd_dtype_tiffs()))
def test_odd_pixel_types_are_refused(image_folder, name):
    assert _load_or_refuse(image_folder / name) is None


def test_a_fifo_and_a_device_are_refused(tmp_path):
    fifo = tmp_path / "fifo.tif"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), Path("/dev/null")):
        with pytest.raises(ImageLoadError, match="not a regular file"):
            load_image(path)
    with pytest.raises(ModelFileError, match="FIFO"):
        load_model(fifo)


def _mutations():
    names = sorted(SEEDS)
    return st.tuples(
        st.sampled_from(names),
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "insert", "delete", "truncate"]),
                st.floats(0, 1, exclude_max=True),
                st.integers(0, 255),
            ),
            min_size=1,
            max_size=4,
        ),
    )


def _mutate(data: bytes, edits) -> bytes:
    buffer = bytearray(data)
    for kind, where, byte in edits:
        if not buffer:
            break
        at = int(where * len(buffer))
        if kind == "flip":
            buffer[at] = byte
        elif kind == "insert":
            buffer[at:at] = bytes([byte]) * (1 + byte % 8)
        elif kind == "delete":
            del buffer[at : at + 1 + byte % 8]
        else:
            del buffer[at:]
    return bytes(buffer)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutation=_mutations())
def test_load_image_on_mutated_bytes_raises_only_image_load_error(tmp_path, mutation):
    name, edits = mutation
    path = tmp_path / f"mutated_{name}"
    path.write_bytes(_mutate(SEEDS[name][0], edits))
    _load_or_refuse(path)


# ---------------------------------------------------------------- models


def _image_for(model) -> np.ndarray:
    """A small image of the kind ``model`` was fitted on, built from its fields."""
    params, recipe = model.params, model.recipe
    dtype = np.dtype(params["fitted_dtype"])
    spatial = (2,) * len(recipe.spacing)  # sides of 2: never mistaken for RGB by "auto"
    rng = np.random.default_rng(0)
    shape = (*spatial, params["n_channels"])
    if dtype.kind == "f":
        values = rng.random(shape).astype(dtype)
    else:
        values = rng.integers(max(np.iinfo(dtype).min, 0), min(np.iinfo(dtype).max, 255), shape)
        values = values.astype(dtype)
    axis = params["channel_axis"]
    if axis in ("auto", "rgb") and params["n_channels"] == 3:
        return values
    if axis is None or axis == "auto":
        return values[..., 0]
    return np.moveaxis(values, -1, axis)


def _load_model_or_refuse(path: Path):
    try:
        model = load_model(path)
    except ModelFileError as error:
        assert str(path) in str(error)
        return None
    seg = model.predict(_image_for(model))  # any accepted model can be applied
    assert 1 <= seg.labels.min() and seg.labels.max() <= model.n_clusters
    return model


def test_every_corpus_model_loads_and_applies_or_is_refused(tmp_path):
    accepted = []
    for name, text in MODELS.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        if _load_model_or_refuse(path) is not None:
            accepted.append(name)
    assert "valid.json" in accepted
    assert "nested.json" not in accepted and "nested_list.json" not in accepted
    needed = [
        "format", "version", "recipe", "recipe_color_space", "recipe_spatial_weight",
        "recipe_spacing", "recipe_value_range", "recipe_dtype", "centers", "palette", "counts",
        "inertia", "n_iter", "params", "params_channel_axis", "params_n_channels",
        "params_fitted_dtype",
    ]  # fmt: skip
    for field in needed:  # removed or null: always refused, naming the file
        refused = [
            name for name in MODELS if f"_{field}_removed" in name or f"_{field}_bad0" in name
        ]
        assert refused and not set(refused) & set(accepted), field


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=8,
)


SEED_MODEL = hostile_corpus.model_seed()
FIELD_PATHS = list(hostile_corpus.leaf_paths(SEED_MODEL))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_load_model_on_mutated_json_raises_only_model_file_error(tmp_path, data):
    path = data.draw(st.sampled_from(FIELD_PATHS))
    removable = bool(path) and not isinstance(path[-1], int)
    value = data.draw(_JSON | st.just(hostile_corpus.REMOVE) if removable else _JSON)
    file = tmp_path / "mutated.json"
    file.write_text(json.dumps(hostile_corpus.replaced(SEED_MODEL, path, value)), encoding="utf-8")
    _load_model_or_refuse(file)


def _write_model(tmp_path: Path, document, name: str = "model.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("params", "channel_axis"), hostile_corpus.REMOVE, "params.channel_axis"),
        (("params", "fitted_dtype"), "u1", "params.fitted_dtype"),
        (("params", "n_channels"), 4, "params.channel_axis"),
        (("recipe", "spacing"), [1.0, 1.0, 1.0], "centers[0]"),
        (("recipe", "dtype"), "int8", "recipe.dtype"),
        (("recipe", "value_range"), -1, "recipe.value_range"),
        (("centers",), [[1e300, 0, 0, 0, 0]] * 3, "centers"),
        (("counts",), [1, 2], "counts"),
        (("counts", 0), 1.5, "counts[0]"),
        (("palette", 1), [1, 2], "palette[1]"),
        (("n_iter",), True, "n_iter"),
        (("inertia",), float("inf"), "inertia"),
    ],
)
def test_a_bad_field_is_a_model_file_error_naming_the_file_and_field(tmp_path, path, value, field):
    # each of these was once accepted by load_model, or raised another error
    file = _write_model(tmp_path, hostile_corpus.replaced(SEED_MODEL, path, value))
    with pytest.raises(ModelFileError) as raised:
        load_model(file)
    assert str(file) in str(raised.value) and f"field '{field}'" in str(raised.value)


def test_deeply_nested_json_is_a_model_file_error(tmp_path):
    file = _write_model(tmp_path, MODELS["nested.json"])
    with pytest.raises(ModelFileError, match="nested too deeply"):
        load_model(file)


def test_a_saved_model_loads_whole_and_labels_as_before(tmp_path):
    import napari_kmeans as nk

    image = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    for options in ({}, {"spatial_weight": 0.5}, {"color_space": "lab"}, {"channel_axis": 2}):
        model = nk.fit(image, n_clusters=3, seed=0, **options)
        model.save(tmp_path / "m.json")
        loaded = load_model(tmp_path / "m.json")
        np.testing.assert_array_equal(loaded.predict(image).labels, model.predict(image).labels)


def test_a_model_of_more_clusters_than_labels_hold_is_refused_before_its_rows_are_read(tmp_path):
    k = 65536  # one more than a 16-bit label image holds
    width = len(SEED_MODEL["centers"][0])
    document = {
        **SEED_MODEL,
        "centers": [[0.0] * width] * k,
        "palette": [[0.0] * len(SEED_MODEL["palette"][0])] * k,
        "counts": [1] * k,
        "params": {**SEED_MODEL["params"], "n_clusters": k},
    }
    file = _write_model(tmp_path, document)
    with pytest.raises(ModelFileError) as raised:
        load_model(file)
    assert str(file) in str(raised.value) and "field 'centers'" in str(raised.value)
    assert "65536 clusters" in str(raised.value) and "at most 65535" in str(raised.value)
