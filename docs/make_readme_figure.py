"""Make ``docs/readme_figure.png``: a photo, its k-means recolouring and its labels.

Uses only numpy and OpenCV for drawing (no matplotlib), so it runs anywhere the
core package does::

    python docs/make_readme_figure.py            # writes docs/readme_figure.png
    python docs/make_readme_figure.py -o out.png

The photo is the first colour image in ``sample_data/`` (an ``astronaut`` file
if there is one); scikit-image's ``data.astronaut()`` is the fallback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

import napari_kmeans as nk

REPO = Path(__file__).resolve().parent.parent
N_CLUSTERS = 6
PANEL_HEIGHT = 360
CAPTION_HEIGHT = 34
GAP = 8
MAX_BYTES = 500_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
# Distinct, colour-blind-friendly label colours (Okabe-Ito), RGB.
LABEL_COLOURS = np.array(
    [
        [0, 114, 178],
        [230, 159, 0],
        [0, 158, 115],
        [204, 121, 167],
        [86, 180, 233],
        [213, 94, 0],
        [240, 228, 66],
        [0, 0, 0],
    ],
    dtype=np.uint8,
)
LUMA = np.array([0.299, 0.587, 0.114])  # to pick black or white digits on a swatch


def load_sample() -> tuple[np.ndarray, str]:
    """Return an RGB photo and a short name for it."""
    candidates = sorted(
        (p for p in (REPO / "sample_data").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: ("astronaut" not in p.name.lower(), p.name),
    )
    for path in candidates:
        image = nk.load_image(path)
        if image.ndim == 3 and image.shape[2] in (3, 4):
            return image[..., :3], path.name
    from skimage import data

    return data.astronaut(), "skimage.data.astronaut()"


def to_display(image: np.ndarray) -> np.ndarray:
    """uint8 RGB view of an RGB image of any supported dtype."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image.astype(np.float32) * (255 / 65535) + 0.5).astype(np.uint8)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def panel(
    image_rgb: np.ndarray, caption: str, height: int, legend: np.ndarray | None = None
) -> np.ndarray:
    """Resize to ``height`` and put a caption strip above it.

    With a ``legend`` (one RGB colour per label) the image is label colours: it is
    resized without blending them, and numbered swatches follow the caption.
    """
    scale = height / image_rgb.shape[0]
    width = round(image_rgb.shape[1] * scale)
    interpolation = cv2.INTER_NEAREST if legend is not None or scale > 1 else cv2.INTER_AREA
    body = cv2.resize(image_rgb, (width, height), interpolation=interpolation)
    strip = np.full((CAPTION_HEIGHT, width, 3), 255, np.uint8)
    font, size, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1
    (text_width, text_height), _ = cv2.getTextSize(caption, font, size, thickness)
    swatch = CAPTION_HEIGHT - 12
    swatches_width = 0 if legend is None else len(legend) * (swatch + 4) + 6
    x = (width - text_width - swatches_width) // 2
    baseline = (CAPTION_HEIGHT + text_height) // 2
    cv2.putText(strip, caption, (x, baseline), font, size, (30, 30, 30), thickness, cv2.LINE_AA)
    x += text_width + 10
    for number, colour in enumerate([] if legend is None else legend, start=1):
        top_left = (x, (CAPTION_HEIGHT - swatch) // 2)
        bottom_right = (x + swatch, top_left[1] + swatch)
        cv2.rectangle(strip, top_left, bottom_right, [int(c) for c in colour], cv2.FILLED)
        ink = (255, 255, 255) if colour @ LUMA < 140 else (0, 0, 0)
        cv2.putText(strip, str(number), (x + 6, baseline), font, 0.45, ink, 1, cv2.LINE_AA)
        x += swatch + 4
    return np.vstack([strip, body])


def side_by_side(panels: list[np.ndarray]) -> np.ndarray:
    spacer = np.full((panels[0].shape[0], GAP, 3), 255, np.uint8)
    row = [spacer]
    for item in panels:
        row += [item, spacer]
    return np.hstack(row)


def encode_png(figure_rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(
        ".png", cv2.cvtColor(figure_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    if not ok:
        raise RuntimeError("cv2.imencode could not encode the figure as PNG")
    return buffer.tobytes()


def make_figure() -> tuple[bytes, str]:
    """Segment the sample photo and return the PNG bytes and a one-line summary."""
    image, source = load_sample()
    seg = nk.segment(image, n_clusters=N_CLUSTERS, color_space="lab", seed=0)
    labels_rgb = LABEL_COLOURS[(seg.labels.astype(np.intp) - 1) % len(LABEL_COLOURS)]

    def render(height: int) -> bytes:
        return encode_png(
            side_by_side(
                [
                    panel(to_display(image), "input", height),
                    panel(
                        to_display(seg.recolored),
                        f"recoloured: k={N_CLUSTERS}, Lab, seed 0",
                        height,
                    ),
                    panel(
                        labels_rgb, "labels, dark to bright:", height, LABEL_COLOURS[:N_CLUSTERS]
                    ),
                ]
            )
        )

    height = min(PANEL_HEIGHT, image.shape[0])
    png = render(height)
    # A photo does not compress well: shrink until the README image stays small.
    while len(png) > MAX_BYTES:
        height = int(height * 0.85)
        png = render(height)
    return png, f"{source} -> {len(png) / 1000:.0f} KB, panels {height} px high"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "readme_figure.png")
    args = parser.parse_args(argv)
    png, summary = make_figure()
    args.output.write_bytes(png)
    print(f"wrote {args.output} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
