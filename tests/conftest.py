"""Markers given by what a test uses, and Hypothesis profiles for CI and the local loop.

``gui``: every test that opens a napari viewer or drives Qt (the ``make_napari_viewer`` and
``qtbot`` fixtures, directly or through another fixture). ``slow``: the ``packaging`` tests,
and the tests marked by hand (~2 s or more on a quiet 2-core machine, warm compile cache).
``pytest -m "not slow"`` is the quick loop; ``-m "not gui"`` needs no display.

Hypothesis profiles, chosen by ``--hypothesis-profile`` or ``HYPOTHESIS_PROFILE``, else ``ci``
when ``CI=true``:

- ``ci``: the same examples on every run (derandomised, no example database), no deadline
  (a loaded machine or a first compile must not fail a test);
- ``dev``: a tenth of each test's examples (at least 5) for the local loop;
- ``default``: Hypothesis's own defaults, with no deadline.

Tests that set ``max_examples`` themselves keep that number except under ``dev``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

GUI_FIXTURES = {"make_napari_viewer", "make_napari_viewer_proxy", "qtbot", "qapp"}

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile("default", deadline=None)
PROFILE = os.environ.get(
    "HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI", "").lower() == "true" else "default"
)
settings.load_profile(PROFILE)


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Leave this file out of ``--doctest-modules`` (it has no doctests): imported as a
    module it would clash with src/conftest.py, which holds the name ``conftest`` first."""
    return True if collection_path == Path(__file__) else None


def pytest_collection_modifyitems(config, items) -> None:
    profile = config.getoption("--hypothesis-profile", None) or PROFILE  # the option wins
    for item in items:
        if GUI_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)
        if item.get_closest_marker("packaging"):  # builds and installs: always slow
            item.add_marker(pytest.mark.slow)
        if profile == "dev":
            _fewer_examples(item)


def _fewer_examples(item) -> None:
    """Run a tenth of a Hypothesis test's own ``max_examples`` (at least 5) under ``dev``.

    ``@settings(max_examples=...)`` on a test wins over any profile; the settings Hypothesis
    reads at run time are those stored on the test function, replaced here once per function.
    """
    test = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
    own = getattr(test, "_hypothesis_internal_use_settings", None)
    if not getattr(test, "is_hypothesis_test", False) or own is None or hasattr(test, "_dev"):
        return
    test._hypothesis_internal_use_settings = settings(
        own, max_examples=max(5, own.max_examples // 10)
    )
    test._dev = True
