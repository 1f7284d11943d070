"""Screenshots of napari with the "K-means segmentation" widget after Suggest k and a run.

Needs a display; on a headless machine run it under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshot.py

Writes next to this script:

- napari_screenshot.png: the window at 1600 x 1000;
- napari_screenshot_1366x768.png: the same state on a 1366 x 768 laptop screen (the widget
  scrolls; the advanced options stay folded).
"""

from __future__ import annotations

import time
from pathlib import Path

import napari

from napari_kmeans._napari.launch import open_viewer

DOCS = Path(__file__).resolve().parent
SAMPLE = DOCS.parent / "sample_data" / "ihc_slide.png"
SIZES = {"napari_screenshot.png": (1600, 1000), "napari_screenshot_1366x768.png": (1366, 768)}


def wait_for(condition, timeout: float = 120.0) -> None:
    app = napari.qt.get_qapp()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def settle(seconds: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() > deadline)


def main() -> None:
    viewer, widget = open_viewer([SAMPLE])
    viewer.window._qt_window.resize(*SIZES["napari_screenshot.png"])
    controls = widget.controls
    controls.seed.value = 0
    controls.cross_check.value = True
    controls.label_colors.value = "distinct"
    widget.suggest()
    wait_for(lambda: not widget.tasks.running)
    widget.use_suggested_k()
    widget.run()
    wait_for(lambda: not widget.tasks.running)
    viewer.layers["ihc_slide k-means labels"].opacity = 0.6
    viewer.layers["ihc_slide k-means recolored"].visible = False
    for name, size in SIZES.items():
        viewer.window._qt_window.resize(*size)
        settle()
        viewer.screenshot(str(DOCS / name), canvas_only=False, flash=False)
        print(f"wrote {DOCS / name}")
    viewer.close()


if __name__ == "__main__":
    main()
