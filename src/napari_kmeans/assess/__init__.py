"""Judging a result: suggesting k, agreement measures, the OpenCV cross-check."""
