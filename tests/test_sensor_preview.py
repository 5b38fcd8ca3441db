"""The preview drawing and the headless status line (no display needed)."""

from __future__ import annotations

import io

import numpy as np

from moodloop.engine.protocol import LABELS
from moodloop.sensor.detect import Face
from moodloop.sensor.engagement import Engagement
from moodloop.sensor.preview import Snapshot, StatusLine, render
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
