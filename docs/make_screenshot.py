"""Screenshot of napari with the "K-means segmentation" widget after a run on sample data.

Needs a display; on a headless machine run it under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshot.py

Writes docs/napari_screenshot.png next to this script.
"""

from __future__ import annotations

import time
from pathlib import Path

import napari

from napari_kmeans._napari.launch import open_viewer

OUT = Path(__file__).resolve().parent / "napari_screenshot.png"
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "ihc_slide.png"


def wait_for(condition, timeout: float = 60.0) -> None:
    app = napari.qt.get_qapp()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the segmentation did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    viewer, widget = open_viewer([SAMPLE])
    viewer.window.resize(1500, 900)
    widget.n_clusters.value = 4
    widget.seed.value = 0
    widget.cross_check.value = True
    widget.run()
    wait_for(lambda: widget.worker is None)
    viewer.layers["ihc_slide k-means labels"].opacity = 0.6
    viewer.layers["ihc_slide k-means recolored"].visible = False
    wait_for(lambda: True)
    viewer.screenshot(str(OUT), canvas_only=False, flash=False)
    viewer.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
