"""The preview drawing and the headless status line (no display needed)."""

from __future__ import annotations

import io
import os
import socket
import sys

import cv2
import numpy as np
import pytest

from moodloop.engine.protocol import LABELS
from moodloop.sensor.detect import Face
from moodloop.sensor.engagement import Engagement
from moodloop.sensor.preview import PreviewWindow, Snapshot, StatusLine, has_display, render
from moodloop.sensor.smooth import Smoother

READING = Smoother(LABELS).update(np.array([0.1, 0.0, 0.0, 0.7, 0.1, 0.0, 0.1]), 0.0)
SNAPSHOT = Snapshot(np.zeros((480, 640, 3), np.uint8), Face(200, 100, 150, 150), READING,
                    Engagement("bored", "engaged", 0.0, 0.8), 12.0, 29.5, "ok")


def test_render_draws_on_a_copy_of_the_frame():
    image = render(SNAPSHOT)
    assert image.shape == (480, 640, 3) and image.any()
    assert not SNAPSHOT.image.any()  # the frame itself is untouched
    assert render(Snapshot(None, None, None, SNAPSHOT.engagement, 0.0, 0.0, "lost")).shape == (480, 640, 3)


def test_status_line_prints_at_most_once_a_second():
    stream = io.StringIO()
    line = StatusLine(stream)
    assert line.show(SNAPSHOT) and line.show(SNAPSHOT)
    assert stream.getvalue().count("\n") == 1
    assert "bored 12s" in stream.getvalue() and "happy 0.70" in stream.getvalue()


def test_closing_the_window_never_hides_the_real_error(monkeypatch):
    PreviewWindow().close()  # never shown (the camera failed to open): OpenCV would raise

    def already_destroyed(title: str) -> None:
        raise cv2.error("NULL window")

    # A stand-in for the OpenCV GUI: the user closed the window with its X button.
    monkeypatch.setattr(cv2, "imshow", lambda title, image: None)
    monkeypatch.setattr(cv2, "waitKey", lambda delay: -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: 0.0)
    monkeypatch.setattr(cv2, "destroyWindow", already_destroyed)
    window = PreviewWindow()
    assert not window.show(SNAPSHOT)  # closed: the sensor stops
    window.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X socket probe is Linux's")
def test_a_window_opens_only_where_an_x_display_answers(monkeypatch):
    screen = 9000 + os.getpid() % 1000  # an abstract socket: nothing is created on disk
    with socket.socket() as forwarded:  # as ssh -X listens for the remote side's display 10
        forwarded.bind(("127.0.0.1", 0))
        forwarded.listen()
        number = forwarded.getsockname()[1] - 6000
        cases = ((f":{screen}", False), ("", False), (f"127.0.0.1:{number}.0", True), (f"127.0.0.1:{number}", True))
        for display, expected in cases:
            monkeypatch.setenv("DISPLAY", display)
            assert has_display() is expected, display  # no server there: Qt would abort the process
    monkeypatch.setenv("DISPLAY", f"127.0.0.1:{number}")
    assert not has_display()  # the forwarding has gone
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")  # OpenCV's Qt has no Wayland plugin
    assert not has_display()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(f"\0/tmp/.X11-unix/X{screen}")
        server.listen()
        monkeypatch.setenv("DISPLAY", f":{screen}.0")
        assert has_display()
