"""Subscriber: the game-side view, late joiners, offline detection, never blocking."""

from __future__ import annotations

import asyncio
import statistics
import time
from itertools import islice

import pytest
from engine_support import ANY_PORT, FakeClock, emotion, state, status, until_flowing

from moodloop.engine import ConfigError, Publisher, Subscriber


def test_late_joiner_learns_the_state_from_the_heartbeat():
    with Publisher(ANY_PORT) as pub:
        pub.publish(state(state="bored"))  # nobody listens yet: this one is lost
        with Subscriber(pub.endpoint) as sub:
            assert sub.state == "unknown" and not sub.online
            until_flowing(pub, sub, status(state="bored"))
            assert sub.online and sub.state == "bored"
            assert sub.state_age is not None and sub.state_age < 1.0


def test_dead_publisher_is_detected_offline_by_the_clock():
    clock = FakeClock()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, offline_after=3.0, clock=clock) as sub:
        until_flowing(pub, sub, status(state="bored"))
        clock.advance(2.9)
        assert sub.online and sub.state == "bored"
        clock.advance(0.2)
        assert not sub.online and sub.state == "unknown" and sub.state_age is None
        assert sub.status is not None  # the last reading stays available


def test_state_age_follows_the_sensors_since():
    clock = FakeClock()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, clock=clock) as sub:
        until_flowing(pub, sub, state(t=100.0, since=95.0))
        assert sub.state_age == pytest.approx(5.0)
        clock.advance(1.5)
        assert sub.state_age == pytest.approx(6.5)
        pub.publish(status(state="bored"))  # a heartbeat for the same state keeps the anchor
        assert [m.TOPIC for m in islice(sub.messages(timeout=1.0), 1)] == ["moodloop.status"]
        assert sub.state_age == pytest.approx(6.5)


def test_poll_drains_everything_and_keeps_the_newest():
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        for confidence in (0.6, 0.7, 0.8):
            pub.publish(emotion(probs={"happy": confidence, "neutral": 1 - confidence}, confidence=confidence))
        received = list(sub.messages(timeout=0.5))  # poll() until 0.5 s of silence: no extras
        assert [m.confidence for m in received] == [0.6, 0.7, 0.8]
        assert sub.emotion is received[-1]


def test_a_flood_cannot_keep_poll_draining(monkeypatch):
    monkeypatch.setattr("moodloop.engine.subscriber._MAX_PER_POLL", 2)
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        sent = [pub.publish(emotion()).seq for _ in range(3)]
        time.sleep(0.05)
        first = sub.poll()
        assert [m.seq for m in first] == sent[:2]  # capped; the rest waits for the next frame
        rest = list(islice(sub.messages(timeout=1.0), 1))
        assert [m.seq for m in rest] == sent[2:] and sub.emotion is rest[-1]


def test_a_slow_subscriber_never_blocks_the_publisher():
    sent = 1000
    # 30 kB messages: 30 MB overflow every queue and kernel buffer between the two sockets.
    with Publisher(ANY_PORT, source="x" * 30_000) as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        msg = emotion()
        durations = []
        for _ in range(sent):  # the subscriber does not read meanwhile
            before = time.perf_counter()
            pub.publish(msg)
            durations.append(time.perf_counter() - before)
        # A blocked send would never return; the loose max leaves room for CPU preemption
        # on a busy machine, the median shows the usual cost.
        assert max(durations) < 0.5 and statistics.median(durations) < 0.002
        time.sleep(0.05)
        assert 0 < len(sub.poll()) < sent  # the overflow was dropped, not queued


def test_blocking_iterator_stops_after_silence():
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        pub.publish(state())
        start = time.monotonic()
        assert [m.TOPIC for m in sub.messages(timeout=0.1)] == ["moodloop.state"]
        assert time.monotonic() - start < 0.5


def test_async_iterator():
    async def collect(sub):
        return [m async for m in sub.amessages(timeout=0.1)]

    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        pub.publish(state())
        pub.publish(emotion())
        assert [m.TOPIC for m in asyncio.run(collect(sub))] == ["moodloop.state", "moodloop.emotion"]


def test_topic_filter_and_unknown_topics():
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, topics=["moodloop.state"]) as sub:
        until_flowing(pub, sub, state())
        pub.publish(status())
        pub.publish(state(state="absent"))
        assert [m.state for m in islice(sub.messages(timeout=1.0), 1)] == ["absent"]
    with pytest.raises(ConfigError, match="moodloop.mood"):
        Subscriber(ANY_PORT, topics=["moodloop.mood"])


def test_bound_subscriber_with_connecting_publisher():
    with Subscriber(ANY_PORT, bind=True) as sub:
        with Publisher(sub.endpoint, connect=True) as pub:
            assert until_flowing(pub, sub, status())
