"""The engagement estimator: emotion readings over time -> engaged / bored / absent / unknown.

Each frame's smoothed probabilities give valence and arousal (Russell & Mehrabian 1977
coordinates) and expressivity (1 - P(neutral)). A frame is "quiet" when both arousal and
expressivity stay near the player's own resting baseline, measured during a short calibration.
`bored` means quiet through most of a 10 s window; any clear reaction ends it quickly.
docs/engagement.md explains the rule, its sources and its limits.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, replace

from moodloop.engine.affect import valence_arousal
from moodloop.sensor.config import EngagementConfig
from moodloop.sensor.smooth import Reading

__all__ = ["Engagement", "EngagementEstimator"]


@dataclass(frozen=True)
class Engagement:
    """The estimator's verdict after one frame.

    Attributes:
        state: "engaged", "bored", "absent" or "unknown".
        previous: The state before the latest change.
        since: Source clock (seconds) when `state` began.
        confidence: How sure the estimator is, in [0, 1] (games can gate on it).
        changed: True on the frame where `state` changed.
    """

    state: str
    previous: str
    since: float
    confidence: float
    changed: bool = False


class _Window:
    """Samples of the last `span` seconds, each weighted by the time it stands for.

    Shares are of time, not of frames: a sensor analyses fewer frames a second while it has a
    face to classify than while it has none, so counting frames would make the player look
    absent more often on a slower machine. Running sums keep each update O(1); they are kept in
    whole microseconds, so what leaves the window takes away exactly what it brought.
    """

    def __init__(self, span: float) -> None:
        self._span = span
        self._items: deque[tuple[float, int, bool, bool]] = deque()
        self._time = self._present = self._quiet = 0

    def add(self, clock: float, seconds: float, present: bool, quiet: bool) -> None:
        weight = round(seconds * 1e6)
        self._items.append((clock, weight, present, quiet))
        self._time += weight
        self._present += weight * present
        self._quiet += weight * quiet
        while self._items[0][0] <= clock - self._span:
            _, weight, present, quiet = self._items.popleft()
            self._time -= weight
            self._present -= weight * present
            self._quiet -= weight * quiet

    @property
    def present_share(self) -> float:
        """Share of the time with a face."""
        return self._present / self._time if self._time else 0.0

    @property
    def quiet_share(self) -> float:
        """Share of the face time that was quiet."""
        return self._quiet / self._present if self._present else 0.0


class EngagementEstimator:
    """Turns per-frame readings into a debounced engagement state.

    Args:
        config: Windows, calibration length, thresholds and sustain times.
    """

    def __init__(self, config: EngagementConfig = EngagementConfig()) -> None:
        self._config = config
        self._long = _Window(config.window_s)
        self._short = _Window(config.exit_window_s)
        self._calibration: list[tuple[float, float]] = []  # (expressivity, arousal) samples
        self._calibrated_time = 0.0
        self._baseline: tuple[float, float] | None = None
        self._calibrated_at = 0.0
        self._last_clock: float | None = None
        self._last_face: float | None = None
        self._had_face = False  # whether the previous frame had a face
        self._current = Engagement("unknown", "unknown", 0.0, 0.0)
        self._pending: tuple[str, float] | None = None

    @property
    def current(self) -> Engagement:
        """The latest verdict."""
        return self._current

    def update(self, reading: Reading | None, clock: float) -> Engagement:
        """Fold in one frame at source time `clock`; `reading` is None when no face was seen."""
        if self._last_clock is None:
            self._current = Engagement("unknown", "unknown", clock, 0.0)
            self._last_face = self._last_clock = clock  # absence counts from the start, as if a face just left
        # A frame stands for the time since the one before it; a stall longer than absent_after_s
        # is no evidence, and a stamp from the past stands for nothing.
        step = min(max(0.0, clock - self._last_clock), self._config.absent_after_s)
        self._last_clock = max(self._last_clock, clock)
        quiet = False
        if reading is not None:
            self._last_face = max(self._last_face, clock)
            expressivity = 1.0 - reading.probs.get("neutral", 0.0)
            arousal = valence_arousal(reading.probs)[1]
            if self._baseline is None:  # face time: between two frames that both had a face
                self._calibrate(expressivity, arousal, step if self._had_face else 0.0, clock)
            else:
                base_e, base_a = self._baseline
                quiet = (expressivity <= base_e + self._config.expressivity_margin
                         and arousal <= base_a + self._config.arousal_margin)
        self._had_face = reading is not None
        self._long.add(clock, step, reading is not None, quiet)
        self._short.add(clock, step, reading is not None, quiet)
        return self._advance(self._target(clock), clock)

    def _calibrate(self, expressivity: float, arousal: float, step: float, clock: float) -> None:
        """Collect resting-face samples until `calibration_s` seconds of face time are seen."""
        self._calibration.append((expressivity, arousal))
        self._calibrated_time += step
        if self._calibrated_time >= self._config.calibration_s:
            cap = self._config.baseline_cap  # a player who smiled throughout is not "resting happy"
            self._baseline = (min(cap, statistics.median(e for e, _ in self._calibration)),
                              min(cap, statistics.median(a for _, a in self._calibration)))
            self._calibration.clear()
            self._calibrated_at = clock

    def _target(self, clock: float) -> str:
        """The state the evidence points to right now, before debouncing."""
        cfg = self._config
        if clock - self._last_face >= cfg.absent_after_s:
            return "absent"
        if self._baseline is None:
            return "unknown"
        if self._current.state == "bored":  # hysteresis: leaving takes a clear recent reaction
            reacted = self._short.present_share > 0 and self._short.quiet_share < cfg.bored_exit
            return "engaged" if reacted else "bored"
        full = clock - self._calibrated_at >= cfg.window_s
        bored = full and self._long.present_share >= cfg.present_fraction and self._long.quiet_share >= cfg.bored_enter
        return "bored" if bored else "engaged"

    def _confidence(self, state: str) -> float:
        if state == "absent":
            return 1.0 - self._short.present_share
        if state == "bored":
            return self._long.present_share * self._long.quiet_share
        if state == "engaged":
            return 1.0 - self._long.quiet_share
        return 0.0

    def _advance(self, target: str, clock: float) -> Engagement:
        """Switch to `target` once it has held for its sustain time."""
        current = self._current
        if target == current.state:
            self._pending = None
        else:
            if self._pending is None or self._pending[0] != target:
                self._pending = (target, clock)
            sustain = {"bored": self._config.bored_sustain_s, "engaged": self._config.engaged_sustain_s}
            if clock - self._pending[1] >= sustain.get(target, 0.0):
                self._pending = None
                self._current = Engagement(target, current.state, clock, self._confidence(target), changed=True)
                return self._current
        self._current = replace(current, confidence=self._confidence(current.state), changed=False)
        return self._current
