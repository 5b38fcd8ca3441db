"""Protocol v1: validation, wire frames, records, and bad messages over real sockets."""

from __future__ import annotations

import json
import time
from itertools import islice

import numpy as np
import pytest
import zmq
from engine_support import ANY_PORT, emotion, state, status, until_flowing

from moodloop.engine import (
    Publisher,
    ProtocolError,
    Status,
    Subscriber,
    VersionError,
    decode,
    encode,
)
from moodloop.engine.protocol import from_record, to_record


@pytest.mark.parametrize("make", [emotion, state, status])
def test_round_trip_over_a_real_socket(make):
    msg = make(frame=7)
    with Publisher(ANY_PORT, source="alice") as pub, Subscriber(pub.endpoint) as sub:
        received = until_flowing(pub, sub, msg)
    assert received[0].source == "alice"
    assert received[0] == type(msg)(**{**msg.__dict__, "seq": received[0].seq, "source": "alice"})


def test_publisher_stamps_seq_and_source():
    with Publisher(ANY_PORT, source="bob") as pub:
        stamped = [pub.publish(status()) for _ in range(3)]
    assert [m.seq for m in stamped] == [0, 1, 2]
    assert {m.source for m in stamped} == {"bob"}


def test_frames_are_topic_then_json_object():
    topic, body = encode(status(t=5.0, seq=3, source="s"))
    assert topic == b"moodloop.status"
    assert json.loads(body) == {
        "v": 1, "t": 5.0, "seq": 3, "source": "s",
        "state": "engaged", "fps": 15.0, "camera": "ok", "model": "mock", "uptime_s": 3.0,
    }  # fmt: skip
    assert "frame" in json.loads(encode(status(frame=0))[1])
    beat = status(t=5.0, since=1.5, confidence=0.8)  # optional: an older sender left them out (below)
    assert json.loads(encode(beat)[1])["since"] == 1.5 and decode(encode(beat)) == beat


def test_decode_ignores_unknown_fields_and_accepts_integers():
    payload = {"v": 1, "t": 5, "state": "bored", "fps": 30, "camera": "lost", "model": "m",
               "uptime_s": 1, "future_field": {"x": 1}}  # fmt: skip
    msg = decode([b"moodloop.status", json.dumps(payload).encode()])
    assert msg == Status(t=5.0, state="bored", fps=30.0, camera="lost", model="m", uptime_s=1.0)


def test_numpy_values_are_normalised_to_builtins():
    msg = emotion(face=np.array([1, 2, 3, 4], dtype=np.int32), confidence=np.float32(0.7))
    assert msg.face == (1, 2, 3, 4) and type(msg.face[0]) is int and type(msg.confidence) is float
    assert decode(encode(msg)) == msg


def test_records_round_trip():
    msg = emotion(frame=12)
    record = to_record(msg)
    assert record["topic"] == "moodloop.emotion" and record["v"] == 1
    assert from_record(json.loads(json.dumps(record))) == msg


@pytest.mark.parametrize(
    "make, changes, complaint",
    [
        (emotion, {"probs": {"happy": 0.7, "neutral": 0.2}}, "sum to 1"),
        (emotion, {"probs": {}}, "non-empty"),
        (emotion, {"label": "sad"}, "not a key of probs"),
        (emotion, {"valence": 1.5}, "valence"),
        (emotion, {"face": (1, 2, 3)}, "face"),
        (emotion, {"face": (1, 2, -3, 4)}, "face"),
        (emotion, {"latency_ms": float("nan")}, "latency_ms"),
        (state, {"state": "sleepy"}, "state"),
        (state, {"confidence": 2.0}, "confidence"),
        (state, {"t": 100.0, "since": 100.5}, "since .* is later than t"),
        (status, {"camera": "broken"}, "camera"),
        (status, {"seq": -1}, "seq"),
        (status, {"frame": 1.5}, "frame"),
        (status, {"fps": True}, "fps"),
        (status, {"t": 100.0, "since": 100.5}, "since .* is later than t"),
        (status, {"confidence": -0.1}, "confidence"),
    ],
)
def test_invalid_fields_are_rejected(make, changes, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        make(**changes)


GOOD = encode(status())
BAD_MESSAGES = {
    "malformed JSON": [b"moodloop.status", b"{not json"],
    "not an object": [b"moodloop.status", b"[1, 2]"],
    "wrong version": [b"moodloop.status", GOOD[1].replace(b'"v":1', b'"v":2')],
    "no version": [b"moodloop.status", GOOD[1].replace(b'"v":1,', b"")],
    "missing field": [b"moodloop.status", GOOD[1].replace(b'"fps":15.0,', b"")],
    "wrong topic": [b"moodloop.statusx", GOOD[1]],
    "non-UTF-8": [b"moodloop.status", b"\xff\xfe{}"],
    "three frames": [*GOOD, b"extra"],
    "one frame": [b"moodloop.status"],
    "boolean version": [b"moodloop.status", GOOD[1].replace(b'"v":1', b'"v":true')],
    "number too large for a float": [b"moodloop.status", GOOD[1].replace(b'"fps":15.0', b'"fps":1' + b"0" * 400)],
    # Deeper than the JSON parser goes, yet under the subscribers' 64 KiB frame limit.
    "nesting too deep for the JSON parser": [b"moodloop.status", b"[" * 50_000],
}


@pytest.mark.parametrize("frames", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_decode_raises_protocol_error(frames):
    with pytest.raises(ProtocolError):
        decode(frames)


@pytest.mark.parametrize(
    "version, advice",
    [
        (2, "sender is newer .*upgrade moodloop on this side"),
        (0, "sender is older .*upgrade moodloop on the sender"),
        ("1", "speaks v1; upgrade moodloop on the older side"),
    ],
)
def test_a_version_mismatch_says_which_side_to_upgrade(version, advice):
    body = GOOD[1].replace(b'"v":1', f'"v":{json.dumps(version)}'.encode())
    with pytest.raises(VersionError, match=advice):
        decode([GOOD[0], body])


def test_subscriber_drops_and_counts_bad_messages_without_raising(caplog):
    raw = zmq.Context.instance().socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    raw.bind(ANY_PORT)
    with raw, Subscriber(raw.getsockopt_string(zmq.LAST_ENDPOINT)) as sub:
        deadline = time.monotonic() + 1.0
        while not sub.poll():  # slow joiner: wait until good messages flow
            assert time.monotonic() < deadline, "no message reached the subscriber"
            raw.send_multipart(GOOD)
        for frames in BAD_MESSAGES.values():
            raw.send_multipart(frames)
        raw.send_multipart(GOOD)
        assert [m.state for m in islice(sub.messages(timeout=1.0), 1)] == ["engaged"]
        assert sub.dropped == len(BAD_MESSAGES)
    warnings = [r.getMessage() for r in caplog.records if "dropped a bad message" in r.getMessage()]
    assert len(warnings) == 2  # rate-limited per kind: a version mismatch is not hidden by garbage before it
    assert sum("protocol version" in w for w in warnings) == 1
