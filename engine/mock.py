"""A scripted stand-in for the sensor, so games can be developed without a webcam.

A :class:`Scenario` is a list of timed engagement-state segments, looping or not.
:class:`MockSensor` plays one through a :class:`Publisher` exactly as the sensor would: an
emotion message per analysed frame while a face is present (probabilities that drift with the
state, smoothed, with valence/arousal computed from them), a state message on every change and
a status heartbeat every second and on change.

Script files (``moodloop mock --script FILE``) are JSON::

    {"loop": true,
     "segments": [{"state": "engaged", "seconds": 5},
                  {"state": "bored", "seconds": 8, "label": "sad"}]}

``state`` is one of STATES, ``seconds`` > 0, ``label`` (optional) the dominant emotion, one of
LABELS; ``loop`` defaults to true, and a script that does not loop ends after its last segment.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodloop.engine.affect import valence_arousal
from moodloop.engine.errors import ConfigError
from moodloop.engine.protocol import LABELS, STATES, Emotion, Message, State, Status
from moodloop.engine.publisher import Publisher

__all__ = ["Segment", "Scenario", "SCENARIOS", "SCENARIO_NAMES", "MockSensor"]

_STATUS_EVERY_S = 1.0
_MAX_WAIT_S = 0.05  # how late a forced state or segment change may be noticed
_HALF_LIFE_S = 0.3  # of the probabilities' moving average: the sensor's default smoothing
_NOISE = 0.35  # spread of the per-frame multiplicative noise on the raw probabilities
# The dominant emotion of each state and how much of the probability it takes.
_MOODS = {"engaged": ("happy", 0.55), "bored": ("neutral", 0.75), "unknown": ("neutral", 0.5)}


@dataclass(frozen=True)
class Segment:
    """A stretch of time in one engagement state.

    Attributes:
        state: One of STATES.
        seconds: How long it lasts (> 0).
        label: Dominant emotion (one of LABELS); None uses the state's usual mood.
    """

    state: str
    seconds: float = math.inf
    label: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ConfigError(
                f"Unknown state {self.state!r} in a mock segment; use one of {', '.join(STATES)}."
            )
        if not self.seconds > 0:
            raise ConfigError(f"Mock segment {self.state!r} needs seconds > 0, got {self.seconds}.")
        if self.label is not None and self.label not in LABELS:
            raise ConfigError(f"Unknown emotion label {self.label!r}; use one of {', '.join(LABELS)}.")


@dataclass(frozen=True)
class Scenario:
    """Timed segments played in order.

    Attributes:
        segments: At least one segment.
        loop: Start over after the last segment; otherwise the scenario ends there.
    """

    segments: tuple[Segment, ...]
    loop: bool = True

    def __post_init__(self) -> None:
        if not self.segments:
            raise ConfigError("A mock scenario needs at least one segment.")

    def at(self, elapsed: float) -> Segment | None:
        """The segment playing ``elapsed`` seconds after the start, or None once it ended."""
        length = sum(s.seconds for s in self.segments)
        if self.loop and math.isfinite(length):
            elapsed %= length
        for segment in self.segments:
            if elapsed < segment.seconds:
                return segment
            elapsed -= segment.seconds
        return None

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """Load a JSON script (format in the module docstring).

        Raises:
            ConfigError: The file is missing, not JSON, or not a valid script.
        """
        try:
            script: Any = json.loads(Path(path).read_text(encoding="utf-8"))
            segments = tuple(
                Segment(s["state"], float(s["seconds"]), s.get("label")) for s in script["segments"]
            )
            if not isinstance(loop := script.get("loop", True), bool):  # bool("false") would be True
                raise TypeError(f"loop must be true or false, not {loop!r}")
            return cls(segments, loop=loop)
        except OSError as exc:
            raise ConfigError(f"Cannot read the mock script {path}: {exc.strerror}.") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ConfigError(
                f"The mock script {path} is not valid ({exc!r}). Expected JSON like "
                '{"loop": true, "segments": [{"state": "bored", "seconds": 5}]}.'
            ) from None


SCENARIOS: dict[str, Scenario] = {
    "engaged": Scenario((Segment("engaged"),)),
    "bored": Scenario((Segment("engaged", 4.0), Segment("bored", 8.0))),
    "absent": Scenario((Segment("engaged", 3.0), Segment("absent", 5.0))),
    "cycle": Scenario(
        (Segment("unknown", 2.0), Segment("engaged", 5.0), Segment("bored", 8.0), Segment("absent", 4.0))
    ),
}
"""Built-in scenarios: always engaged; engaged 4 s / bored 8 s, looping; engaged 3 s /
absent 5 s, looping; and a tour of every state."""

SCENARIO_NAMES = tuple(SCENARIOS)


def _mood(label: str, weight: float) -> dict[str, float]:
    rest = (1.0 - weight) / (len(LABELS) - 1)
    return {name: weight if name == label else rest for name in LABELS}


def _normalised(values: Mapping[str, float]) -> dict[str, float]:
    total = sum(values.values())
    return {label: v / total for label, v in values.items()}


class MockSensor:
    """Publishes a scenario's events in real time, or step by step with an injected clock.

    Args:
        scenario: A Scenario or the name of a built-in one (see SCENARIO_NAMES).
        publisher: Where to publish.
        rate: Emotion messages per second while a face is present.
        clock: UNIX-time clock in seconds (messages carry it as ``t``).
        seed: Seed for reproducible noise.

    Raises:
        ConfigError: Unknown scenario name or a rate that is not positive.
    """

    def __init__(
        self,
        scenario: Scenario | str,
        publisher: Publisher,
        *,
        rate: float = 15.0,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        if isinstance(scenario, str):
            if scenario not in SCENARIOS:
                raise ConfigError(f"Unknown scenario {scenario!r}; choose from {', '.join(SCENARIO_NAMES)}.")
            scenario = SCENARIOS[scenario]
        if not rate > 0:
            raise ConfigError(f"The mock rate must be > 0 messages per second, got {rate}.")
        self.scenario = scenario
        self.publisher = publisher
        self.rate = rate
        self._clock = clock
        self._random = random.Random(seed)
        self._keep = 0.5 ** (1 / (rate * _HALF_LIFE_S))  # per message, so any --rate smooths alike
        self._forced: Segment | None = None
        self._start: float | None = None
        self._state = "unknown"
        self._change: State | None = None  # the last state change, for the heartbeat
        self._probs = _mood("neutral", 0.5)
        self._next_emotion = self._next_status = -math.inf
        self.finished = False

    @property
    def state(self) -> str:
        """The engagement state currently published."""
        return self._state

    def force(self, state: str | None) -> None:
        """Hold ``state`` until released with None (the scenario keeps its own time).

        Raises:
            ConfigError: ``state`` is not one of STATES.
        """
        self._forced = None if state is None else Segment(state)

    def step(self, now: float | None = None) -> list[Message]:
        """Publish whatever is due at ``now`` (default: the clock) and return it."""
        now = self._clock() if now is None else now
        if self._start is None:
            self._start = now
        segment = self._forced or self.scenario.at(now - self._start)
        if segment is None:
            self.finished = True
            return []
        sent: list[Message] = []
        if segment.state != self._state:
            sent.append(self._state_change(segment.state, now))
        if segment.state != "absent" and now >= self._next_emotion:
            sent.append(self.publisher.publish(self._emotion(segment, now)))
            self._next_emotion = max(self._next_emotion + 1.0 / self.rate, now)
        if now >= self._next_status:
            sent.append(self.publisher.publish(self._status(now, uptime=now - self._start)))
            self._next_status = now + _STATUS_EVERY_S
        return sent

    def run(self, duration: float | None = None, stop: threading.Event | None = None) -> None:
        """Publish in real time until the scenario ends, ``duration`` passes or ``stop`` is set."""
        stop = stop or threading.Event()
        end = math.inf if duration is None else self._clock() + duration
        while not self.finished and self._clock() < end:
            self.step()
            due = min(self._next_emotion, self._next_status, end) - self._clock()
            if stop.wait(min(max(due, 0.0), _MAX_WAIT_S)):
                return

    def _state_change(self, state: str, now: float) -> Message:
        # As sure as a sensor that has seen a clear case; of "unknown" it is never sure.
        confidence = 0.0 if state == "unknown" else self._random.uniform(0.75, 0.95)
        change = self._change = State(t=now, state=state, previous=self._state, since=now, confidence=confidence)
        self._state = state
        self._next_status = now  # a heartbeat on every change, in this same step
        return self.publisher.publish(change)

    def _emotion(self, segment: Segment, now: float) -> Emotion:
        label, weight = _MOODS[segment.state]
        base = _mood(segment.label or label, weight)
        raw = _normalised({k: p * math.exp(self._random.gauss(0.0, _NOISE)) for k, p in base.items()})
        self._probs = _normalised(
            {k: self._keep * self._probs[k] + (1 - self._keep) * p for k, p in raw.items()}
        )
        dominant = max(self._probs, key=self._probs.__getitem__)
        valence, arousal = valence_arousal(self._probs)
        x, y, size = (round(self._random.gauss(mean, 3.0)) for mean in (250, 170, 150))
        return Emotion(
            t=now,
            probs=self._probs,
            raw=raw,
            label=dominant,
            confidence=self._probs[dominant],
            valence=valence,
            arousal=arousal,
            face=(x, y, size, size),  # a square detection wobbling by a few pixels
            latency_ms=self._random.uniform(18.0, 35.0),
        )

    def _status(self, now: float, uptime: float) -> Status:
        change = self._change
        return Status(t=now, state=self._state, fps=self.rate, camera="ok", model="mock", uptime_s=uptime,
                      since=change.since if change else now - uptime, confidence=change.confidence if change else 0.0)
