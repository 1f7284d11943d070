"""Distinct label colours: a Glasbey-like palette built greedily in CIELAB.

Each colour is the sRGB grid colour farthest (CIEDE2000 ΔE, the colour difference that
follows perception best) from every colour chosen before it, starting from black and white
as if already chosen, so no label disappears against a black or white canvas. Candidates
are limited to ``MIN_LIGHTNESS <= L* <= MAX_LIGHTNESS``: nothing near black. The grid and
the order are fixed, so the palette is the same on every machine; it needs only NumPy and
OpenCV (no palette package in the base install).

Examples
--------
>>> colors = distinct_colors(4)
>>> colors.shape, colors.dtype.name
((4, 3), 'float64')
>>> bool((lightness(colors) >= MIN_LIGHTNESS).all())
True
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

MIN_LIGHTNESS = 30.0  # L* below this reads as black on napari's dark canvas
MAX_LIGHTNESS = 92.0  # above this, as white on a light canvas
GRID_LEVELS = 21  # sRGB levels per channel of the candidate grid (9,261 colours)
MAX_COLORS = 256

__all__ = ["delta_e_2000", "distinct_colors", "lightness", "srgb_to_lab"]


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert sRGB colours in [0, 1] to CIELAB (D65), as ``(n, 3)`` float64.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(n, 3)`` sRGB values in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` L*, a*, b*.

    Examples
    --------
    >>> srgb_to_lab(np.array([[1.0, 1.0, 1.0]])).round(1).tolist()
    [[100.0, 0.0, 0.0]]
    """
    unit = np.asarray(rgb, dtype=np.float32).reshape(1, -1, 3)
    return cv2.cvtColor(unit, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """Return the CIELAB lightness L* (0 black to 100 white) of sRGB colours in [0, 1].

    Examples
    --------
    >>> lightness(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])).round(1).tolist()
    [0.0, 100.0]
    """
    return srgb_to_lab(rgb)[:, 0]


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of CIELAB colours (broadcast over leading axes).

    Follows Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula",
    with kL = kC = kH = 1.

    Parameters
    ----------
    lab1, lab2 : numpy.ndarray
        ``(..., 3)`` L*, a*, b*.

    Returns
    -------
    numpy.ndarray
        ΔE00 of each pair.

    Examples
    --------
    >>> # pair 1 of Sharma et al.'s test data: 2.0425
    >>> round(float(delta_e_2000(np.array([50, 2.6772, -79.7751]),
    ...                          np.array([50, 0.0, -82.7485]))), 4)
    2.0425
    """
    lab1, lab2 = np.asarray(lab1, dtype=float), np.asarray(lab2, dtype=float)
    l1, a1, b1 = np.moveaxis(lab1, -1, 0)
    l2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1 = np.degrees(np.arctan2(b1, a1)) % 360
    h2 = np.degrees(np.arctan2(b2, a2)) % 360
    dl, dc = l2 - l1, c2 - c1
    dh = h2 - h1
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1 * c2 == 0, 0.0, dh)
    dh_big = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh) / 2)
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    h_sum = h1 + h2
    h_mean = np.where(
        np.abs(h1 - h2) <= 180, h_sum / 2, np.where(h_sum < 360, h_sum + 360, h_sum - 360) / 2
    )
    h_mean = np.where(c1 * c2 == 0, h_sum, h_mean)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    rotation = (
        -2
        * np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7))
        * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
    )
    return np.sqrt(
        (dl / s_l) ** 2
        + (dc / s_c) ** 2
        + (dh_big / s_h) ** 2
        + rotation * (dc / s_c) * (dh_big / s_h)
    )


@lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    levels = np.linspace(0.0, 1.0, GRID_LEVELS)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    usable = (lab[:, 0] >= MIN_LIGHTNESS) & (lab[:, 0] <= MAX_LIGHTNESS)
    grid, lab = grid[usable], lab[usable]
    # distance of every candidate to its nearest chosen colour, black and white counted
    nearest = np.minimum(delta_e_2000(lab, [0.0, 0.0, 0.0]), delta_e_2000(lab, [100.0, 0.0, 0.0]))
    chosen = []
    for _ in range(MAX_COLORS):
        best = int(np.argmax(nearest))  # first of equals: deterministic
        chosen.append(best)
        nearest = np.minimum(nearest, delta_e_2000(lab, lab[best]))
    palette = grid[chosen]
    palette.setflags(write=False)
    return palette


def distinct_colors(n: int) -> np.ndarray:
    """Return ``n`` distinct sRGB colours in [0, 1], the most distinct first.

    The first colours are the farthest apart (the first 12 are more than CIEDE2000
    ΔE 20 apart); beyond ``MAX_COLORS`` the palette repeats.

    Parameters
    ----------
    n : int
        Number of colours (>= 0).

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` float64 sRGB values.

    Examples
    --------
    >>> distinct_colors(2).round(2).tolist()  # doctest: +SKIP
    [[0.0, 1.0, 0.0], [0.8, 0.0, 1.0]]
    >>> len(distinct_colors(300))
    300
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n={n!r} is not allowed: use a number of colours >= 0")
    palette = _palette()
    return palette[np.arange(int(n)) % len(palette)].copy()
