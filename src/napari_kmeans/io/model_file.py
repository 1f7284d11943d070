"""Model files: a fitted :class:`~napari_kmeans.KMeansModel` as small JSON, and back.

Examples
--------
>>> import os, tempfile
>>> import napari_kmeans as nk
>>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "m.json")
>>> save_model(model, path)
>>> load_model(path).palette.ravel().tolist()
[5.0, 205.0]
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import numpy as np

from ..features import color_spaces
from ..features import pixels as ft
from ..features.recipe import FeatureRecipe
from ..features.smooth import smoothing_from_dict
from ..features.texture import check_texture
from ..features.texture import feature_names as texture_names
from ..model.kmeans_model import KMeansModel
from ..outputs.cleanup import Cleanup, check_min_size, check_regularize
from ..versions import library_versions
from .safe_files import read_regular_file, write_text

MODEL_FORMAT = "napari-kmeans-model"
# 2 adds "cleanup" (label clean-up); a model without one is still written as version 1, so
# that older readers load it, and refuse (rather than ignore) one with a clean-up.
MODEL_VERSION = 2
#: The most clusters a model file (and a label image of the command, 16-bit) holds.
MAX_CLUSTERS = 2**16 - 1


class ModelFileError(ValueError):
    """A model file could not be read; the message names the file and the reason.

    A ``ValueError``, raised by :func:`load_model`.

    Examples
    --------
    >>> try:
    ...     load_model("no_such_model.json")
    ... except ModelFileError as err:
    ...     print(err)
    cannot read model file 'no_such_model.json': No such file or directory
    """


def model_to_dict(model: KMeansModel) -> dict:
    """Return the JSON-serialisable content of the model file.

    Parameters
    ----------
    model : KMeansModel
        The fitted model.

    Returns
    -------
    dict
        Format name and version, recipe, centres, palette, counts, inertia, params.

    Examples
    --------
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> content = model_to_dict(model)
    >>> content["format"], content["counts"]
    ('napari-kmeans-model', [2, 2])
    """
    recipe = asdict(model.recipe)
    recipe["dtype"] = str(model.recipe.dtype)
    recipe["spacing"] = list(model.recipe.spacing)
    recipe["scale"] = None if model.recipe.scale is None else list(model.recipe.scale)
    recipe["smooth"] = None if model.recipe.smooth is None else model.recipe.smooth.to_dict()
    texture_scale = model.recipe.texture_scale
    recipe["texture_scale"] = None if texture_scale is None else list(texture_scale)
    merged = {}
    if model.source_centers is not None and model.source_labels is not None:  # merged
        merged = {
            "source_centers": model.source_centers.tolist(),
            "source_labels": model.source_labels.tolist(),
        }
    return {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION if model.cleanup.active else 1,
        "recipe": recipe,
        "centers": model.centers.tolist(),
        "palette": model.palette.tolist(),
        "counts": model.counts.tolist(),
        "inertia": model.inertia,
        "n_iter": model.n_iter,
        "params": model.params,
        **merged,
        **({"cleanup": model.cleanup.to_params()} if model.cleanup.active else {}),
    }


def save_model(model: KMeansModel, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write ``model`` as a small human-readable JSON file.

    The file is written under a temporary name beside ``path`` and renamed when complete:
    a full disk or Ctrl-C never leaves a partial model, nor destroys an older one.

    Parameters
    ----------
    model : KMeansModel
        The fitted model.
    path : str or os.PathLike
        Destination file.
    overwrite : bool
        Whether an existing file at ``path`` may be replaced (False: ``FileExistsError``).

    Examples
    --------
    >>> import os, tempfile
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> save_model(model, path)
    >>> save_model(model, path, overwrite=False)
    Traceback (most recent call last):
    ...
    FileExistsError: ...
    """
    text = json.dumps(model_to_dict(model), indent=1)
    write_text(path, text + "\n", overwrite=overwrite)


def load_model(path: str | os.PathLike) -> KMeansModel:
    """Read a model written by :meth:`KMeansModel.save`, checking every field.

    Any file this accepts can be applied by :meth:`KMeansModel.predict` to an image of the
    kind it was fitted on.

    Parameters
    ----------
    path : str or os.PathLike
        A model file (a regular file: a FIFO or device is refused without being opened).

    Returns
    -------
    KMeansModel
        The model.

    Raises
    ------
    ModelFileError
        A ``ValueError`` naming the file, and the field when one is wrong, when the file is
        missing, not a model, corrupted or from a newer format version.

    Examples
    --------
    >>> import os, tempfile
    >>> import napari_kmeans as nk
    >>> model = nk.fit(np.array([[0, 10, 200, 210]], np.uint8), n_clusters=2, seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> model.save(path)
    >>> load_model(path).palette.ravel().tolist()
    [5.0, 205.0]
    """
    try:
        data = json.loads(read_regular_file(path).decode("utf-8"))
    except OSError as error:
        raise ModelFileError(
            f"cannot read model file '{path}': {error.strerror or error}"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"cannot read model file '{path}': {error}") from None
    except RecursionError:
        raise ModelFileError(
            f"cannot read model file '{path}': its JSON is nested too deeply"
        ) from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"'{path}' is not a napari-kmeans model file")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > MODEL_VERSION:
        raise ModelFileError(
            f"model file '{path}' has format version {version!r}; this napari-kmeans "
            f"({library_versions()['napari_kmeans']}) reads versions up to {MODEL_VERSION}: "
            "upgrade napari-kmeans"
        )
    try:
        return _model_from_dict(data)
    except _FieldError as error:
        raise ModelFileError(
            f"model file '{path}' is corrupted: field '{error.field}' {error.problem}"
        ) from None


class _FieldError(Exception):
    def __init__(self, field: str, problem: str):
        super().__init__(field, problem)
        self.field, self.problem = field, problem


def _model_from_dict(data: dict) -> KMeansModel:
    if data["version"] < 1:
        raise _FieldError("version", f"is {data['version']}: format versions start at 1")
    recipe_data = _member(data, "recipe", dict)
    params = _member(data, "params", dict)
    n_channels = _integer(params, "params.n_channels", minimum=1)
    color_space = _member(recipe_data, "recipe.color_space", str)
    try:
        space = color_spaces.check(color_space, n_channels)
    except ValueError as error:
        raise _FieldError(
            "recipe.color_space", f"does not fit params.n_channels: {error}"
        ) from None
    if params.get("color_space", color_space) != color_space:
        raise _FieldError("params.color_space", "differs from recipe.color_space")
    spacing = _member(recipe_data, "recipe.spacing", list)
    if not 1 <= len(spacing) <= 31:
        raise _FieldError("recipe.spacing", "must hold one number per spatial axis (1 to 31)")
    spacing = tuple(
        _number(spacing, f"recipe.spacing[{i}]", index=i, positive=True)
        for i in range(len(spacing))
    )
    spatial_weight = _number(recipe_data, "recipe.spatial_weight")
    value_range = _number(recipe_data, "recipe.value_range")
    feature_dtype = _member(recipe_data, "recipe.dtype", str)
    if feature_dtype not in ("float32", "float64"):
        raise _FieldError("recipe.dtype", f"is {feature_dtype!r}: use 'float32' or 'float64'")
    scale = None  # standardize=True: one divisor per colour feature
    if recipe_data.get("scale") is not None:
        divisors = _member(recipe_data, "recipe.scale", list)
        n_colour = space.n_features(n_channels)
        if len(divisors) != n_colour:
            raise _FieldError("recipe.scale", f"must hold {n_colour} numbers, one per feature")
        scale = tuple(
            _number(divisors, f"recipe.scale[{i}]", index=i, positive=True) for i in range(n_colour)
        )
    smooth, texture, texture_scale = _filters(recipe_data, len(spacing))
    recipe = FeatureRecipe(
        color_space,
        spatial_weight,
        spacing,
        value_range,
        np.dtype(feature_dtype),
        scale,
        smooth,
        texture,
        texture_scale,
    )
    _check_layout(params, n_channels, len(spacing))

    n_features = (
        space.n_features(n_channels)
        + len(texture_scale or ())
        + (len(spacing) if spatial_weight > 0 else 0)
    )
    if len(_member(data, "centers", list)) > MAX_CLUSTERS:  # before reading a row
        raise _FieldError(
            "centers",
            f"holds {len(data['centers'])} clusters: a model holds at most {MAX_CLUSTERS}",
        )
    centers = _matrix(data, "centers", None, n_features)
    k = len(centers)
    # squared distances between features and centres must stay finite in the feature dtype
    limit = float(np.sqrt(np.finfo(recipe.dtype).max / n_features)) / 2
    if np.abs(centers).max() > limit:
        raise _FieldError("centers", f"must lie within ±{limit:.3g} for {feature_dtype} features")
    if spatial_weight * value_range > limit:  # the largest coordinate feature
        raise _FieldError(
            "recipe.spatial_weight",
            f"times recipe.value_range must be at most {limit:.3g} for {feature_dtype} features",
        )
    palette = _matrix(data, "palette", k, n_channels)
    counts = _member(data, "counts", list)
    if len(counts) != k:
        raise _FieldError("counts", f"has {len(counts)} values for {k} centres")
    counts = np.array([_integer(counts, f"counts[{i}]", index=i) for i in range(k)], np.int64)
    if "n_clusters" in params and _integer(params, "params.n_clusters", minimum=1) != k:
        raise _FieldError("params.n_clusters", f"is not the number of centres ({k})")
    if "max_iter" in params:  # cross_check reads these from a predicted segmentation
        _integer(params, "params.max_iter", minimum=1)
    if "tol" in params:
        _number(params, "params.tol")
    return KMeansModel(
        recipe,
        centers,
        palette,
        counts,
        _number(data, "inertia"),
        _integer(data, "n_iter"),
        params["channel_axis"],
        n_channels,
        np.dtype(params["fitted_dtype"]),
        dict(params),
        **_merged_sources(data, k, n_features, limit),
        cleanup=_cleanup(data),
    )


def _cleanup(data: dict) -> Cleanup:
    """Read the label clean-up (files written before it existed have none)."""
    if data.get("cleanup") is None:
        return Cleanup()
    cleanup = _member(data, "cleanup", dict)
    try:
        return Cleanup(
            check_regularize(cleanup.get("regularize")), check_min_size(cleanup.get("min_size"))
        )
    except ValueError as error:
        raise _FieldError("cleanup", f"is not usable: {error}") from None


def _filters(recipe_data: dict, spatial_ndim: int):
    """Read the recipe's smoothing and texture (absent from files written before them)."""
    try:
        smooth = smoothing_from_dict(recipe_data.get("smooth"))
    except ValueError as error:
        raise _FieldError("recipe.smooth", str(error)) from None
    if smooth is not None and smooth.size is None:
        raise _FieldError("recipe.smooth", "needs a size")
    if recipe_data.get("texture") is None:
        return smooth, None, None
    texture = _number(recipe_data, "recipe.texture", positive=True)
    try:
        check_texture(texture)
    except ValueError as error:
        raise _FieldError("recipe.texture", str(error)) from None
    divisors = _member(recipe_data, "recipe.texture_scale", list)
    n_texture = len(texture_names(texture, spatial_ndim))
    if len(divisors) != n_texture:
        raise _FieldError("recipe.texture_scale", f"must hold {n_texture} numbers")
    texture_scale = tuple(
        _number(divisors, f"recipe.texture_scale[{i}]", index=i, positive=True)
        for i in range(n_texture)
    )
    return smooth, texture, texture_scale


def _merged_sources(data: dict, k: int, n_features: int, limit: float) -> dict:
    """Read the fitted centres of a merged model and the label of each (none otherwise)."""
    if data.get("source_centers") is None:
        return {}
    fitted = _matrix(data, "source_centers", None, n_features)
    if np.abs(fitted).max() > limit:
        raise _FieldError("source_centers", f"must lie within ±{limit:.3g}")
    labels = _member(data, "source_labels", list)
    if len(labels) != len(fitted):
        raise _FieldError("source_labels", f"has {len(labels)} values for {len(fitted)} centres")
    source_labels = np.array(
        [_integer(labels, f"source_labels[{i}]", index=i, minimum=1) for i in range(len(labels))],
        np.int64,
    )
    if set(source_labels.tolist()) != set(range(1, k + 1)):
        raise _FieldError("source_labels", f"must name every label from 1 to {k}, no other")
    return {"source_centers": fitted, "source_labels": source_labels}


def _check_layout(params: dict, n_channels: int, spatial_ndim: int) -> None:
    """Refuse a channel axis or fitted dtype that describes no image ``predict`` can label."""
    if "channel_axis" not in params:
        raise _FieldError("params.channel_axis", "is missing")
    channel_axis = params["channel_axis"]
    try:
        layout = ft.channel_layout(_shape_for(channel_axis, n_channels, spatial_ndim), channel_axis)
    except (ValueError, TypeError) as error:
        raise _FieldError("params.channel_axis", f"is not usable: {error}") from None
    if layout.n_channels != n_channels or len(layout.spatial_shape) != spatial_ndim:
        raise _FieldError(
            "params.channel_axis",
            f"is {channel_axis!r}, which gives no image of {n_channels} channel(s) and "
            f"{spatial_ndim} spatial axes (params.n_channels, recipe.spacing)",
        )
    fitted = params.get("fitted_dtype")
    try:
        valid = isinstance(fitted, str) and str(np.dtype(fitted)) == fitted
    except TypeError:
        valid = False
    if not valid or np.dtype(fitted).kind not in "uif" or np.dtype(fitted).itemsize > 8:
        raise _FieldError(
            "params.fitted_dtype", f"is {fitted!r}: use a NumPy integer or float type name"
        )


def _shape_for(channel_axis, n_channels: int, spatial_ndim: int) -> tuple[int, ...]:
    """Return the shape of a small image the model would label (spatial sides of 2)."""
    spatial = [2] * spatial_ndim
    if isinstance(channel_axis, bool) or channel_axis is None or isinstance(channel_axis, str):
        colour = n_channels in (3, 4) and channel_axis in ("auto", "rgb")
        return (*spatial, n_channels) if colour else tuple(spatial)
    if isinstance(channel_axis, int) and -(spatial_ndim + 1) <= channel_axis <= spatial_ndim:
        spatial.insert(channel_axis % (spatial_ndim + 1), n_channels)
    return tuple(spatial)


def _member(container: dict, field: str, kind: type):
    value = _raw(container, field, None)
    if not isinstance(value, kind):
        raise _FieldError(field, f"must be a JSON {_JSON_NAMES[kind]}")
    return value


_JSON_NAMES: dict[type, str] = {dict: "object", list: "array", str: "string"}


def _raw(container, field: str, index: int | None):
    if index is not None:
        return container[index]
    key = field.rsplit(".", 1)[-1]
    if key not in container:
        raise _FieldError(field, "is missing")
    return container[key]


def _number(container, field: str, index: int | None = None, positive: bool = False) -> float:
    """Return a finite number >= 0 (> 0 when ``positive``)."""
    value = _raw(container, field, index)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    value = float(value) if ok and abs(value) < 1e308 else float("nan")
    if not ok or not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise _FieldError(field, f"must be a finite number {'>' if positive else '>='} 0")
    return value


def _integer(container, field: str, index: int | None = None, minimum: int = 0) -> int:
    value = _raw(container, field, index)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2**63:
        raise _FieldError(field, f"must be an integer >= {minimum}")
    return value


def _matrix(data: dict, field: str, n_rows: int | None, n_columns: int) -> np.ndarray:
    rows = _member(data, field, list)
    if n_rows is not None and len(rows) != n_rows:
        raise _FieldError(field, f"has {len(rows)} rows for {n_rows} centres")
    if not rows:
        raise _FieldError(field, "is empty: a model has at least one cluster")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != n_columns:
            raise _FieldError(f"{field}[{i}]", f"must be an array of {n_columns} numbers")
        for j in range(n_columns):
            value = row[j]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _FieldError(f"{field}[{i}][{j}]", "must be a number")
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise _FieldError(field, "holds a number too large for a float") from None
    if not np.isfinite(matrix).all():
        raise _FieldError(field, "must hold finite numbers")
    return matrix
