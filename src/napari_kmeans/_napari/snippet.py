"""The Python that repeats a run, for the napari console ("Copy Python")."""

from __future__ import annotations

from .inputs import METADATA_KEY

# The options of segment_layer a run records in its params, in signature order.
_OPTIONS = (
    "method",
    "color_space",
    "spatial_weight",
    "spacing",
    "seed",
    "n_init",
    "max_iter",
    "tol",
)


def python_snippet(metadata: dict, display: dict | None = None) -> str:
    """Code that repeats the run recorded in an output layer's metadata.

    It runs as is in napari's console (where ``viewer`` is the viewer) and names the
    layers, the mask layer and every option, the seed included.

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
    params = meta["params"]
    arguments = {
        "n_clusters": params["n_clusters"],
        "mask": meta.get("mask_layer"),
        "channel_axis": meta.get("layer_channel_axis"),
        "current_slice": meta.get("role") == "preview",
        "cross_check": meta.get("cross_check") is not None,
        **{name: params[name] for name in _OPTIONS if name in params},
        **(display or {}),
    }
    lines = ["import napari_kmeans", "napari_kmeans.segment_layer(", "    viewer,"]
    lines.append(f"    {list(meta['source_layers'])!r},")
    lines += [f"    {name}={value!r}," for name, value in arguments.items()]
    lines.append(")")
    return "\n".join(lines)
