"""Socket plumbing shared by the publisher, subscriber and relay."""

from __future__ import annotations

import zmq

from moodloop.engine.errors import ConfigError
from moodloop.engine.lifecycle import Closeable

__all__ = ["RELAY_FRONTEND", "SocketOwner", "open_socket"]

RELAY_FRONTEND = "tcp://127.0.0.1:5555"
"""Where `moodloop relay` collects publishers by default (games still subscribe on 5556)."""


def open_socket(kind: int, endpoint: str, *, bind: bool, role: str) -> zmq.Socket:
    """Create a socket with LINGER 0, bound or connected, or raise an actionable error.

    Args:
        kind: The ZeroMQ socket type, e.g. ``zmq.PUB``.
        endpoint: ZeroMQ address, e.g. ``tcp://127.0.0.1:5556`` (``:*`` picks a free port).
        bind: Bind (the stable end) rather than connect.
        role: What the socket is for, for the error message.

    Raises:
        ConfigError: The endpoint is invalid or its address is in use.
    """
    socket = zmq.Context.instance().socket(kind)
    socket.setsockopt(zmq.LINGER, 0)  # closing drops unsent messages (Publisher gives them 200 ms)
    try:
        if bind:
            socket.bind(endpoint)
        else:
            socket.connect(endpoint)
    except zmq.ZMQError as exc:
        socket.close()
        hint = (
            "Is another sensor, mock or relay already running there? Stop it, pick another "
            "--endpoint, or run `moodloop relay` and connect with --connect."
            if exc.errno == zmq.EADDRINUSE
            else "Use an address like tcp://127.0.0.1:5556."
        )
        verb = "bind" if bind else "connect"
        raise ConfigError(f"Could not {verb} the {role} to {endpoint}: {exc}. {hint}") from None
    return socket


class SocketOwner(Closeable):
    """Base for objects built around one socket in ``self._socket``."""

    _socket: zmq.Socket
    _close_linger_ms = 0  # how long unsent messages may still leave after close()

    @property
    def endpoint(self) -> str:
        """The actual address, with the port filled in when bound to ``:*``."""
        return self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self) -> None:
        """Close the socket; anything still unsent after ``_close_linger_ms`` is discarded."""
        self._socket.close(linger=self._close_linger_ms)
