"""The one small error hierarchy every moodloop component raises.

Each message says what happened and what to do about it, so the CLI can print it as is.
"""

__all__ = ["MoodloopError", "ProtocolError", "VersionError", "ConfigError", "SourceError", "ModelError", "DataError"]


class MoodloopError(Exception):
    """Base class: an expected failure whose message is meant for the user."""


class ProtocolError(MoodloopError):
    """A message does not follow protocol v1 (bad frames, JSON, version or fields)."""


class VersionError(ProtocolError):
    """A message of another protocol version: the message says which side to upgrade."""


class ConfigError(MoodloopError):
    """A command-line option, config file or argument is invalid."""


class SourceError(MoodloopError):
    """A camera, video file or image folder cannot be opened or read."""


class ModelError(MoodloopError):
    """A model file is missing, unreadable or lacks the metadata moodloop needs."""


class DataError(MoodloopError):
    """A training or evaluation dataset is missing or not in a layout moodloop knows."""
