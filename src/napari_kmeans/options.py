"""The options of a segmentation: one table, checked once where a call enters the library.

:data:`OPTIONS` lists every option once: its name, default, check, documentation, command-line
flag and widget control. :func:`make_options` checks a call's keywords against it, the
``napari-kmeans`` command builds its arguments from it, the napari widget its controls, and
the parameter sections of ``segment`` and ``fit`` are written from it. A new option is one
entry here and one function of its stage.

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
import math
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from .engine import make_rng
from .engine.lloyd import IterationCallback
from .features import color_spaces
from .features import pixels as ft
from .features import smooth as sm
from .features import texture as tx
from .outputs.cleanup import Cleanup, check_min_size, check_regularize
from .progress import ProgressCallback
from .versions import library_versions

METHODS = ("kmeans++", "optimal")


# ---------------------------------------------------------------------------------------------
# Checks: each takes the value given and returns it normalised, or raises a ValueError that
# names the option, the value and what is allowed.


def _integer(low: int) -> Callable[[str, Any], int]:
    def check(name: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
            raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {low}")
        return int(value)

    return check


def _non_negative(name: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or float(value) < 0
    ):
        raise ValueError(f"{name}={value!r} is not allowed: it must be a finite number >= 0")
    return float(value)


def _one_of(choices: tuple) -> Callable[[str, Any], Any]:
    def check(name: str, value):
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{name}={value!r} is not allowed: use one of {choices}")
        return value

    return check


def _n_init(name: str, value) -> int | str:
    return value if isinstance(value, str) and value == "auto" else _integer(1)(name, value)


def _seed(name: str, value):
    make_rng(value)  # the message names the seed unless it makes a Generator
    return value


def _spacing(name: str, value):
    # the number of axes is checked against the image (Options.for_image)
    if value is None:
        return None
    values = tuple(np.atleast_1d(np.asarray(value, dtype=object)).tolist())
    if not all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and float(v) > 0
        for v in values
    ):
        raise ValueError(
            f"{name}={value!r} is not allowed: give one positive finite number per spatial axis"
        )
    return values


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


def _flag_or_auto(name: str, value) -> bool | str:
    return value if isinstance(value, str) and value == "auto" else check_flag(name, value)


# ---------------------------------------------------------------------------------------------
# Command-line text to Python values (then checked like any value).


def _words(words: Mapping[str, Any], other: Callable[[str], Any] | None = None):
    def parse(text: str):
        if text.lower() in words:
            return words[text.lower()]
        if other is None:
            return text
        try:
            return other(text)
        except ValueError:
            allowed = ", ".join(repr(w) for w in words)
            raise ValueError(f"{text!r} is not allowed: use {allowed} or a number") from None

    return parse


def _number_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of numbers") from None


def _integer_text(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _float_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _regularize_text(text: str):
    """Parse ``--regularize``: none, majority, majority:R, potts or potts:BETA."""
    name, _, strength = text.lower().partition(":")
    if not strength:
        return None if name == "none" else name
    try:
        return (name, int(strength) if name == "majority" else float(strength))
    except ValueError:
        raise ValueError(
            f"{text!r} is not allowed: use none, majority, majority:R (R an integer >= 1), "
            "potts or potts:BETA (BETA a number > 0)"
        ) from None


def _min_size_text(text: str):
    """Parse ``--min-size``: an integer of pixels, a decimal physical volume, or none."""
    if text.lower() == "none":
        return None
    return _integer_text(text) if text.strip().lstrip("+-").isdigit() else _float_text(text)


# ---------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Control:
    """How the napari widget shows an option (a magicgui widget and its settings)."""

    widget: str
    label: str
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Option:
    """One option of ``segment`` and ``fit``: everything every front end needs to know.

    Attributes
    ----------
    name : str
        The keyword.
    default : object
        Its default in the Python API.
    kind : str
        Its type as the parameter docs write it.
    doc : str
        What it does, for the docs, ``--help`` and the widget's tooltip.
    check : callable
        ``check(name, value)`` returns the value normalised or raises ValueError.
    flag : str or None
        Its command-line flag; None where the command has no such argument.
    parse : callable or None
        Command-line text to a Python value (None: a switch that sets True).
    metavar : str or None
        The command line's placeholder for the value.
    control : Control or None
        The widget's control; None where the widget sets it otherwise or not at all.

    Examples
    --------
    >>> OPTIONS["max_iter"].flag, OPTIONS["max_iter"].default
    ('--max-iter', 300)
    """

    name: str
    default: Any
    kind: str
    doc: str
    check: Callable[[str, Any], Any]
    flag: str | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    control: Control | None = None

    @property
    def plain_doc(self) -> str:
        """The doc without reStructuredText markup, for ``--help`` and tooltips."""
        text = re.sub(r":[a-z]+:`~?([^`<]*?)(?: <[^>]*>)?`", r"\1", self.doc)
        return text.replace("``", "")


_TABLE = (
    Option(
        "n_clusters",
        5,
        "int",
        "Number of clusters k, 1 <= k <= number of distinct feature vectors.",
        _integer(1),
        "--n-clusters",
        _integer_text,
        "K",
        # one cluster is no segmentation to look at: the widget starts at two
        Control("SpinBox", "clusters", {"min": 2, "max": 65535}),
    ),
    Option(
        "method",
        "kmeans++",
        '{"kmeans++", "optimal"}',
        "Greedy k-means++ seeding + Lloyd, or globally optimal k-means by dynamic "
        "programming (one feature only: one-channel images or ``color_space='gray'``, no "
        "spatial weight).",
        _one_of(METHODS),
        "--method",
        str,
        "{" + ",".join(METHODS) + "}",
    ),
    Option(
        "color_space",
        "rgb",
        '{"rgb", "lab", "oklab", "gray"}',
        "The image's own values, CIELAB, Oklab or luma: the entries of "
        ":mod:`napari_kmeans.features.color_spaces` (the perceptual spaces and luma for "
        "RGB(A) images).",
        lambda name, value: color_spaces.get(value).name,
        "--color-space",
        str,
        "{" + ",".join(color_spaces.COLOR_SPACES) + "}",
    ),
    Option(
        "channel_axis",
        "auto",
        '"auto", "rgb", None or int',
        '``"auto"``: a last axis of 3 or 4 on an image of >= 3 dimensions is RGB(A), a last '
        "axis of 2 or 5-8 shorter than every other axis is refused as ambiguous (channels "
        'or slices?), anything else has no channels; ``"rgb"``: the last axis is RGB(A), as '
        "napari's ``rgb=True``; None: no channels; an int: every channel along that axis "
        'is data (no alpha). With ``"auto"`` or ``"rgb"`` a fourth channel is alpha: kept '
        "in ``recolored``, never clustered. Files read with "
        ":func:`napari_kmeans.read_image` give their own channel axis; the command line "
        "takes it from the file, and an explicit value must agree with the file's axes.",
        lambda name, value: ft.check_channel_axis(value),
        "--channel-axis",
        _words({"auto": "auto", "rgb": "rgb", "none": None}, _integer_text),
        "{auto,rgb,none,INT}",
    ),
    Option(
        "spatial_weight",
        0.0,
        "float",
        ">= 0; appends pixel coordinates scaled so that 1 makes the largest image extent "
        "weigh as much as the full range of the colour features. 0: colour only.",
        lambda name, value: ft.check_spatial_weight(value),
        "--spatial-weight",
        _float_text,
        "W",
        Control("FloatSpinBox", "spatial weight", {"min": 0.0, "max": 10.0, "step": 0.05}),
    ),
    Option(
        "spacing",
        None,
        "sequence of float, optional",
        "Pixel/voxel size per spatial axis for the coordinates (default all 1); on the "
        "command line comma-separated, e.g. 2,0.5,0.5.",
        _spacing,
        "--spacing",
        _number_list,
        "S,S[,S]",
    ),
    Option(
        "standardize",
        "auto",
        'bool or "auto"',
        "Divide each colour feature by its standard deviation over the fitted pixels, so "
        "that channels of very different ranges (fluorescence) weigh alike. The divisors "
        "are kept in the model's recipe; ``palette`` stays in the image's units. "
        '``"auto"``: on when the channels are data (an int ``channel_axis`` with several '
        "channels), off for grey and RGB(A); ``params['standardize']`` records the choice.",
        _flag_or_auto,
        "--standardize",
        None,
        None,
        # the widget decides it from its layers; unticked unless the user ticks it
        Control("CheckBox", "standardise channels", {"value": False}),
    ),
    Option(
        "smooth",
        "auto",
        'None, number, "auto", "median" or tuple',
        "Denoising before clustering, per channel along the spatial axes. None or 0: off; "
        "a number σ (or ``('gaussian', σ)``): a Gaussian of σ in the units of ``spacing``; "
        "``'median'`` (3×3 in 2-D) or ``('median', r)`` (the box within r spacing units): a "
        "median, for salt-and-pepper noise and JPEG blocks; ``'auto'``: each channel's noise "
        "is estimated from neighbouring pixels' differences and the Gaussian chosen that "
        "brings it to a tenth of the signal's spread (none on clean images). Only the "
        "features are smoothed: ``palette``, ``recolored`` and the features table are means "
        "of the original pixels. Integer images are smoothed in their own dtype (rounded). "
        "The filter applied is kept in the model's recipe and recorded in "
        "``params['smoothing']`` (on the command line: auto, none, a number, median or "
        "median:R).",
        lambda name, value: sm.check_smooth(value),
        "--smooth",
        sm.parse_smooth,
        "{auto,none,SIGMA,median,median:R}",
    ),
    Option(
        "texture",
        False,
        "bool or float",
        "False: off; True or a largest scale S in pixels (True: 8): add texture features of "
        "the grey (luma) image, each weighing as much as a colour feature: the smoothed "
        "intensity and local energies of difference-of-Gaussian, Hessian and gradient "
        "responses at scales 1, 2, 4, ... up to S, and the structure tensor's anisotropy. "
        "For regions that differ by texture rather than colour; every pixel is then its own "
        "row (slower, more memory). On the command line: --texture on, or --texture S.",
        lambda name, value: tx.check_texture(value),
        "--texture",
        tx.parse_texture,
        "S",
        Control("CheckBox", "texture features"),
    ),
    Option(
        "seed",
        None,
        "None, int or numpy.random.Generator",
        "An integer >= 0 (or a Generator) fixes the result; None draws a seed and records it "
        "in ``params['seed']``, so any result can be repeated. The command line and the "
        "widget use 0 unless told otherwise.",
        _seed,
        "--seed",
        _words({"none": None}, _integer_text),
        "{INT,none}",
        Control("SpinBox", "seed", {"min": 0, "max": 2**31 - 1}),
    ),
    Option(
        "n_init",
        "auto",
        'int or "auto"',
        'Runs from different seedings, the best kept; ``"auto"``: three starts, converged '
        "on a sample of large inputs, the best continuing on every pixel.",
        _n_init,
        "--n-init",
        _words({"auto": "auto"}, _integer_text),
        "{auto,INT}",
    ),
    Option(
        "max_iter",
        300,
        "int",
        "Maximum Lloyd iterations per run, >= 1.",
        _integer(1),
        "--max-iter",
        _integer_text,
        "N",
        Control("SpinBox", "max iterations", {"min": 1, "max": 100_000}),
    ),
    Option(
        "tol",
        1e-5,
        "float",
        "Stop a run when the summed squared centre shift is at most this times the mean "
        "feature variance; a number >= 0.",
        _non_negative,
        "--tol",
        _float_text,
        "TOL",
    ),
    Option(
        "regularize",
        None,
        'None, "majority", "potts" or tuple',
        "Clean the labels after clustering by their neighbourhood, inside the mask only "
        '(n-D, deterministic). ``"majority"`` or ``("majority", radius)``: each pixel takes '
        "the weighted majority label of a box of ``radius`` pixels along the finest axis "
        "(default 1: 3×3, 3×3×3...; as far physically along coarser axes), neighbours "
        "weighted by the finest spacing over their physical distance (one pass). "
        '``"potts"`` or ``("potts", beta)``: iterated conditional modes on a Potts energy, '
        "the squared feature distance to the label's centre divided by the model's mean "
        "squared distance per fitted pixel (inertia / fitted pixels), plus ``beta`` "
        "(default 1) times the weights of the 3^n neighbours with another label: beta = 1 "
        "makes one disagreeing face neighbour cost as much as an average pixel's own "
        "distance. None: the nearest centre's label. See "
        ":mod:`napari_kmeans.outputs.cleanup`; on the command line none, majority, "
        "majority:R, potts or potts:BETA.",
        lambda name, value: check_regularize(value),
        "--regularize",
        _regularize_text,
        "{none,majority[:R],potts[:BETA]}",
    ),
    Option(
        "min_size",
        None,
        "None, int or float",
        "Connected components (face neighbours) smaller than this join the label of the "
        "most pixels on their outer boundary, repeatedly, after ``regularize``: an int "
        "counts pixels, a float is a physical volume (area in 2-D) in the units of "
        "``spacing``. A component with no larger neighbour (alone in its mask) is kept. "
        "Not for dask arrays (nor Zarr on the command line): a component can span any "
        "number of chunks. None: keep every component.",
        lambda name, value: check_min_size(value),
        "--min-size",
        _min_size_text,
        "{N,VOLUME,none}",
        Control("SpinBox", "min object size (px)", {"min": 0, "max": 10**9}),
    ),
    Option(
        "callback",
        None,
        "callable, optional",
        "``callback(iteration, inertia)`` after every Lloyd iteration; raise in it to stop.",
        check_callable,
    ),
    Option(
        "progress",
        None,
        "callable, optional",
        "``progress(stage, done, total)`` during long stages (see :mod:`napari_kmeans.progress`); "
        "raise in it to stop.",
        check_callable,
    ),
    Option(
        "sample_size",
        1_000_000,
        "int",
        "For dask arrays: pixels to fit on when the exact histogram cannot be used (float "
        "images or ``spatial_weight > 0``); every pixel when there are no more than this.",
        _integer(1),
    ),
)

#: Every option by name, in the order of the public signatures.
OPTIONS: Mapping[str, Option] = {option.name: option for option in _TABLE}


def option_docs(names=None, indent: int = 4) -> str:
    """Write the numpydoc entries of options (all of them by default).

    Parameters
    ----------
    names : iterable of str, optional
        The options to document, in order.
    indent : int
        Spaces before each ``name : type`` line.

    Returns
    -------
    str
        ``name : type`` lines, each followed by its description indented once more.

    Examples
    --------
    >>> print(option_docs(["max_iter"], indent=0))
    max_iter : int
        Maximum Lloyd iterations per run, >= 1.
    """
    pad = " " * indent
    entries = []
    for name in OPTIONS if names is None else names:
        option = OPTIONS[name]
        body = textwrap.fill(
            option.doc,
            width=92 - indent,
            initial_indent=pad + "    ",
            subsequent_indent=pad + "    ",
        )
        entries.append(f"{pad}{name} : {option.kind}\n{body}")
    return "\n".join(entries)


def documented(func: Callable) -> Callable:
    """Put the options' entries where ``func``'s docstring has the line ``{options}``.

    Parameters
    ----------
    func : callable
        A function whose parameter section holds the marker line.

    Returns
    -------
    callable
        ``func`` with the entries written in.

    Examples
    --------
    >>> def f(x, max_iter=300):
    ...     '''Do.
    ...
    ...     Parameters
    ...     ----------
    ...     {options}
    ...     '''
    >>> "max_iter : int" in documented(f).__doc__
    True
    """
    marker = "    {options}"
    doc = func.__doc__ or ""
    if marker not in doc:
        raise ValueError(f"{func.__qualname__}'s docstring has no line {marker.strip()!r}")
    func.__doc__ = doc.replace(marker, option_docs())
    return func


@dataclass(frozen=True)
class Options:
    """Checked options of a segmentation or a fit: the entries of :data:`OPTIONS`, checked.

    ``seed`` is the seed to record (drawn when None was given, ``"numpy.random.Generator"``
    when a Generator was given) and ``rng`` the Generator to draw from; ``spacing`` is None
    (all 1) until :meth:`for_image` checks it against an image.

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
    standardize: bool | str
    smooth: sm.Smoothing | str | None
    texture: float | None
    seed: int | str
    n_init: int | str
    max_iter: int
    tol: float
    callback: IterationCallback | None
    progress: ProgressCallback | None
    sample_size: int
    rng: np.random.Generator
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
            A copy with ``spacing`` a tuple of one float per spatial axis, and
            ``standardize`` decided (``"auto"``: True for several data channels, that is an
            int ``channel_axis``).

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
        one_feature = space.n_features(layout.n_channels) == 1 and self.texture is None
        if self.method == "optimal" and (not one_feature or self.spatial_weight > 0):
            raise ValueError(
                "method='optimal' needs exactly one feature: a one-channel image or "
                "color_space='gray', no texture and spatial_weight=0 (got "
                f"{layout.n_channels} channels, color_space={self.color_space!r}, "
                f"texture={self.texture}, spatial_weight={self.spatial_weight})"
            )
        standardize = self.standardize
        if standardize == "auto":
            standardize = isinstance(self.channel_axis, int) and layout.n_channels > 1
        return dataclasses.replace(self, spacing=spacing, standardize=standardize)

    def params(
        self,
        layout: ft.ChannelLayout,
        fitted_dtype,
        fitted_images: int,
        fitted_pixels: int,
    ) -> dict:
        """Return the JSON record of a run with these options.

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
        texture = [] if self.texture is None else tx.feature_names(self.texture, len(spacing))
        recorded = {
            name: getattr(self, name)
            for name in OPTIONS
            if name not in ("callback", "progress", "sample_size")
        }
        return {
            **recorded,
            "smooth": sm.smooth_json(self.smooth),
            "spacing": list(spacing),
            "n_channels": layout.n_channels,
            "features": [*space.feature_names(layout.n_channels), *texture, *coordinates],
            "fitted_dtype": str(fitted_dtype),
            "fitted_images": fitted_images,
            "fitted_pixels": int(fitted_pixels),
            **self.cleanup.to_params(),
            "versions": library_versions(),
        }


def make_options(n_clusters: int = 5, **options) -> Options:
    """Check the options that do not depend on the image and return them as one record.

    Takes the keywords of :func:`napari_kmeans.segment` (``mask`` apart); raises ValueError
    naming the argument, its value and what is allowed. With ``seed=None`` a seed is drawn
    here and recorded, so any result can be reproduced.

    Parameters
    ----------
    n_clusters : int
        Number of clusters k, >= 1.
    **options
        Any other entry of :data:`OPTIONS`; the rest take their defaults.

    Returns
    -------
    Options
        The checked record; :meth:`Options.for_image` completes the checks for an image.

    Raises
    ------
    ValueError
        When an option is not allowed.
    TypeError
        When a keyword is not an option.

    Examples
    --------
    >>> make_options(method="fastest")
    Traceback (most recent call last):
    ...
    ValueError: method='fastest' is not allowed: use one of ('kmeans++', 'optimal')
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}: not an option")
    given = {
        **{name: o.default for name, o in OPTIONS.items()},
        **options,
        "n_clusters": n_clusters,
    }
    checked = {name: OPTIONS[name].check(name, value) for name, value in given.items()}
    seed = checked["seed"]
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    rng = make_rng(seed)
    checked["seed"] = int(seed) if isinstance(seed, Integral) else "numpy.random.Generator"
    return Options(**checked, rng=rng)


def option_values(local_names: Mapping[str, Any]) -> dict:
    """Pick the options out of a function's ``locals()`` (an explicit public signature).

    Parameters
    ----------
    local_names : mapping
        The caller's local names.

    Returns
    -------
    dict
        The entries whose names are options.

    Examples
    --------
    >>> option_values({"image": None, "max_iter": 5})
    {'max_iter': 5}
    """
    return {name: value for name, value in local_names.items() if name in OPTIONS}


def segment_options(params: dict) -> dict:
    """Return the entries of a run's ``params`` that ``segment`` takes, to repeat the run.

    ``params`` (``Segmentation.params``, ``KMeansModel.params``) also describe the run
    (channels, dtype, versions, ...): those entries are left out, as is a seed recorded as
    ``"numpy.random.Generator"`` (a Generator's state is not recorded).

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
     'regularize', 'seed', 'smooth', 'spacing', 'spatial_weight', 'standardize', 'texture',
     'tol']
    """
    return {
        name: value
        for name, value in params.items()
        if name in OPTIONS and not (name == "seed" and isinstance(value, str))
    }
