"""The relay: two publishers (players) and a subscriber meet at one address."""

from __future__ import annotations

import threading
import time

from engine_support import ANY_PORT, state, status

from moodloop.engine import Publisher, Relay, Subscriber


def test_two_publishers_reach_one_subscriber_through_the_relay():
    with (
        Relay(ANY_PORT, ANY_PORT) as relay,
        Publisher(relay.frontend, connect=True, source="alice") as alice,
        Publisher(relay.frontend, connect=True, source="bob") as bob,
        Subscriber(relay.backend) as sub,
    ):
        heard: dict[str, str] = {}
        deadline = time.monotonic() + 1.5
        while len(heard) < 2 and time.monotonic() < deadline:
            alice.publish(status(state="bored"))
            bob.publish(status(state="engaged"))
            time.sleep(0.005)
            heard |= {m.source: m.state for m in sub.poll()}
    assert heard == {"alice": "bored", "bob": "engaged"}


def test_a_subscriber_can_follow_one_player():
    with (
        Relay(ANY_PORT, ANY_PORT) as relay,
        Publisher(relay.frontend, connect=True, source="alice") as alice,
        Publisher(relay.frontend, connect=True, source="bob") as bob,
        Subscriber(relay.backend, source="alice") as sub,
    ):
        heard: list[str] = []
        deadline = time.monotonic() + 1.5
        while heard.count("alice") < 10 and time.monotonic() < deadline:  # bob's flow by then
            bob.publish(status(state="engaged"))
            alice.publish(status(state="bored"))
            bob.publish(status(state="engaged"))
            time.sleep(0.005)
            heard += [m.source for m in sub.poll()]
        assert set(heard) == {"alice"} and sub.state == "bored" and sub.status.source == "alice"
        assert sub.dropped == 0  # bob's messages are not bad, only someone else's


def test_waiting_for_one_player_times_out_while_another_talks():
    with (
        Relay(ANY_PORT, ANY_PORT) as relay,
        Publisher(relay.frontend, connect=True, source="bob") as bob,
        Subscriber(relay.backend, source="alice") as sub,
    ):
        stop = threading.Event()

        def talk() -> None:  # for a second at most, so a failing test fails rather than hangs
            for _ in range(200):
                if stop.wait(0.005):
                    return
                bob.publish(state())

        talker = threading.Thread(target=talk)
        talker.start()
        try:
            start = time.monotonic()
            assert list(sub.messages(timeout=0.1)) == []
            assert time.monotonic() - start < 0.5
        finally:
            stop.set()
            talker.join()


def test_closing_the_relay_frees_its_addresses():
    with Relay(ANY_PORT, ANY_PORT) as relay:
        addresses = relay.frontend, relay.backend
    with Relay(*addresses) as again:  # at once: binding waits for libzmq to let go of them
        assert (again.frontend, again.backend) == addresses
