"""Socket plumbing: addresses, rebinding, and the limits every receiving socket has."""

from __future__ import annotations

import threading
import time

import pytest
import zmq
from engine_support import ANY_PORT, status

from moodloop.engine import ConfigError, Publisher, Subscriber, encode


def raw_publisher() -> zmq.Socket:
    socket = zmq.Context.instance().socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(ANY_PORT)
    return socket


def test_a_publisher_rebinds_the_address_of_one_closed_a_moment_ago():
    held = raw_publisher()
    address = held.getsockopt_string(zmq.LAST_ENDPOINT)
    threading.Timer(0.1, held.close).start()  # the address frees up while the new one binds
    with Publisher(address) as pub:
        assert pub.endpoint == address


def test_an_address_held_for_good_is_reported_after_a_short_retry():
    with raw_publisher() as held:
        start = time.monotonic()
        with pytest.raises(ConfigError, match="Address already in use.*another sensor"):
            Publisher(held.getsockopt_string(zmq.LAST_ENDPOINT))
        assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1"])
@pytest.mark.parametrize("make", [Publisher, Subscriber])
def test_ports_outside_1_to_65535_are_refused(make, port):
    # libzmq itself would bind 99999 as port 34463 and connect to it forever in vain.
    with pytest.raises(ConfigError, match="port must be 1 to 65535") as refused:
        make(f"tcp://127.0.0.1:{port}")
    assert ("or * to pick a free one" in str(refused.value)) == (make is Publisher)  # a subscriber connects


def test_a_huge_frame_is_refused_unread():
    topic, body = encode(status())
    huge = body.replace(b"{", b'{"pad":"' + b"x" * 1_000_000 + b'",', 1)  # valid, but 1 MB
    with raw_publisher() as raw, Subscriber(raw.getsockopt_string(zmq.LAST_ENDPOINT)) as sub:
        deadline = time.monotonic() + 2.0
        while not sub.poll():  # slow joiner: wait until messages flow
            assert time.monotonic() < deadline, "no message reached the subscriber"
            raw.send_multipart([topic, body])
            time.sleep(0.002)
        list(sub.messages(timeout=0.05))  # copies still in flight
        raw.send_multipart([topic, huge])
        time.sleep(0.05)
        # libzmq closed the connection rather than read 1 MB into memory (it never reconnects
        # to a peer that broke the protocol).
        assert sub.poll() == [] and sub.dropped == 0
