"""Director: boredom timing, cooldown, ramp, pause and reset, all on an injected clock."""

from __future__ import annotations

import numpy as np
import pytest
from engine_support import FakeClock

from moodloop.engine import ConfigError, Decision, Director, ProtocolError


def run(director: Director, state: str, clock: FakeClock, seconds: float, step: float = 0.5) -> list[Decision]:
    decisions = []
    for _ in range(round(seconds / step)):
        clock.advance(step)
        decisions.append(director.update(state))
    return decisions


def test_bored_for_3_s_intervenes_once_then_cools_down_and_ramps():
    director = Director(bored_after=3.0, cooldown=10.0, ramp_time=20.0, clock=FakeClock())
    at = {t: director.update("bored", now=t) for t in [x / 2 for x in range(0, 81)]}  # 0..40 s
    assert [t for t, d in at.items() if d.intervene] == [3.0, 13.0, 23.0, 33.0]
    assert all(at[t].intensity == 0 for t in at if t <= 3.0)
    assert at[13.0].intensity == pytest.approx(0.5)
    assert at[23.0].intensity == at[40.0].intensity == 1.0
    intensities = [d.intensity for d in at.values()]
    assert intensities == sorted(intensities)


def test_absent_pauses_and_engaged_resets_the_boredom_timer():
    clock = FakeClock()
    director = Director(bored_after=3.0, cooldown=0.0, clock=clock)
    run(director, "bored", clock, 2.5)
    absent = director.update("absent")
    assert absent == Decision(pause=True, state="absent")
    assert not any(d.intervene for d in run(director, "bored", clock, 2.5))
    run(director, "bored", clock, 1.0)
    engaged = director.update("engaged")
    assert engaged == Decision(state="engaged")
    assert not any(d.intervene or d.intensity for d in run(director, "bored", clock, 2.5))


def test_cooldown_survives_a_short_engagement():
    clock = FakeClock()
    director = Director(bored_after=1.0, cooldown=10.0, clock=clock)
    assert any(d.intervene for d in run(director, "bored", clock, 2.0))
    run(director, "engaged", clock, 1.0)
    assert not any(d.intervene for d in run(director, "bored", clock, 3.0))


def test_zero_ramp_jumps_to_full_intensity_and_bad_input_is_refused():
    clock = FakeClock()
    director = Director(bored_after=0.0, ramp_time=0.0, clock=clock)
    assert director.update("bored") == Decision(intervene=True, intensity=1.0, state="bored")
    with pytest.raises(ProtocolError, match="sleepy"):
        director.update("sleepy")
    assert Director(bored_after=np.float32(2.0), cooldown=np.int64(5)).cooldown == 5  # numpy numbers are numbers
    for bad in ({"cooldown": -1}, {"cooldown": float("nan")}, {"bored_after": float("inf")}, {"ramp_time": "3"}):
        with pytest.raises(ConfigError, match=f"{next(iter(bad))} must be a number of seconds >= 0"):
            Director(**bad)
