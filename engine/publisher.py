"""The sending end: a ZeroMQ PUB socket that never blocks, whoever is (not) listening."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import zmq

from moodloop.engine.protocol import DEFAULT_ENDPOINT, Message, encode
from moodloop.engine.recording import Recorder
from moodloop.engine.transport import RELAY_FRONTEND, SEND_OPTIONS, SocketOwner, open_socket

__all__ = ["Publisher"]


class Publisher(SocketOwner):
    """Publishes protocol messages; a slow or dead subscriber never slows it down.

    Use it as a context manager. Not thread-safe: publish from one thread.

    Args:
        endpoint: ZeroMQ address. Defaults to DEFAULT_ENDPOINT when binding and to
            RELAY_FRONTEND when connecting.
        source: Publisher id stamped on every message, e.g. a player name.
        connect: Connect to a relay instead of binding.
        record: Also write every published message to this new JSON-lines file.

    Raises:
        ConfigError: The endpoint cannot be bound/connected, or the record file created (an
            existing file is never overwritten).
    """

    # The last messages, e.g. the sensor's final "camera none" heartbeat, still leave after
    # close(). Closing never blocks on it: libzmq sends in the background, and a PUB socket
    # queues nothing when nobody is connected.
    _close_linger_ms = 200

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        source: str = "moodloop",
        connect: bool = False,
        record: str | Path | None = None,
    ) -> None:
        endpoint = endpoint or (RELAY_FRONTEND if connect else DEFAULT_ENDPOINT)
        self.source = source
        self._seq = 0
        self._socket = open_socket(
            zmq.PUB, endpoint, bind=not connect, role="publisher", options=SEND_OPTIONS
        )
        try:
            self._recorder = Recorder(record) if record is not None else None
        except BaseException:
            self._socket.close()  # free the address: the caller may retry with another file
            raise

    def publish(self, msg: Message) -> Message:
        """Stamp ``seq`` and ``source``, send without blocking, and record.

        Messages a subscriber cannot take right now are dropped, never queued without bound.

        Args:
            msg: The message; its ``seq`` and ``source`` are replaced.

        Returns:
            The message as sent.

        Raises:
            ConfigError: The record file cannot be written (e.g. the disk is full).
            MoodloopError: The publisher is closed.
        """
        self._check_open()
        stamped = dataclasses.replace(msg, seq=self._seq, source=self.source)
        self._seq += 1
        # PUB drops at the high-water mark instead of blocking; NOBLOCK makes sure of it.
        self._socket.send_multipart(encode(stamped), flags=zmq.NOBLOCK)
        if self._recorder is not None:
            self._recorder.write(stamped)
        return stamped

    def close(self) -> None:
        """Close the socket (and the record file); unsent messages get 200 ms to leave."""
        super().close()
        if self._recorder is not None:
            self._recorder.close()
