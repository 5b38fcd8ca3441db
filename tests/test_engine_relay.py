"""The relay: two publishers (players) and a subscriber meet at one address."""

from __future__ import annotations

import time

from engine_support import ANY_PORT, status

from moodloop.engine import ConfigError, Publisher, Relay, Subscriber


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


def test_closing_the_relay_frees_its_addresses():
    with Relay(ANY_PORT, ANY_PORT) as relay:
        addresses = relay.frontend, relay.backend
    # libzmq unbinds in its I/O thread just after close returns: allow it a moment, no more.
    deadline = time.monotonic() + 2.0
    while True:
        try:
            with Relay(*addresses):
                return
        except ConfigError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
