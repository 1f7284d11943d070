"""Model files: a fitted :class:`~napari_kmeans.model.KMeansModel` as small JSON, and back.

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

from . import color_spaces
from .model import FeatureRecipe, KMeansModel
from .versions import library_versions

MODEL_FORMAT = "napari-kmeans-model"
MODEL_VERSION = 1


class ModelFileError(ValueError):
    """A model file could not be read; the message names the file and the reason."""


def model_to_dict(model: KMeansModel) -> dict:
    """JSON-serialisable content of the model file."""
    recipe = asdict(model.recipe)
    recipe["dtype"] = str(model.recipe.dtype)
    recipe["spacing"] = list(model.recipe.spacing)
    return {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "recipe": recipe,
        "centers": model.centers.tolist(),
        "palette": model.palette.tolist(),
        "counts": model.counts.tolist(),
        "inertia": model.inertia,
        "n_iter": model.n_iter,
        "params": model.params,
    }


def save_model(model: KMeansModel, path: str | os.PathLike) -> None:
    """Write ``model`` as a small human-readable JSON file."""
    text = json.dumps(model_to_dict(model), indent=1)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text + "\n")


def load_model(path: str | os.PathLike) -> KMeansModel:
    """Read a model written by :meth:`KMeansModel.save`.

    Raises :class:`ModelFileError` (a ``ValueError``) naming the file when it is missing,
    not a model, corrupted or from a newer format version.
    """
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"cannot read model file '{path}': {error}") from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"'{path}' is not a napari-kmeans model file")
    version = data.get("version")
    if not isinstance(version, int) or version > MODEL_VERSION:
        raise ModelFileError(
            f"model file '{path}' has format version {version!r}; this napari-kmeans "
            f"({library_versions()['napari_kmeans']}) reads versions up to {MODEL_VERSION}: "
            "upgrade napari-kmeans"
        )
    try:
        r = data["recipe"]
        recipe = FeatureRecipe(
            color_space=color_spaces.get(r["color_space"]).name,
            spatial_weight=float(r["spatial_weight"]),
            spacing=tuple(float(v) for v in r["spacing"]),
            value_range=float(r["value_range"]),
            dtype=np.dtype(r["dtype"]),
        )
        centers = np.array(data["centers"], dtype=np.float64)
        palette = np.array(data["palette"], dtype=np.float64)
        counts = np.array(data["counts"], dtype=np.int64)
        k = len(centers)
        consistent = (
            centers.ndim == 2
            and palette.ndim == 2
            and k >= 1
            and len(palette) == k
            and counts.shape == (k,)
            and np.isfinite(centers).all()
            and np.isfinite(palette).all()
            and palette.shape[1] == data["params"]["n_channels"]
        )
        if not consistent:
            raise ValueError("centres, palette and counts do not agree")
        return KMeansModel(
            recipe,
            centers,
            palette,
            counts,
            float(data["inertia"]),
            int(data["n_iter"]),
            dict(data["params"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"model file '{path}' is corrupted: {error}") from None
