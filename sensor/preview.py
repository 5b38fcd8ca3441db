"""What the person running the sensor sees: a live preview window, or one status line a second.

The window draws the face box, a bar per class probability, the engagement state with its
duration, and the fps. It is local only: nothing drawn here is published or saved.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Protocol, TextIO

import cv2
import numpy as np

from moodloop.sensor.detect import Face
from moodloop.sensor.engagement import Engagement
from moodloop.sensor.smooth import Reading

__all__ = ["Snapshot", "View", "PreviewWindow", "StatusLine", "has_display", "render"]

_STATE_COLORS = {"engaged": (80, 200, 80), "bored": (0, 165, 255), "absent": (160, 160, 160), "unknown": (200, 200, 200)}


@dataclass(frozen=True)
class Snapshot:
    """Everything a view shows about the latest frame.

    Attributes:
        image: The BGR frame, or None when no frame arrived (camera lost).
        face: The player's face box, if any.
        reading: The smoothed emotion reading, if a face was analysed.
        engagement: The current engagement verdict.
        state_age: Seconds the engagement state has lasted.
        fps: Analysed frames per second.
        camera: "ok", "lost" or "none".
    """

    image: np.ndarray | None
    face: Face | None
    reading: Reading | None
    engagement: Engagement
    state_age: float
    fps: float
    camera: str


class View(Protocol):
    """Shows snapshots; `show` returns False when the user asked to quit."""

    def show(self, snapshot: Snapshot) -> bool: ...

    def close(self) -> None: ...


def has_display() -> bool:
    """True when a window can be opened: any non-Linux OS, or a Linux X display that answers.

    OpenCV's Linux wheels draw windows through Qt's X11 (xcb) plugin alone, and Qt aborts the
    whole process when that display cannot be reached (a stale ``DISPLAY`` over ssh, Wayland
    without XWayland). So the display must accept a connection first: on its socket for a
    local one (``:0``), on TCP port 6000 + N for ``host:N`` (ssh's forwarding, ``localhost:10``).
    """
    if not sys.platform.startswith("linux"):
        return True
    host, _, screen = os.environ.get("DISPLAY", "").rpartition(":")
    number = screen.split(".")[0]
    if not number.isdigit():
        return False
    if host not in ("", "unix"):
        with contextlib.suppress(OSError), socket.create_connection((host, 6000 + int(number)), timeout=0.5):
            return True
        return False
    path = f"/tmp/.X11-unix/X{number}"
    for address in (path, "\0" + path):  # the socket file, or Linux's abstract name for it
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            with contextlib.suppress(OSError):
                probe.connect(address)
                return True
    return False


def _state_text(snapshot: Snapshot) -> str:
    eng = snapshot.engagement
    return f"{eng.state} {snapshot.state_age:.0f}s (conf {eng.confidence:.2f})"


def render(snapshot: Snapshot) -> np.ndarray:
    """The preview image: the frame with the face box, probability bars, state and fps."""
    image = snapshot.image.copy() if snapshot.image is not None else np.zeros((480, 640, 3), np.uint8)
    color = _STATE_COLORS.get(snapshot.engagement.state, (255, 255, 255))
    if snapshot.face is not None:
        x, y, w, h = snapshot.face.box
        cv2.rectangle(image, (x, y), (x + w, y + h), color, 2)
    if snapshot.reading is not None:
        for row, (label, p) in enumerate(snapshot.reading.probs.items()):
            top = 10 + row * 20
            highlight = (0, 255, 255) if label == snapshot.reading.label else (255, 255, 255)
            cv2.rectangle(image, (90, top), (90 + round(150 * p), top + 14), highlight, cv2.FILLED)
            cv2.putText(image, label, (8, top + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, highlight, 1, cv2.LINE_AA)
    bottom = image.shape[0] - 12
    cv2.putText(image, _state_text(snapshot), (8, bottom), cv2.FONT_HERSHEY_SIMPLEX, 0.7, color, 2, cv2.LINE_AA)
    status = f"{snapshot.fps:.0f} fps  camera {snapshot.camera}"
    cv2.putText(image, status, (image.shape[1] - 230, bottom), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image


class PreviewWindow:
    """An OpenCV window; `q` or Esc closes it and stops the sensor."""

    def __init__(self, title: str = "moodloop sensor") -> None:
        self._title = title
        self._shown = False

    def show(self, snapshot: Snapshot) -> bool:
        """Draw the snapshot; False once the user pressed q/Esc or closed the window."""
        cv2.imshow(self._title, render(snapshot))
        self._shown = True
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self._title, cv2.WND_PROP_VISIBLE) < 1
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        """Close the window if one was shown; never raises, so it cannot hide the sensor's own error."""
        if not self._shown:
            return  # e.g. the camera failed to open: OpenCV raises when destroying a window never made
        self._shown = False
        with contextlib.suppress(cv2.error):  # the window's X button may have destroyed it already
            cv2.destroyWindow(self._title)


class StatusLine:
    """Headless view: one status line per second on stderr."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 1.0) -> None:
        self._stream = stream
        self._every = every_s
        self._next = 0.0

    def show(self, snapshot: Snapshot) -> bool:
        """Print a line if a second has passed since the last one; never asks to stop."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._every
            emotion = f"{snapshot.reading.label} {snapshot.reading.confidence:.2f}" if snapshot.reading else "no face"
            print(f"sensor: {_state_text(snapshot)} | {emotion} | {snapshot.fps:.1f} fps | camera {snapshot.camera}",
                  file=self._stream or sys.stderr, flush=True)
        return True

    def close(self) -> None:
        """Nothing to release."""
