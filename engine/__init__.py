"""moodloop's engine: the protocol v1 messages and the SDK games subscribe with.

A game needs three lines::

    from moodloop.engine import Subscriber, Director
    with Subscriber() as sub:
        ...  # each frame: sub.poll(); decision = director.update(sub.state)

See docs/protocol.md for the wire format.
"""

from moodloop.engine.affect import valence_arousal
from moodloop.engine.director import Decision, Director
from moodloop.engine.errors import (
    ConfigError,
    DataError,
    ModelError,
    MoodloopError,
    ProtocolError,
    SourceError,
)
from moodloop.engine.mock import SCENARIO_NAMES, MockSensor, Scenario, Segment
from moodloop.engine.protocol import (
    CAMERA_STATES,
    DEFAULT_ENDPOINT,
    EMOTION,
    LABELS,
    STATE,
    STATES,
    STATUS,
    TOPICS,
    VERSION,
    Emotion,
    Message,
    State,
    Status,
    decode,
    encode,
)
from moodloop.engine.publisher import Publisher
from moodloop.engine.recording import Recorder, read_recording, replay
from moodloop.engine.relay import Relay
from moodloop.engine.subscriber import Subscriber
from moodloop.engine.transport import RELAY_FRONTEND

__all__ = [
    "CAMERA_STATES",
    "DEFAULT_ENDPOINT",
    "EMOTION",
    "LABELS",
    "RELAY_FRONTEND",
    "SCENARIO_NAMES",
    "STATE",
    "STATES",
    "STATUS",
    "TOPICS",
    "VERSION",
    "ConfigError",
    "DataError",
    "Decision",
    "Director",
    "Emotion",
    "Message",
    "MockSensor",
    "ModelError",
    "MoodloopError",
    "ProtocolError",
    "Publisher",
    "Recorder",
    "Relay",
    "Scenario",
    "Segment",
    "SourceError",
    "State",
    "Status",
    "Subscriber",
    "decode",
    "encode",
    "read_recording",
    "replay",
    "valence_arousal",
]
