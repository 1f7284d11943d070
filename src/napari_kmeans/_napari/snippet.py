"""The Python that repeats a run, for the napari console ("Copy Python")."""

from __future__ import annotations

from ..options import segment_options
from .inputs import METADATA_KEY
from .outputs import LABELS, PREVIEW, labels_name

# given from the layer's metadata, not from the core's params
_FROM_LAYER = ("n_clusters", "channel_axis")


def python_snippet(metadata: dict, display: dict | None = None) -> str:
    """Code that repeats the run recorded in an output layer's metadata.

    It runs as is in napari's console (where ``viewer`` is the viewer) and names the
    layers, the mask layer and every option, the seed included; then repeats the merges
    made in the layer. A layer made by "Apply model" gets the code that loads the model
    from its file and applies it (or, for a model in no file, says how to save it first).

    Parameters
    ----------
    metadata : dict
        An output layer's ``metadata`` (with its ``"napari_kmeans"`` entry).
    display : dict, optional
        ``label_colors`` and ``background`` of the Labels layer.

    Returns
    -------
    str
        Python source.

    Examples
    --------
    >>> meta = {"napari_kmeans": {"source_layers": ["cells"], "mask_layer": None,
    ...     "layer_channel_axis": None, "cross_check": None, "role": "labels",
    ...     "params": {"n_clusters": 3, "method": "kmeans++", "color_space": "rgb",
    ...     "spatial_weight": 0.0, "spacing": [1.0, 1.0], "seed": 0, "n_init": "auto",
    ...     "max_iter": 300, "tol": 1e-05}}}
    >>> print(python_snippet(meta))  # doctest: +NORMALIZE_WHITESPACE
    import napari_kmeans
    napari_kmeans.segment_layer(
        viewer,
        ['cells'],
        n_clusters=3,
        mask=None,
        channel_axis=None,
        current_slice=False,
        cross_check=False,
        method='kmeans++',
        color_space='rgb',
        spatial_weight=0.0,
        spacing=[1.0, 1.0],
        seed=0,
        n_init='auto',
        max_iter=300,
        tol=1e-05,
    )
    """
    meta = metadata[METADATA_KEY]
    sources = list(meta["source_layers"])
    merges = meta.get("layer_merges", [])
    lines = ["import napari_kmeans"]
    if meta.get("applied_model") is not None:
        lines += _apply_lines(meta["applied_model"].get("path"), sources, display)
    else:
        lines += _segment_lines(meta, display, merges)
    name = labels_name(sources, meta.get("role", LABELS))
    lines += [f"napari_kmeans.merge_layer_clusters(viewer, {name!r}, {m!r})" for m in merges]
    return "\n".join(lines)


def _segment_lines(meta: dict, display: dict | None, merges: list) -> list[str]:
    params = meta["params"]
    # the run made more clusters than the layer shows after its merges
    n_clusters = params["n_clusters"] + sum(len(group) - 1 for group in merges)
    arguments = {
        "n_clusters": n_clusters,
        "mask": meta.get("mask_layer"),
        "channel_axis": meta.get("layer_channel_axis"),
        "current_slice": meta.get("role") == PREVIEW,
        "cross_check": meta.get("cross_check") is not None,
        **{k: v for k, v in segment_options(params).items() if k not in _FROM_LAYER},
        **(display or {}),
    }
    lines = ["napari_kmeans.segment_layer(", "    viewer,", f"    {list(meta['source_layers'])!r},"]
    lines += [f"    {name}={value!r}," for name, value in arguments.items()]
    lines.append(")")
    return lines


def _apply_lines(path: str | None, sources: list[str], display: dict | None) -> list[str]:
    lines = []
    if path is None:
        lines = [
            "# This layer was labelled by 'Apply model' with a model that is in no file:",
            "# save it with 'Save model…' in the k-means widget, put the file's path below,",
            "# then run these lines.",
        ]
        path = "model.json"
    extra = "".join(f", {name}={value!r}" for name, value in (display or {}).items())
    return [
        *lines,
        f"path = {str(path)!r}",
        "model = napari_kmeans.load_model(path)",
        f"napari_kmeans.apply_model_to_layers(viewer, {sources!r}, model, model_path=path{extra})",
    ]
