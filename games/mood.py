"""The game's view of the player: the engine's Subscriber and Director, polled once per frame.

`Mood` turns what the sensor says into one `Decision` per frame, keeps smoothed emotion bars
for the HUD, and records every state change with the frame it arrived in and the frame it
reached gameplay, so the "within one frame" promise is measured rather than assumed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from moodloop.engine.director import Decision, Director
from moodloop.engine.lifecycle import Closeable
from moodloop.engine.protocol import LABELS, State, Status
from moodloop.engine.subscriber import Subscriber

__all__ = ["StateChange", "Mood"]


@dataclass(frozen=True, kw_only=True)
class StateChange:
    """One engagement state change as the game saw it.

    Attributes:
        state: The new state.
        previous: The state before it.
        time_s: Seconds since the game started when it arrived.
        frame: The frame whose poll received it.
        lag_frames: Frames between receiving it and applying it to gameplay.
        latency_ms: From the sensor's capture time to gameplay, on this machine's clock.
    """

    state: str
    previous: str
    time_s: float
    frame: int
    lag_frames: int
    latency_ms: float


class Mood(Closeable):
    """Subscriber + Director + smoothed emotion bars; a context manager that closes the socket.

    Args:
        endpoint: Where the sensor or mock publishes; None plays without one (state unknown).
        director: Decides waves, pace and pauses; the engine's defaults if None.
        smoothing_s: Time constant of the HUD's emotion bars, so they glide rather than flicker.
    """

    def __init__(self, endpoint: str | None, *, director: Director | None = None, smoothing_s: float = 0.4) -> None:
        self._sub = None if endpoint is None else Subscriber(endpoint)
        self._director = director or Director()
        self._smoothing_s = smoothing_s
        self._started = time.monotonic()
        self._pending: list[tuple[State | Status, str, int, float]] = []  # message, previous, frame, time
        self._known = "unknown"  # the last state recorded
        self.bars: dict[str, float] = dict.fromkeys(LABELS, 0.0)
        self.changes: list[StateChange] = []
        self.decision = Decision()
        self._play_time = 0.0  # seconds of play so far: the director's clock

    def close(self) -> None:
        """Close the subscription."""
        if self._sub is not None:
            self._sub.close()

    @property
    def online(self) -> bool:
        """Whether the sensor (or mock) has been heard lately."""
        return self._sub is not None and self._sub.online

    @property
    def state(self) -> str:
        """The engagement state; "unknown" without a sensor or while offline."""
        return "unknown" if self._sub is None else self._sub.state

    @property
    def state_age(self) -> float | None:
        """Seconds the current state has lasted, or None while offline."""
        return None if self._sub is None else self._sub.state_age

    @property
    def camera(self) -> str | None:
        """The sensor's camera state ("ok", "lost", "none"), or None before any status."""
        status = None if self._sub is None else self._sub.status
        return None if status is None or not self.online else status.camera

    def update(self, frame: int, dt: float, *, playing: bool = True) -> Decision:
        """Poll without blocking, smooth the bars and decide this frame's reaction.

        Args:
            frame: The frame number, to record when a state change arrived.
            dt: Seconds since the last frame, for the bars' smoothing.
            playing: False while the game is paused or over: the director's clock stops (its
                cooldown waits), it decides nothing but an absence, and boredom must build up
                again in play.
        """
        if self._sub is not None:
            received = time.monotonic() - self._started
            for msg in self._sub.poll():
                # The first state may come by heartbeat alone: its state message was sent before we
                # joined. Later changes come as state messages (heartbeats from several players
                # behind a relay would otherwise alternate).
                if isinstance(msg, State) or (isinstance(msg, Status) and self._known == "unknown" != msg.state):
                    previous = msg.previous if isinstance(msg, State) else self._known
                    self._pending.append((msg, previous, frame, received))
                    self._known = msg.state
            if not self._sub.online:  # gone: the state it comes back with is news again
                self._known = "unknown"
        emotion = self._sub.emotion if self.online else None
        target = emotion.probs if emotion is not None else {}
        keep = math.exp(-dt / self._smoothing_s)
        for label in target.keys() | self.bars.keys():  # a retrained model may bring other labels
            self.bars[label] = keep * self.bars.get(label, 0.0) + (1 - keep) * target.get(label, 0.0)
        # The director runs on play time, so a paused game cannot let its cooldown run out. Out of
        # play it hears "unknown" (the boredom timer restarts, the cooldown holds), or "absent":
        # an absent player who is also paused stays one pause, not two.
        self._play_time += dt if playing else 0.0
        state = self.state if playing or self.state == "absent" else "unknown"
        self.decision = self._director.update(state, now=self._play_time)
        return self.decision

    def settle(self, frame: int) -> None:
        """Record that this frame's decision is now in gameplay: closes the pending changes."""
        now = time.time()
        self.changes += [
            StateChange(
                state=msg.state,
                previous=previous,
                time_s=round(received, 3),
                frame=arrived,
                lag_frames=frame - arrived,
                latency_ms=round((now - msg.t) * 1000, 1),
            )
            for msg, previous, arrived, received in self._pending
        ]
        self._pending.clear()
