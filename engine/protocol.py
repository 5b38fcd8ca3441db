"""Protocol v1: the three message types, their validation and their wire format.

Both ends use this module. A message travels as two ZeroMQ frames: the ASCII topic, then a
UTF-8 JSON object holding ``"v": 1`` and every field. Decoding is strict about what it needs
(version, required fields, types, ranges) and ignores fields it does not know, so a newer
sensor can add fields without breaking older games. See docs/protocol.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from moodloop.engine.errors import ConfigError, ProtocolError, VersionError

__all__ = [
    "VERSION",
    "DEFAULT_ENDPOINT",
    "EMOTION",
    "STATE",
    "STATUS",
    "TOPICS",
    "LABELS",
    "STATES",
    "CAMERA_STATES",
    "Emotion",
    "State",
    "Status",
    "Message",
    "encode",
    "decode",
    "to_record",
    "from_record",
    "topic_named",
]

VERSION = 1
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
EMOTION = "moodloop.emotion"
STATE = "moodloop.state"
STATUS = "moodloop.status"
TOPICS = (EMOTION, STATE, STATUS)
LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
STATES = ("engaged", "bored", "absent", "unknown")
CAMERA_STATES = ("ok", "lost", "none")

_SUM_TOLERANCE = 1e-3


def topic_named(name: str) -> str:
    """The topic ``name`` stands for: a topic, or its short form such as ``"state"``.

    Raises:
        ConfigError: ``name`` is no topic.
    """
    topic = name if name.startswith("moodloop.") else f"moodloop.{name}"
    if topic not in TOPICS:
        full = ", ".join(TOPICS)
        raise ConfigError(f"Unknown topic {name!r}; choose emotion, state or status (or in full {full}).")
    return topic


def _number(lo: float = -math.inf, hi: float = math.inf) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        # bool is an int subclass, but `true` is never a sensible number on the wire.
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # a JSON integer with hundreds of digits
            raise ValueError(f"expected a number in [{lo}, {hi}], got {value!r}") from None
        if not math.isfinite(number) or not lo <= number <= hi:
            raise ValueError(f"expected a number in [{lo}, {hi}], got {value!r}")
        return number

    return check


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return operator.index(value)  # accepts numpy integers, rejects floats
    except TypeError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _count(value: Any) -> int:
    number = _integer(value)
    if number < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _distribution(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"expected a non-empty object of label -> probability, got {value!r}")
    probability = _number(0.0, 1.0)
    result = {_text(label): probability(p) for label, p in value.items()}
    total = sum(result.values())
    if abs(total - 1.0) > _SUM_TOLERANCE:
        raise ValueError(f"probabilities must sum to 1, got {total:.6f}")
    return result


def _face(value: Any) -> tuple[int, int, int, int]:
    # Any 4-item iterable: a list from JSON, a tuple, or a numpy array from a detector.
    items = tuple(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else ()
    if len(items) != 4:
        raise ValueError(f"expected [x, y, w, h], got {value!r}")
    x, y, w, h = (_integer(v) for v in items)
    if w < 0 or h < 0:
        raise ValueError(f"face width and height must be >= 0, got {value!r}")
    return (x, y, w, h)


# One checker per field name: a name means the same thing in every message type.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "t": _number(),
    "seq": _count,
    "source": _text,
    "frame": _count,
    "probs": _distribution,
    "raw": _distribution,
    "label": _text,
    "confidence": _number(0.0, 1.0),
    "valence": _number(-1.0, 1.0),
    "arousal": _number(-1.0, 1.0),
    "face": _face,
    "latency_ms": _number(0.0),
    "state": _one_of(STATES),
    "previous": _one_of(STATES),
    "since": _number(),
    "fps": _number(0.0),
    "camera": _one_of(CAMERA_STATES),
    "model": _text,
    "uptime_s": _number(0.0),
}


@dataclass(frozen=True, kw_only=True)
class _Base:
    """Fields every message carries; subclasses add their own and a TOPIC."""

    TOPIC: ClassVar[str]

    t: float
    seq: int = 0
    source: str = ""
    frame: int | None = None

    def __post_init__(self) -> None:
        # Validate and normalise (numpy scalars -> builtins, lists -> tuples) so that a
        # message that exists is always a valid, JSON-encodable message.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.default is None:  # an optional field left out
                continue
            try:
                object.__setattr__(self, field.name, _CHECKS[field.name](value))
            except ValueError as exc:
                raise ProtocolError(f"{self.TOPIC}: bad field {field.name!r}: {exc}") from None
        since = getattr(self, "since", None)
        if since is not None and since > self.t:  # a game would see the state last a negative time
            raise ProtocolError(
                f"{self.TOPIC}: since ({since}) is later than t ({self.t}); a state cannot begin "
                "after the message that announces it"
            )


@dataclass(frozen=True, kw_only=True)
class Emotion(_Base):
    """One analysed frame with a face.

    Attributes:
        probs: Smoothed label -> probability (sums to 1).
        raw: Unsmoothed label -> probability (sums to 1).
        label: Dominant smoothed class, a key of ``probs``.
        confidence: Probability of ``label``, in [0, 1].
        valence: Pleasant (+1) to unpleasant (-1).
        arousal: Activated (+1) to calm (-1).
        face: Face box (x, y, w, h) in pixels.
        latency_ms: Capture to publish, in milliseconds.
    """

    TOPIC: ClassVar[str] = EMOTION

    probs: dict[str, float]
    raw: dict[str, float]
    label: str
    confidence: float
    valence: float
    arousal: float
    face: tuple[int, int, int, int]
    latency_ms: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.label not in self.probs:
            raise ProtocolError(f"{EMOTION}: label {self.label!r} is not a key of probs")


@dataclass(frozen=True, kw_only=True)
class State(_Base):
    """An engagement-state change.

    Attributes:
        state: The new state, one of STATES.
        previous: The state before, one of STATES.
        since: UNIX time when the new state began.
        confidence: How sure the sensor is, in [0, 1].
    """

    TOPIC: ClassVar[str] = STATE

    state: str
    previous: str
    since: float
    confidence: float


@dataclass(frozen=True, kw_only=True)
class Status(_Base):
    """The sensor's heartbeat, about once a second and on any change.

    Attributes:
        state: The current engagement state, one of STATES.
        fps: Analysed frames per second.
        camera: One of CAMERA_STATES.
        model: Model name or path.
        uptime_s: Seconds since the sensor started.
        since: UNIX time when ``state`` began, as in State (None from senders before it was added).
        confidence: How sure the sensor is of ``state`` now, in [0, 1] (None likewise).
    """

    TOPIC: ClassVar[str] = STATUS

    state: str
    fps: float
    camera: str
    model: str
    uptime_s: float
    since: float | None = None
    confidence: float | None = None


Message = Emotion | State | Status

_CLASSES: dict[str, type[Emotion] | type[State] | type[Status]] = {
    cls.TOPIC: cls for cls in (Emotion, State, Status)
}


def _payload(msg: Message) -> dict[str, Any]:
    # Shallow on purpose (asdict deep-copies, 10x slower): json.dumps only reads the values.
    # An optional field that is None is left out, as a sender that predates it would.
    values = ((f.name, getattr(msg, f.name)) for f in dataclasses.fields(msg))
    return {"v": VERSION, **{name: value for name, value in values if value is not None}}


def _upgrade_hint(version: Any) -> str:
    """Which side to upgrade, when the version number tells."""
    if isinstance(version, bool) or not isinstance(version, int):
        return f"this reader speaks v{VERSION}; upgrade moodloop on the older side"
    if version > VERSION:
        return f"the sender is newer (v{version}, this reader v{VERSION}): upgrade moodloop on this side"
    return f"the sender is older (v{version}, this reader v{VERSION}): upgrade moodloop on the sender"


def _build(topic: str, payload: Any) -> Message:
    cls = _CLASSES.get(topic)
    if cls is None:
        raise ProtocolError(f"unknown topic {topic!r}; expected one of {', '.join(TOPICS)}")
    if not isinstance(payload, dict):
        raise ProtocolError(f"{topic}: payload must be a JSON object, got {type(payload).__name__}")
    version = payload.get("v")
    if isinstance(version, bool) or version != VERSION:  # `true == 1` in Python, not on the wire
        hint = _upgrade_hint(version)
        raise VersionError(f"{topic}: protocol version {version!r} is not supported; {hint}")
    fields = dataclasses.fields(cls)
    missing = [
        f.name
        for f in fields
        if f.name not in payload
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ProtocolError(f"{topic}: missing field(s) {', '.join(missing)}")
    return cls(**{f.name: payload[f.name] for f in fields if f.name in payload})


def encode(msg: Message) -> list[bytes]:
    """Encode a message as its two wire frames.

    Args:
        msg: The message to send.

    Returns:
        ``[topic, json]``: the ASCII topic and the UTF-8 JSON object with ``"v": 1``.
    """
    body = json.dumps(_payload(msg), separators=(",", ":"), allow_nan=False)
    return [msg.TOPIC.encode("ascii"), body.encode("utf-8")]


def decode(frames: Sequence[bytes]) -> Message:
    """Decode two wire frames into a message, ignoring unknown fields.

    Args:
        frames: The multipart message as received: topic, then JSON.

    Returns:
        The validated message.

    Raises:
        ProtocolError: Wrong frame count, bad encoding or JSON, unknown topic, wrong version,
            missing or invalid field.
    """
    if len(frames) != 2:
        raise ProtocolError(f"expected 2 frames (topic, JSON), got {len(frames)}")
    try:
        topic = bytes(frames[0]).decode("ascii")
        payload = json.loads(bytes(frames[1]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: deep nesting
        raise ProtocolError(f"undecodable message: {exc}") from None
    return _build(topic, payload)


def to_record(msg: Message) -> dict[str, Any]:
    """Turn a message into one JSON-lines record: ``{"topic": ..., "v": 1, **fields}``.

    The record shares the message's ``probs`` and ``raw`` dicts: serialise it, do not mutate it.
    """
    return {"topic": msg.TOPIC, **_payload(msg)}


def from_record(obj: Mapping[str, Any]) -> Message:
    """Rebuild a message from a record made by :func:`to_record`.

    Raises:
        ProtocolError: The record lacks a known topic or is not a valid v1 message.
    """
    if not isinstance(obj, Mapping):
        raise ProtocolError(f"a record must be a JSON object, got {type(obj).__name__}")
    payload = dict(obj)
    return _build(str(payload.pop("topic", "")), payload)
