"""Scripted sessions of real FER2013 faces through the real sensor and the shipped model.

The sessions (`moodloop.sensor.synthetic.SESSIONS`, also printed by bench/session.py) are
videos of validation faces built in a temporary folder; the assertions are what a person
watching would agree with. The videos are 10 fps to keep the tests fast: every rule runs on
the video clock, so the states match those of a 30 fps camera up to a frame or two.
"""

from __future__ import annotations

import pytest

from moodloop.engine.protocol import Emotion
from moodloop.sensor.classify import DEFAULT_MODEL
from moodloop.sensor.synthetic import (FER_ZIP, SESSIONS, FacePool, play_session, segment_at, spans,
                                       states_on_video_clock)

pytestmark = [
    pytest.mark.skipif(not FER_ZIP.exists(), reason="needs ../shared/data/fer2013"),
    pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason=f"needs the trained model {DEFAULT_MODEL.name}"),
    pytest.mark.slow,
]

FPS = 10.0


@pytest.fixture(scope="module")
def pool() -> FacePool:
    return FacePool()


def played(name: str, pool: FacePool) -> tuple[list[tuple[float, str, int]], set[int]]:
    """Run a session: its (video s, state, segment index) changes and the frames analysed with a face."""
    messages = play_session(SESSIONS[name], pool, DEFAULT_MODEL, fps=FPS)
    changes = [(t, s.state, segment_at(SESSIONS[name], t)[0]) for t, s in states_on_video_clock(messages, FPS)]
    return changes, {m.frame for m in messages if isinstance(m, Emotion)}


def test_expressive_player_is_never_bored(pool):
    changes, _ = played("expressive", pool)
    assert [state for _, state, _ in changes] == ["engaged"]


def test_blank_stare_becomes_bored_during_the_stare_not_before(pool):
    changes, _ = played("engaged-then-bored", pool)
    stare_start, _ = spans(SESSIONS["engaged-then-bored"])[1]
    assert [state for _, state, _ in changes] == ["engaged", "bored"]
    bored_at = changes[1][0]
    assert changes[1][2] == 1 and bored_at - stare_start <= 15.0  # within 15 s of the stare
    assert changes[0][0] < stare_start  # the reactions read as engaged


def test_absent_during_the_gap_and_back_after(pool):
    changes, faces = played("absent", pool)
    assert [(state, segment) for _, state, segment in changes] == [("engaged", 0), ("absent", 1), ("engaged", 2)]
    gap_start, gap_end = spans(SESSIONS["absent"])[1]
    assert changes[1][0] - gap_start <= 3.0  # absent_after_s (2 s) + the detector's hold (0.5 s)
    assert not any(gap_start + 0.6 <= f / FPS < gap_end for f in faces)  # nobody seen in the empty frames


def test_short_pauses_do_not_flicker(pool):
    changes, _ = played("short-pauses", pool)
    assert [state for _, state, _ in changes] == ["engaged"]
