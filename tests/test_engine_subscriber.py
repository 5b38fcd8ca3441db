"""Subscriber: the game-side view, late joiners, offline detection, never blocking."""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import Iterator
from itertools import islice

import pytest
from engine_support import ANY_PORT, FakeClock, emotion, state, status, until_flowing

from moodloop.engine import ConfigError, MoodloopError, Publisher, Relay, Subscriber


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


def test_a_sensor_that_says_it_stopped_is_offline_at_once():
    clock = FakeClock()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, clock=clock) as sub:
        until_flowing(pub, sub, status(state="engaged"))
        pub.publish(status(state="engaged", camera="none"))  # its final heartbeat: the video ended
        assert len(list(sub.messages(timeout=0.5))) == 1
        assert not sub.online and sub.state == "unknown" and sub.status.camera == "none"
        pub.publish(status(state="bored", uptime_s=0.2))  # a new sensor comes
        assert len(list(sub.messages(timeout=0.5))) == 1 and sub.online and sub.state == "bored"


def test_after_a_sensors_last_word_any_message_is_first_contact():
    clock = FakeClock()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, clock=clock) as sub:
        until_flowing(pub, sub, status(state="bored", since=time.time() - 40, confidence=0.9))
        pub.publish(status(state="bored", camera="none"))
        assert len(list(sub.messages(timeout=0.5))) == 1 and not sub.online
        pub.publish(emotion())  # a new sensor's first heartbeat was lost to the slow joiner
        assert len(list(sub.messages(timeout=0.5))) == 1
        assert sub.online and (sub.state, sub.state_age, sub.state_confidence) == ("unknown", 0.0, None)


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


def test_a_restarted_sensor_starts_a_new_state_age():
    clock = FakeClock()
    with Publisher(ANY_PORT, source="alice") as pub, Subscriber(pub.endpoint, clock=clock) as sub:
        until_flowing(pub, sub, status(state="engaged", uptime_s=50.0))
        clock.advance(2.0)
        pub.publish(status(state="engaged", uptime_s=52.0))
        assert list(islice(sub.messages(timeout=1.0), 1)) and sub.state_age == pytest.approx(2.0)
        clock.advance(1.0)  # restarted within offline_after: it never looked offline
        pub.publish(status(state="engaged", uptime_s=0.5))
        assert list(islice(sub.messages(timeout=1.0), 1)) and sub.state_age == pytest.approx(0.0)


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


@contextlib.contextmanager
def direct() -> Iterator[tuple[Publisher, Subscriber]]:
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        yield pub, sub


@contextlib.contextmanager
def through_relay() -> Iterator[tuple[Publisher, Subscriber]]:
    with (
        Relay(ANY_PORT, ANY_PORT) as relay,
        Publisher(relay.frontend, connect=True) as pub,
        Subscriber(relay.backend) as sub,
    ):
        yield pub, sub


@pytest.mark.parametrize("link", [direct, through_relay])
def test_a_stalled_game_finds_seconds_of_backlog_not_minutes(link):
    with link() as (pub, sub):
        until_flowing(pub, sub, status())
        msg = emotion()
        first = pub.publish(msg).seq
        for n in range(3000):  # over three minutes at 15 fps while the game does not poll
            pub.publish(msg)
            if n % 50 == 0:
                time.sleep(0.001)  # let the I/O threads fill every buffer on the way
        backlog = list(sub.messages(timeout=0.2))
        # The queues' 164 messages plus a few KiB of kernel buffers; kernel buffers left to
        # grow held all 3000. What is left is the start of the stall: newer ones were dropped.
        assert 100 < len(backlog) < 500 and backlog[0].seq == first
        fresh = pub.publish(state(state="absent"))
        assert [m.seq for m in islice(sub.messages(timeout=1.0), 1)] == [fresh.seq]


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


@pytest.mark.parametrize("topics", [["moodloop.state"], "moodloop.state", "state", ["state"]])
def test_topic_filter(topics):
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, topics=topics) as sub:
        until_flowing(pub, sub, state())
        pub.publish(status())
        pub.publish(state(state="absent"))
        assert [m.state for m in islice(sub.messages(timeout=1.0), 1)] == ["absent"]


def test_a_subscriber_to_one_topic_stays_online_on_the_heartbeat_it_does_not_return():
    clock = FakeClock()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, topics="state", clock=clock) as sub:
        until_flowing(pub, sub, state(state="bored"))
        for _ in range(5):  # the player sits still: no state change for longer than offline_after
            clock.advance(1.0)
            sent, returned = pub.publish(status(state="bored")), []
            deadline = time.monotonic() + 2
            while (sub.status is None or sub.status.seq != sent.seq) and time.monotonic() < deadline:
                returned += sub.poll()
            assert returned == [] and sub.status.seq == sent.seq
        assert sub.online and sub.state == "bored"


@pytest.mark.parametrize(
    "options, complaint",
    [
        ({"topics": []}, "topics is empty"),
        ({"topics": ["moodloop.mood"]}, "moodloop.mood"),
        ({"topics": "mood"}, "choose emotion, state or status"),
        ({"offline_after": 0}, "offline_after"),
        ({"offline_after": -1.0}, "offline_after"),
        ({"offline_after": math.nan}, "offline_after"),
        ({"offline_after": math.inf}, "offline_after"),
        ({"offline_after": "3"}, "offline_after"),
        ({"offline_after": None}, "offline_after"),
        ({"offline_after": True}, "offline_after"),
        ({"topics": None}, "topic name or a list"),
    ],
)
def test_bad_options_say_what_is_wrong(options, complaint):
    with pytest.raises(ConfigError, match=complaint):
        Subscriber(ANY_PORT, bind=True, **options)


def test_using_a_closed_subscriber_or_publisher_says_it_is_closed():
    sub, pub = Subscriber(ANY_PORT, bind=True), Publisher(ANY_PORT)
    sub.close()
    pub.close()
    for use in (sub.poll, lambda: list(sub.messages(timeout=0.1)), lambda: sub.endpoint,
                lambda: pub.publish(status()), lambda: pub.endpoint):
        with pytest.raises(MoodloopError, match="is closed; create a new one"):
            use()


def test_closing_inside_the_async_message_loop_ends_it():
    async def collect(sub):
        seen = []
        async for msg in sub.amessages(timeout=1.0):
            seen.append(msg.TOPIC)
            sub.close()
        return seen

    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        pub.publish(state())
        time.sleep(0.05)
        assert asyncio.run(collect(sub)) == ["moodloop.state"]


def test_closing_inside_the_message_loop_ends_it():
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        pub.publish(state())
        seen = []
        for msg in sub.messages(timeout=1.0):
            seen.append(msg.TOPIC)
            sub.close()
        assert seen == ["moodloop.state"]


def test_a_caller_that_stopped_polling_keeps_the_state_and_its_age():
    """A loading screen longer than offline_after is no outage: the sensor's clock ran on."""
    clock, t = FakeClock(), time.time()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, clock=clock) as sub:
        until_flowing(pub, sub, status(t=t, state="bored"))  # a sender without `since`
        for second in range(1, 6):  # five heartbeats queue up while the game does not poll
            clock.advance(1.0)
            pub.publish(status(t=t + second, state="bored"))
        assert not sub.online and sub.state == "unknown"
        assert len(list(sub.messages(timeout=0.5))) == 5
        assert sub.state == "bored" and sub.state_age == pytest.approx(5.0)
        clock.advance(4.0)  # a real outage: four seconds of the sender's clock without a word
        pub.publish(status(t=t + 9, state="bored"))
        assert len(list(sub.messages(timeout=0.5))) == 1 and sub.state_age == pytest.approx(0.0)


def test_heartbeats_carry_the_states_age_and_confidence():
    clock, t = FakeClock(), time.time()
    with Publisher(ANY_PORT) as pub, Subscriber(pub.endpoint, clock=clock) as sub:
        assert sub.state_confidence is None
        until_flowing(pub, sub, status(t=t, state="bored", since=t - 12.0, confidence=0.8))
        assert sub.state_age == pytest.approx(12.0) and sub.state_confidence == 0.8  # a late joiner knows
        pub.publish(state(t=t + 1, state="engaged", since=t + 1, confidence=0.6))
        assert len(list(sub.messages(timeout=0.5))) == 1 and sub.state_confidence == 0.6
        clock.advance(3.5)
        assert sub.state_confidence is None and sub.state_age is None  # offline


def test_two_sensors_under_one_source_name_are_told_apart(caplog):
    with (Subscriber(ANY_PORT, bind=True) as sub,  # as behind a relay
          Publisher(sub.endpoint, connect=True, source="mock") as first,
          Publisher(sub.endpoint, connect=True, source="mock") as second):
        until_flowing(first, sub, status())
        until_flowing(second, sub, status())  # its numbers start again from 0: a restart, as far as we know
        assert "two sensors" not in caplog.text
        for _ in range(4):  # their messages interleave: the numbers go back and forth
            first.publish(emotion())
            second.publish(emotion())
            list(sub.messages(timeout=0.2))
    assert caplog.text.count("two sensors publish as source 'mock'") == 1  # once, not per message


def test_bound_subscriber_with_connecting_publisher():
    with Subscriber(ANY_PORT, bind=True) as sub:
        with Publisher(sub.endpoint, connect=True) as pub:
            assert until_flowing(pub, sub, status())
