"""The options of a segmentation: one record, checked once where a call enters the library.

:func:`make_options` is the one place the option keywords are written; :func:`takes_options`
gives ``segment``, ``fit`` and ``segment_dask`` that keyword signature (``help()`` shows it),
and :meth:`Options.for_image` adds the checks that need the image. The in-memory and dask
paths then pass the :class:`Options` record whole.

Examples
--------
>>> o = make_options(3, color_space="lab", seed=0)
>>> o.n_clusters, o.color_space, o.seed
(3, 'lab', 0)
>>> make_options(0)
Traceback (most recent call last):
...
ValueError: n_clusters=0 is not allowed: it must be an integer >= 1
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from .engine import check_iteration_options, make_rng
from .engine.lloyd import IterationCallback
from .features import color_spaces
from .features import pixels as ft
from .outputs.cleanup import Cleanup, check_min_size, check_regularize
from .progress import ProgressCallback
from .versions import library_versions

METHODS = ("kmeans++", "optimal")


@dataclass(frozen=True)
class Options:
    """Checked options of a segmentation or a fit (see :func:`napari_kmeans.segment`).

    Made by :func:`make_options`; the fields are the keywords of
    :func:`napari_kmeans.segment` once checked.

    Attributes
    ----------
    n_clusters : int
        Number of clusters k.
    method : str
        ``"kmeans++"`` or ``"optimal"``.
    color_space : str
        A name of the colour-space registry.
    channel_axis : "auto", "rgb", int or None
        Where the channels are.
    spatial_weight : float
        Weight of the coordinates (0: colour only).
    spacing : tuple of float or None
        None (all 1) until :meth:`for_image` checks it against an image.
    standardize : bool
        Divide each colour feature by its spread.
    seed : int or str
        The seed to record: drawn when None was given, ``"numpy.random.Generator"`` when a
        Generator was given.
    rng : numpy.random.Generator
        The Generator to draw from.
    n_init : int or "auto"
        Runs from different seedings.
    max_iter : int
        Maximum Lloyd iterations per run.
    tol : float
        Relative tolerance on the centres' movement.
    callback : callable or None
        ``callback(iteration, inertia)`` after every Lloyd iteration.
    progress : callable or None
        ``progress(stage, done, total)`` during long stages.
    regularize : tuple or None
        ``("majority", radius)``, ``("potts", beta)`` or None (see
        :mod:`napari_kmeans.outputs.cleanup`).
    min_size : int, float or None
        Smallest component kept: pixels (int) or physical volume (float); None: all.

    Examples
    --------
    >>> make_options(2, seed=7).seed
    7
    """

    n_clusters: int
    method: str
    color_space: str
    channel_axis: str | int | None
    spatial_weight: float
    spacing: tuple[float, ...] | None
    standardize: bool
    seed: int | str
    rng: np.random.Generator
    n_init: int | str
    max_iter: int
    tol: float
    callback: IterationCallback | None
    progress: ProgressCallback | None
    regularize: tuple[str, float] | None = None
    min_size: int | float | None = None

    @property
    def cleanup(self) -> Cleanup:
        """The label clean-up these options ask for (part of a model's recipe)."""
        return Cleanup(self.regularize, self.min_size)

    def for_image(self, layout: ft.ChannelLayout) -> Options:
        """Check these options against an image's channel layout; fill in the spacing.

        Parameters
        ----------
        layout : ChannelLayout
            The image's channel layout (:func:`napari_kmeans.features.pixels.channel_layout`).

        Returns
        -------
        Options
            A copy with ``spacing`` a tuple of one float per spatial axis.

        Raises
        ------
        ValueError
            When the colour space, the spacing or the method does not suit the image.

        Examples
        --------
        >>> from napari_kmeans.features.pixels import channel_layout
        >>> make_options(2).for_image(channel_layout((4, 5), "auto")).spacing
        (1.0, 1.0)
        """
        space = color_spaces.check(self.color_space, layout.n_channels)
        spacing = ft.check_spacing(self.spacing, len(layout.spatial_shape))
        one_feature = space.n_features(layout.n_channels) == 1
        if self.method == "optimal" and (not one_feature or self.spatial_weight > 0):
            raise ValueError(
                "method='optimal' needs exactly one feature: a one-channel image or "
                f"color_space='gray', and spatial_weight=0 (got {layout.n_channels} channels, "
                f"color_space={self.color_space!r}, spatial_weight={self.spatial_weight})"
            )
        return dataclasses.replace(self, spacing=spacing)

    def params(
        self,
        layout: ft.ChannelLayout,
        fitted_dtype,
        fitted_images: int,
        fitted_pixels: int,
    ) -> dict:
        """Return the JSON parameters of a model fitted with these options.

        Parameters
        ----------
        layout : ChannelLayout
            Channel layout of the fitted images.
        fitted_dtype : numpy.dtype
            Their dtype.
        fitted_images : int
            How many images were fitted.
        fitted_pixels : int
            How many pixels were clustered.

        Returns
        -------
        dict
            Every option, the channels, feature names, fitted data and library versions.

        Examples
        --------
        >>> from napari_kmeans.features.pixels import channel_layout
        >>> params = make_options(2, seed=1).params(channel_layout((4, 5), "auto"), "uint8", 1, 20)
        >>> params["features"], params["fitted_pixels"]
        (['value'], 20)
        """
        space = color_spaces.get(self.color_space)
        spacing = self.spacing or (1.0,) * len(layout.spatial_shape)
        coordinates = [f"axis {i}" for i in range(len(spacing))] if self.spatial_weight else []
        return {
            "n_clusters": self.n_clusters,
            "method": self.method,
            "color_space": self.color_space,
            "channel_axis": self.channel_axis,
            "spatial_weight": self.spatial_weight,
            "spacing": list(spacing),
            "standardize": self.standardize,
            "seed": self.seed,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "n_channels": layout.n_channels,
            "features": [*space.feature_names(layout.n_channels), *coordinates],
            "fitted_dtype": str(fitted_dtype),
            "fitted_images": fitted_images,
            "fitted_pixels": int(fitted_pixels),
            **self.cleanup.to_params(),
            "versions": library_versions(),
        }


def _check_n_clusters(n_clusters) -> int:
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, Integral) or n_clusters < 1:
        raise ValueError(f"n_clusters={n_clusters!r} is not allowed: it must be an integer >= 1")
    return int(n_clusters)


def check_callable(name: str, value):
    """Return ``value`` if it is callable or None; ValueError naming ``name`` otherwise.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : callable or None
        The argument.

    Returns
    -------
    callable or None
        ``value``.

    Raises
    ------
    ValueError
        When ``value`` is neither callable nor None.

    Examples
    --------
    >>> check_callable("progress", print) is print
    True
    >>> check_callable("progress", 3)
    Traceback (most recent call last):
    ...
    ValueError: progress=3 is not allowed: give a function or None
    """
    if value is not None and not callable(value):
        raise ValueError(f"{name}={value!r} is not allowed: give a function or None")
    return value


def check_flag(name: str, value) -> bool:
    """Return ``value`` if it is a bool (NumPy's too); ValueError naming ``name`` otherwise.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : bool or numpy.bool_
        The argument.

    Returns
    -------
    bool
        ``value`` as a Python bool.

    Raises
    ------
    ValueError
        When ``value`` is not a bool.

    Examples
    --------
    >>> check_flag("standardize", np.True_)
    True
    >>> check_flag("standardize", 1)
    Traceback (most recent call last):
    ...
    ValueError: standardize=1 is not allowed: use True or False
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}={value!r} is not allowed: use True or False")
    return bool(value)


def make_options(
    n_clusters: int = 5,
    *,
    method: str = "kmeans++",
    color_space: str = "rgb",
    channel_axis: str | int | None = "auto",
    spatial_weight: float = 0.0,
    spacing=None,
    standardize: bool = False,
    seed=None,
    n_init: int | str = "auto",
    max_iter: int = 300,
    tol: float = 1e-5,
    callback: IterationCallback | None = None,
    progress: ProgressCallback | None = None,
    regularize=None,
    min_size: int | float | None = None,
) -> Options:
    """Check the options that do not depend on the image and return them as one record.

    Takes the keywords of :func:`napari_kmeans.segment` (``mask`` apart); raises ValueError
    naming the argument, its value and what is allowed. With ``seed=None`` a seed is drawn
    here and recorded, so any result can be reproduced.

    Parameters
    ----------
    n_clusters : int
        Number of clusters k, >= 1.
    method : {"kmeans++", "optimal"}
        As in :func:`napari_kmeans.segment`.
    color_space : {"rgb", "lab", "oklab", "gray"}
        As in :func:`napari_kmeans.segment`.
    channel_axis : "auto", "rgb", None or int
        As in :func:`napari_kmeans.segment`.
    spatial_weight : float
        As in :func:`napari_kmeans.segment`.
    spacing : sequence of float, optional
        As in :func:`napari_kmeans.segment`; checked later by :meth:`Options.for_image`.
    standardize : bool
        As in :func:`napari_kmeans.segment`.
    seed : None, int or numpy.random.Generator
        As in :func:`napari_kmeans.segment`.
    n_init : int or "auto"
        As in :func:`napari_kmeans.segment`.
    max_iter : int
        As in :func:`napari_kmeans.segment`.
    tol : float
        As in :func:`napari_kmeans.segment`.
    callback : callable, optional
        As in :func:`napari_kmeans.segment`.
    progress : callable, optional
        As in :func:`napari_kmeans.segment`.
    regularize : None, str or tuple
        As in :func:`napari_kmeans.segment`.
    min_size : None, int or float
        As in :func:`napari_kmeans.segment`.

    Returns
    -------
    Options
        The checked record; :meth:`Options.for_image` completes the checks for an image.

    Raises
    ------
    ValueError
        When an option is not allowed.

    Examples
    --------
    >>> make_options(method="fastest")
    Traceback (most recent call last):
    ...
    ValueError: method='fastest' is not allowed: use one of ('kmeans++', 'optimal')
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed: use one of {METHODS}")
    n_init, max_iter, tol = check_iteration_options(n_init, max_iter, tol)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    rng = make_rng(seed)
    return Options(
        n_clusters=_check_n_clusters(n_clusters),
        method=method,
        color_space=color_spaces.get(color_space).name,
        channel_axis=ft.check_channel_axis(channel_axis),
        spatial_weight=ft.check_spatial_weight(spatial_weight),
        spacing=spacing,
        standardize=check_flag("standardize", standardize),
        seed=int(seed) if isinstance(seed, Integral) else "numpy.random.Generator",
        rng=rng,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        callback=check_callable("callback", callback),
        progress=check_callable("progress", progress),
        regularize=check_regularize(regularize),
        min_size=check_min_size(min_size),
    )


def segment_options(params: dict) -> dict:
    """Return the entries of a run's ``params`` that ``segment`` takes, to repeat the run.

    ``params`` (``Segmentation.params``, ``KMeansModel.params``) also describe the run
    (channels, dtype, versions, ...): those entries are left out, as is a seed recorded as
    ``"numpy.random.Generator"`` (a Generator's state is not recorded). The kept names are
    those of :func:`make_options`'s signature, the one place they are written.

    Parameters
    ----------
    params : dict
        The parameters recorded by a run.

    Returns
    -------
    dict
        The entries to pass to ``segment(image, **entries)``.

    Examples
    --------
    >>> import numpy as np
    >>> import napari_kmeans as nk
    >>> seg = nk.segment(np.array([[0, 9, 200]], np.uint8), 2, seed=4)
    >>> sorted(segment_options(seg.params))  # doctest: +NORMALIZE_WHITESPACE
    ['channel_axis', 'color_space', 'max_iter', 'method', 'min_size', 'n_clusters', 'n_init',
     'regularize', 'seed', 'spacing', 'spatial_weight', 'standardize', 'tol']
    """
    names = inspect.signature(make_options).parameters
    return {
        name: value
        for name, value in params.items()
        if name in names and not (name == "seed" and isinstance(value, str))
    }


# ``mask`` is a keyword of the public functions but not an option: it belongs to the image.
_AFTER = {"mask": "spacing"}


def takes_options(func: Callable) -> Callable:
    """Give ``func(image, n_clusters=5, *, mask=None, **options)`` the option keywords.

    The keywords of :func:`make_options` join ``func``'s own keyword-only parameters in one
    signature, which ``help()`` shows and every call is bound against (unknown keywords raise
    ``TypeError`` as usual); ``func`` receives the options given as ``**options``.

    Parameters
    ----------
    func : callable
        ``func(image, n_clusters=5, *, mask=None, **options)``.

    Returns
    -------
    callable
        ``func`` with the full keyword signature.

    Examples
    --------
    >>> @takes_options
    ... def show(image, n_clusters=5, *, mask=None, **options):
    ...     return options
    >>> show(None, 2, seed=3)
    {'seed': 3}
    >>> list(inspect.signature(show).parameters)[:4]
    ['image', 'n_clusters', 'method', 'color_space']
    """
    own = inspect.signature(func, eval_str=True).parameters.values()
    leading = [p for p in own if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    extra = [p for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
    keywords = [
        p
        for p in inspect.signature(make_options, eval_str=True).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for parameter in extra:
        after = _AFTER.get(parameter.name)
        names = [p.name for p in keywords]
        keywords.insert(names.index(after) + 1 if after in names else len(keywords), parameter)
    signature = inspect.signature(func, eval_str=True).replace(parameters=[*leading, *keywords])

    @functools.wraps(func)
    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        return func(*bound.args, **bound.kwargs)

    call.__signature__ = signature
    return call
