"""Silence OpenCV's own log lines where moodloop reports the failure itself, better."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2

__all__ = ["opencv_silenced"]


@contextmanager
def opencv_silenced() -> Iterator[None]:
    """Mute OpenCV's logging inside the block (e.g. "can't open camera by index"), then restore it."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)
