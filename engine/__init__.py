"""moodloop's engine: the protocol v1 messages and the SDK games subscribe with.

A game polls a Subscriber once per frame and lets a Director turn states into decisions::

    from moodloop.engine import Director, Subscriber

    director = Director()
    with Subscriber() as sensor:
        while running:
            sensor.poll()  # never blocks
            decision = director.update(sensor.state)  # .intervene, .intensity, .pause

See docs/protocol.md for the wire format and examples/ for complete programs.
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
    VersionError,
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
    "VersionError",
    "decode",
    "encode",
    "read_recording",
    "replay",
    "valence_arousal",
]
