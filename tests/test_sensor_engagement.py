"""Smoother and engagement estimator, driven by an injected clock through scripted sessions."""

from __future__ import annotations

import numpy as np
import pytest

from moodloop.engine.errors import ModelError
from moodloop.engine.protocol import LABELS
from moodloop.sensor.config import EngagementConfig, SmoothConfig
from moodloop.sensor.engagement import EngagementEstimator
from moodloop.sensor.smooth import Smoother

NEUTRAL = np.array([0.02, 0.01, 0.02, 0.03, 0.88, 0.02, 0.02])
HAPPY = np.array([0.01, 0.01, 0.01, 0.9, 0.05, 0.01, 0.01])
SURPRISE = np.array([0.01, 0.01, 0.05, 0.1, 0.05, 0.01, 0.77])


def run_session(script: list[tuple[float, np.ndarray | None]], fps: float = 30.0,
                config: EngagementConfig = EngagementConfig()) -> list[tuple[float, str]]:
    """Feed (seconds, probs-or-None-for-no-face) segments; return the (clock, state) changes."""
    smoother, estimator = Smoother(LABELS), EngagementEstimator(config)
    changes, clock = [], 0.0
    for seconds, probs in script:
        for _ in range(round(seconds * fps)):
            reading = smoother.update(probs, clock) if probs is not None else None
            verdict = estimator.update(reading, clock)
            if verdict.changed:
                changes.append((round(clock, 2), verdict.state))
            clock += 1 / fps
    return changes


def states(changes: list[tuple[float, str]]) -> list[str]:
    return [state for _, state in changes]


def test_smoother_half_life_is_frame_rate_independent():
    results = []
    for fps in (10, 60):
        smoother = Smoother(LABELS, SmoothConfig(half_life_s=0.5))
        smoother.update(NEUTRAL, 0.0)
        for i in range(1, fps // 2 + 1):  # half a second of happy
            reading = smoother.update(HAPPY, i / fps)
        results.append(reading.probs["happy"])
    assert results[0] == pytest.approx(results[1], abs=1e-9)
    assert results[0] == pytest.approx((0.03 + 0.9) / 2, abs=1e-6)  # one half-life: halfway


def test_smoother_output_is_a_distribution_with_sticky_label():
    smoother = Smoother(LABELS, SmoothConfig(half_life_s=0.2, hysteresis=0.1))
    reading = smoother.update(HAPPY, 0.0)
    assert reading.label == "happy" and sum(reading.probs.values()) == pytest.approx(1.0)
    close = np.array([0.0, 0.0, 0.0, 0.47, 0.0, 0.0, 0.53])  # surprise barely ahead
    for i in range(1, 60):
        reading = smoother.update(close, i / 30)
    assert reading.label == "happy"  # within the hysteresis margin: no flip
    assert reading.raw["surprise"] == pytest.approx(0.53)
    for i in range(60, 90):
        reading = smoother.update(SURPRISE, i / 30)
    assert reading.label == "surprise"


def test_unknown_until_calibrated_then_engaged():
    changes = run_session([(5.0, HAPPY)])
    assert states(changes) == ["engaged"]
    assert changes[0][0] >= EngagementConfig().calibration_s


def test_long_neutral_becomes_bored_and_a_reaction_ends_it():
    changes = run_session([(25.0, NEUTRAL), (3.0, HAPPY)])
    assert states(changes) == ["engaged", "bored", "engaged"]
    bored_at = changes[1][0]
    cfg = EngagementConfig()
    assert cfg.calibration_s + cfg.window_s <= bored_at <= cfg.calibration_s + cfg.window_s + cfg.bored_sustain_s + 0.5
    assert changes[2][0] - 25.0 < 1.5  # a smile ends boredom within about a second


def test_expressive_player_stays_engaged():
    script = [(3.0, NEUTRAL)] + [(1.0, HAPPY), (1.5, NEUTRAL), (0.8, SURPRISE), (1.0, NEUTRAL)] * 6
    assert states(run_session(script)) == ["engaged"]


def test_no_face_becomes_absent_and_returns():
    changes = run_session([(4.0, NEUTRAL), (3.0, None), (2.0, HAPPY)])
    assert states(changes) == ["engaged", "absent", "engaged"]
    assert changes[1][0] == pytest.approx(4.0 + EngagementConfig().absent_after_s, abs=0.05)


def test_short_pauses_do_not_flicker():
    script = [(4.0, HAPPY)] + [(1.2, None), (1.0, HAPPY)] * 8
    assert states(run_session(script)) == ["engaged"]


def test_bored_does_not_flicker_on_brief_expressions():
    script = [(20.0, NEUTRAL)] + [(0.15, HAPPY), (3.0, NEUTRAL)] * 4
    assert states(run_session(script)) == ["engaged", "bored"]


def test_same_events_at_any_frame_rate():
    script = [(20.0, NEUTRAL), (3.0, None), (5.0, HAPPY)]
    assert states(run_session(script, fps=15)) == states(run_session(script, fps=60))


def test_baseline_is_relative_to_the_player():
    resting_sad = np.array([0.02, 0.01, 0.02, 0.02, 0.5, 0.41, 0.02])  # a sad-looking resting face
    assert states(run_session([(25.0, resting_sad)])) == ["engaged", "bored"]


def test_confidence_is_reported():
    estimator = EngagementEstimator()
    assert estimator.update(None, 0.0).confidence == 0.0
    verdict = estimator.update(None, 2.5)
    assert verdict.state == "absent" and 0.0 <= verdict.confidence <= 1.0


def test_no_face_from_the_start_is_absent():
    assert states(run_session([(3.0, None)])) == ["absent"]


def test_presence_is_a_share_of_time_not_of_frames():
    """Classifying a face slows the sensor: 8 fps with a face, 30 without must not look like absence."""
    smoother, estimator = Smoother(LABELS), EngagementEstimator()
    clock, changes = 0.0, []
    while clock < 40:
        face = clock % 10 < 8.5  # the face is in view 85 % of the time, above present_fraction
        verdict = estimator.update(smoother.update(NEUTRAL, clock) if face else None, clock)
        if verdict.changed:
            changes.append(verdict.state)
        clock += 1 / 8 if face else 1 / 30
    assert changes[:2] == ["engaged", "bored"]


def test_calibration_takes_its_seconds_at_a_low_frame_rate_too():
    for fps in (30, 1):  # an image folder shown at 1 fps, or a very slow machine
        first_clock, first_state = run_session([(20.0, NEUTRAL)], fps=fps)[0]
        assert first_state == "engaged" and first_clock <= 3.3 + 1 / fps, fps  # the sustain waits for a frame


def test_a_stamp_from_the_past_is_no_evidence():
    estimator, smoother = EngagementEstimator(), Smoother(LABELS)
    changes = []
    for i, clock in enumerate([i / 30 for i in range(200)]):
        glitch = -8.0 if i == 30 else clock  # one frame stamped 8 s early, during calibration
        verdict = estimator.update(smoother.update(NEUTRAL, glitch), glitch)
        if verdict.changed:
            changes.append((round(clock, 1), verdict.state))
    assert changes[0][1] == "engaged" and changes[0][0] <= 3.5
    estimator.update(smoother.update(NEUTRAL, -8.0), -8.0)  # a face stamped in the past...
    assert estimator.update(None, 200 / 30).state == "engaged"  # ...does not make one missed frame an absence
    smoother = Smoother(LABELS)
    smoother.update(NEUTRAL, 0.0)
    smoother.update(NEUTRAL, -10.0)
    assert smoother.update(HAPPY, 1 / 30).probs["happy"] < 0.2  # one frame later, not ten seconds


def test_the_smoother_takes_shares_and_refuses_what_is_not_probabilities():
    reading = Smoother(LABELS).update(HAPPY * 2, 0.0)  # scores that sum to 2
    assert sum(reading.probs.values()) == pytest.approx(1.0) and reading.confidence == pytest.approx(0.9)
    for bad in (np.full(7, np.nan), np.full(7, np.inf), np.zeros(7), HAPPY - 0.5):
        with pytest.raises(ModelError, match="not probabilities"):
            Smoother(LABELS).update(bad, 0.0)
