"""The widget's parameter controls: inputs, the common options, and folded advanced ones.

The controls offer only what applies to the chosen input (colour spaces for colour layers,
the exact 1-D method for one feature, a channel axis for one n-D layer, the slice preview
for n-D data) and remember their values between sessions (QSettings, INI format).
"""

from __future__ import annotations

import magicgui.widgets
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    Select,
    SpinBox,
)
from napari.layers import Image, Labels, Shapes
from qtpy.QtCore import QSettings
from qtpy.QtWidgets import QVBoxLayout, QWidget
from superqt import QCollapsible

from ...features import color_spaces
from ...features.texture import DEFAULT_LARGEST
from ...options import OPTIONS
from ...outputs.cleanup import check_regularize
from ..inputs import METADATA_KEY, is_output
from ..outputs import LABEL_COLORS, LABELS, PREVIEW
from ..segmentation import DEFAULT_SEED
from .tasks import slot

METHODS = {"k-means++": "kmeans++", "optimal 1-D (exact)": "optimal"}
DENOISE = {
    "auto (from the image's noise)": "auto",
    "off": "off",
    "Gaussian": "gaussian",
    "median": "median",
}
LABEL_COLOR_NAMES = dict(zip(("distinct colours", "cluster colours"), LABEL_COLORS, strict=True))
# label clean-up choices: the value is what segment's ``regularize`` gets (Potts: with beta)
CLEAN_UP = {
    "off": None,
    "majority vote 3×3": "majority",
    "majority vote 5×5": ("majority", 2),
    "Potts smoothing (β)": "potts",
}
DEFAULTS = {name: option.default for name, option in OPTIONS.items()}
REMEMBERED = (
    "n_clusters",
    "method",
    "color_space",
    "label_colors",
    "cross_check",
    "denoise",
    "denoise_size",
    "spatial_weight",
    "texture",
    "texture_scale",
    "standardize",
    "clean_up",
    "potts_beta",
    "min_size",
    "seed",
    "restarts",
    "max_iter",
    "tol",
)


def option_control(name: str, **settings):
    """Make the magicgui control of an option as the options table describes it."""
    option = OPTIONS[name]
    control = option.control
    kind = getattr(magicgui.widgets, control.widget)
    # a control may start from its own value where the API's default is not one it shows
    shown = {**control.settings, **settings}
    value = shown.pop("value", option.default)
    label = {"text": control.label} if kind is CheckBox else {"label": control.label}
    return kind(value=value, tooltip=option.plain_doc, **label, **shown)


def settings() -> QSettings:
    """Where the controls are remembered (the user's INI settings of napari-kmeans)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, "napari-kmeans", "widget"
    )


class Controls(QWidget):
    """Every parameter of a run, as magicgui widgets (``self.<name>``)."""

    def __init__(self, viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.images = Select(
            label="image layer(s)",
            choices=self._image_choices,
            tooltip="One image, or several single-channel images used together as channels",
        )
        self.images.native.setMaximumHeight(90)
        self.channel_axis = ComboBox(
            label="channel axis",
            choices=self._axis_choices,
            nullable=True,
            tooltip="The axis of this layer that holds channels (e.g. C of a ZCYX stack); "
            "empty: every value is one grey pixel",
        )
        self.n_clusters = option_control("n_clusters", value=DEFAULTS["n_clusters"])
        self.method = ComboBox(
            label="method",
            choices=list(METHODS.items()),
            tooltip=OPTIONS["method"].plain_doc,
        )
        self.color_space = ComboBox(
            label="colour space",
            choices=[(space.label, space.name) for space in color_spaces.choices(3)],
            tooltip="Feature space of colour layers: RGB values, perceptual spaces (CIELAB, "
            "Oklab) or luma; alpha is kept, never clustered",
        )
        self.mask = ComboBox(
            label="mask",
            choices=self._mask_choices,
            nullable=True,
            tooltip="Labels (non-zero = included) or Shapes layer; empty for the whole image",
        )
        self.denoise = ComboBox(
            label="denoise",
            choices=list(DENOISE.items()),
            value="auto" if DEFAULTS["smooth"] == "auto" else "off",
            tooltip="Smooth the image before clustering, so that noise does not scatter "
            "pixels among clusters (cluster colours stay means of the original pixels). "
            "auto: chosen from the image's noise (none on clean images); Gaussian: of the "
            "size below; median: for salt-and-pepper noise and JPEG blocks",
        )
        self.denoise_size = FloatSpinBox(
            label="denoise size",
            value=1.0,
            min=0.1,
            max=50.0,
            step=0.5,
            tooltip="Gaussian sigma, or median radius (1: a 3x3 median), in the layer's "
            "units (its scale)",
        )
        self.label_colors = ComboBox(
            label="label colours",
            choices=list(LABEL_COLOR_NAMES.items()),
            tooltip="Distinct colours tell clusters apart; cluster colours show each "
            "cluster's mean colour",
        )
        self.background = SpinBox(
            label="background label",
            value=0,
            min=0,
            max=OPTIONS["n_clusters"].control.settings["max"],
            tooltip="A cluster shown as background (label 0, transparent); 0: none",
        )
        self.current_slice = CheckBox(
            text="preview the current slice",
            tooltip="Fit on the slice the viewer shows only, into a preview layer; the full "
            "result is kept",
        )
        self.live = CheckBox(
            text="live preview",
            tooltip="Re-run on every parameter change (2-D images; the previous run is dropped)",
        )
        self.cross_check = CheckBox(
            text="cross-check with cv2.kmeans",
            tooltip="Run OpenCV's k-means on the same features and compare (agreement, "
            "inertia ratio, centre gap). Can take far longer than the segmentation; Cancel "
            "abandons it",
        )
        default_clean_up = check_regularize(DEFAULTS["regularize"])
        self.clean_up = ComboBox(
            label="clean up labels",
            choices=list(CLEAN_UP),
            value=next(
                name
                for name, choice in CLEAN_UP.items()
                if check_regularize(choice) == default_clean_up
            ),
            tooltip="After clustering, inside the mask: " + OPTIONS["regularize"].plain_doc,
        )
        self.potts_beta = FloatSpinBox(
            label="Potts β",
            value=1.0,
            min=0.05,
            max=50.0,
            step=0.25,
            tooltip="Weight of one disagreeing neighbour, against the average pixel's "
            "squared colour distance to its cluster centre",
        )
        self.min_size = option_control("min_size", value=0)
        self.spatial_weight = option_control("spatial_weight")
        self.standardize = option_control("standardize")
        self.texture = option_control("texture")
        self.texture_scale = SpinBox(
            label="texture scale",
            value=int(DEFAULT_LARGEST),
            min=2,
            max=512,
            tooltip="Largest texture scale in pixels: about the size of the texture's pattern",
        )
        self.seed = option_control("seed", value=DEFAULT_SEED)
        self.restarts = SpinBox(
            label="restarts (0 = auto)",
            value=0,
            min=0,
            max=100,
            tooltip="k-means++ runs from different seeds; the one with the lowest inertia is "
            "kept. 0 = auto, as napari_kmeans.segment's default",
        )
        self.max_iter = option_control("max_iter")
        self.tol = LineEdit(
            label="tolerance",
            value=f"{DEFAULTS['tol']:g}",
            tooltip=OPTIONS["tol"].plain_doc,
        )
        self.slice_allowed = self.live_allowed = False
        self.main = Container(
            widgets=[
                self.images,
                self.channel_axis,
                self.n_clusters,
                self.method,
                self.color_space,
                self.mask,
                self.denoise,
                self.denoise_size,
                self.label_colors,
                self.background,
                self.current_slice,
                self.live,
                self.clean_up,
                self.potts_beta,
                self.min_size,
                self.cross_check,
            ]
        )
        self.advanced = Container(
            widgets=[
                self.spatial_weight,
                self.standardize,
                self.texture,
                self.texture_scale,
                self.seed,
                self.restarts,
                self.max_iter,
                self.tol,
            ]
        )
        self.advanced_fold = QCollapsible("Advanced options")
        self.advanced_fold.setDuration(0)  # a fold, not an animation: the dock's size follows
        self.advanced_fold.addWidget(self.advanced.native)
        self.advanced_fold.toggleButton().setToolTip(
            "Show or hide the options most runs leave as they are"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.main.native)
        layout.addWidget(self.advanced_fold)
        self.restore()
        for name in REMEMBERED:
            getattr(self, name).changed.connect(slot(self.remember))
        self.clean_up.changed.connect(slot(self.update_choices))
        for control in (
            self.images,
            self.channel_axis,
            self.color_space,
            self.spatial_weight,
            self.denoise,
            self.texture,
        ):
            control.changed.connect(slot(self.update_choices))

    # --- choices that follow the viewer's layers and the chosen input -----------------------

    def _image_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image) and not is_output(layer)
        ]

    def _mask_choices(self, _widget=None):
        # a result's labels are no mask; a mask made from its clusters is
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Labels | Shapes)
            and layer.metadata.get(METADATA_KEY, {}).get("role") not in (LABELS, PREVIEW)
        ]

    def _axis_choices(self, _widget=None):
        layers = self.images.value if hasattr(self, "images") else []
        if len(layers) != 1 or layers[0].rgb:
            return []
        shape = layers[0].data.shape
        return [(f"axis {axis} (size {size})", axis) for axis, size in enumerate(shape)]

    def reset_choices(self, *_args) -> None:
        """Refresh the layer lists (napari calls this when layers change)."""
        self.main.reset_choices()
        if not self.images.value and self.images.choices:
            active = self.viewer.layers.selection.active
            choices = self.images.choices
            self.images.value = [active if active in choices else choices[0]]
        self.update_choices()

    def update_choices(self) -> None:
        """Offer only the options that apply to the chosen input."""
        layers = self.images.value
        self.channel_axis.reset_choices()
        one_nd = len(layers) == 1 and not layers[0].rgb and layers[0].ndim >= 3
        self.channel_axis.visible = one_nd
        if not one_nd:
            self.channel_axis.value = None
        rgb = len(layers) == 1 and layers[0].rgb
        self.color_space.visible = rgb  # only colour channels have colour spaces
        axis = self.channel_axis.value
        if rgb:
            space = color_spaces.get(self.color_space.value)
            n_features = space.n_features(3)  # RGBA: alpha is no feature
        else:
            n_features = 2 if len(layers) > 1 or axis is not None else 1
        self.denoise_size.visible = self.denoise.value in ("gaussian", "median")
        self.texture_scale.visible = self.texture.value
        exact = n_features == 1 and self.spatial_weight.value == 0 and not self.texture.value
        methods = METHODS if exact else {"k-means++": "kmeans++"}
        if self.method.choices != tuple(methods.values()):
            self.method.choices = list(methods.items())
        spatial_ndim = (layers[0].ndim - (axis is not None)) if layers else 2
        self.slice_allowed = spatial_ndim > 2
        self.live_allowed = spatial_ndim == 2
        self.current_slice.visible = self.slice_allowed
        self.live.visible = self.live_allowed
        self.potts_beta.visible = CLEAN_UP.get(self.clean_up.value) == "potts"

    # --- what a run gets --------------------------------------------------------------------

    def options(self) -> dict:
        """Return the options of :func:`napari_kmeans.segment`, checked."""
        text = self.tol.value.strip()
        try:
            tol = float(text)
        except ValueError:
            raise ValueError(
                f"tolerance {text!r} is not a number: use a small number such as 1e-4"
            ) from None
        layers = self.images.value
        rgb = len(layers) == 1 and layers[0].rgb
        return {
            "n_clusters": self.n_clusters.value,
            "method": self.method.value,
            "color_space": self.color_space.value if rgb else "rgb",
            "spatial_weight": self.spatial_weight.value,
            "standardize": self.standardize.value,
            "regularize": self._regularize(),
            "min_size": self.min_size.value or None,
            "smooth": self.smooth_option(),
            "texture": float(self.texture_scale.value) if self.texture.value else False,
            "seed": self.seed.value,
            "n_init": self.restarts.value or "auto",
            "max_iter": self.max_iter.value,
            "tol": tol,
        }

    def _regularize(self):
        choice = CLEAN_UP.get(self.clean_up.value)
        return ("potts", self.potts_beta.value) if choice == "potts" else choice

    def smooth_option(self):
        """Return the ``smooth=`` value the denoise controls stand for."""
        choice = self.denoise.value
        if choice in ("auto", "off"):
            return None if choice == "off" else "auto"
        return (choice, self.denoise_size.value)

    def input_options(self) -> dict:
        """Return the layers, mask, channel axis and slice of a run."""
        return {
            "layers": list(self.images.value),
            "mask": self.mask.value,
            "channel_axis": self.channel_axis.value,
            "current_slice": self.slice_allowed and self.current_slice.value,
        }

    def display_options(self) -> dict:
        """How the labels are shown: colours and background."""
        return {
            "label_colors": self.label_colors.value,
            "background": self.background.value or None,
        }

    # --- remembered between sessions --------------------------------------------------------

    def remember(self) -> None:
        store = settings()
        for name in REMEMBERED:
            store.setValue(name, getattr(self, name).value)
        store.sync()

    def restore(self) -> None:
        store = settings()
        for name in REMEMBERED:
            control = getattr(self, name)
            saved = store.value(name)
            if saved is None:
                continue
            try:
                if isinstance(control, CheckBox):
                    control.value = saved in (True, "true", "True", "1")
                elif isinstance(control, ComboBox):
                    if saved in control.choices:
                        control.value = saved
                elif isinstance(control, LineEdit):
                    control.value = str(saved)
                else:
                    control.value = type(control.value)(saved)
            except (TypeError, ValueError):
                continue  # a value from another version: keep the default
