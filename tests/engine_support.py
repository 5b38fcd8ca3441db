"""Helpers shared by the engine tests: a fake clock, sample messages, slow-joiner handling."""

from __future__ import annotations

import time

from moodloop.engine import Emotion, Message, Publisher, State, Status, Subscriber

ANY_PORT = "tcp://127.0.0.1:*"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def emotion(**changes: object) -> Emotion:
    fields = dict(
        t=time.time(),
        probs={"happy": 0.7, "neutral": 0.3},
        raw={"happy": 0.6, "neutral": 0.4},
        label="happy",
        confidence=0.7,
        valence=0.57,
        arousal=0.36,
        face=(10, 20, 100, 100),
        latency_ms=12.5,
    )
    return Emotion(**{**fields, **changes})


def state(**changes: object) -> State:
    now = time.time()
    return State(**{"t": now, "state": "bored", "previous": "engaged", "since": now, "confidence": 0.9, **changes})


def status(**changes: object) -> Status:
    fields = dict(t=time.time(), state="engaged", fps=15.0, camera="ok", model="mock", uptime_s=3.0)
    return Status(**{**fields, **changes})


def until_flowing(pub: Publisher, sub: Subscriber, msg: Message, timeout: float = 1.0) -> list[Message]:
    """Publish ``msg`` until it reaches the subscriber (ZeroMQ's slow joiner).

    Returns once the last copy sent has arrived, so no stray copy is left in flight.
    """
    deadline = time.monotonic() + timeout
    received: list[Message] = []
    while time.monotonic() < deadline:
        last = pub.publish(msg)
        time.sleep(0.002)
        received += sub.poll()
        if received and received[-1].seq == last.seq:
            return received
    raise AssertionError("no message reached the subscriber")
