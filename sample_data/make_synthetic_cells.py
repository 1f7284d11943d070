"""Make ``synthetic_cells_16bit.png``: a 16-bit one-channel fluorescence-like image.

Round nuclei of three brightness classes (dim, medium, bright) on a slightly uneven
background, blurred by a Gaussian point-spread function, with Poisson (shot) noise, stored as
uint16 with a camera gain that uses most of the 16-bit range. Only numpy and OpenCV are
used and the seed is fixed, so running this script again rewrites the same file.

Run from anywhere::

    python sample_data/make_synthetic_cells.py

Examples
--------
>>> image, truth = make_synthetic_cells()
>>> image.shape, image.dtype, sorted(set(truth.ravel().tolist()))
((384, 512), dtype('uint16'), [0, 1, 2, 3])
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHAPE = (384, 512)
SEED = 20240611
N_NUCLEI = 45
RADIUS_RANGE = (9, 17)  # pixels
BACKGROUND_PHOTONS = 300.0  # mean photons per pixel, before the illumination gradient
CLASS_PHOTONS = (2500.0, 5000.0, 8500.0)  # mean photons inside dim, medium, bright nuclei
PSF_SIGMA = 2.0  # pixels
GAIN = 6.0  # grey levels per photon: bright nuclei average ~48 000, peaks stay below 65 535


def make_synthetic_cells(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Return the uint16 image and its ground truth (0 background, 1..3 dim..bright nucleus)."""
    rng = np.random.default_rng(seed)
    height, width = SHAPE
    truth = np.zeros(SHAPE, np.uint8)
    placed: list[tuple[int, int, int]] = []
    while len(placed) < N_NUCLEI:
        radius = int(rng.integers(*RADIUS_RANGE, endpoint=True))
        x = int(rng.integers(radius + 2, width - radius - 2))
        y = int(rng.integers(radius + 2, height - radius - 2))
        # Keep a small gap between nuclei so each one stays a separate object.
        if all((x - px) ** 2 + (y - py) ** 2 > (radius + pr + 4) ** 2 for px, py, pr in placed):
            placed.append((x, y, radius))
            cv2.circle(truth, (x, y), radius, int(rng.integers(1, 4)), thickness=-1)

    yy, xx = np.mgrid[0:height, 0:width]
    illumination = 1.0 + 0.25 * (xx / width) - 0.1 * (yy / height)
    photons = np.where(truth > 0, np.take((0.0, *CLASS_PHOTONS), truth), BACKGROUND_PHOTONS)
    photons = cv2.GaussianBlur(photons * illumination, (0, 0), PSF_SIGMA)
    counts = rng.poisson(photons).astype(np.float64)
    image = np.clip(np.rint(counts * GAIN), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return image, truth


def main() -> None:
    image, _ = make_synthetic_cells()
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode the synthetic image as PNG")
    target = Path(__file__).with_name("synthetic_cells_16bit.png")
    target.write_bytes(encoded.tobytes())
    print(f"wrote {target} {image.shape} {image.dtype} range {image.min()}..{image.max()}")


if __name__ == "__main__":
    main()
