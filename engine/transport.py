"""Socket plumbing shared by the publisher, subscriber and relay."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

import zmq

from moodloop.engine.errors import ConfigError, MoodloopError
from moodloop.engine.lifecycle import Closeable

__all__ = ["RELAY_FRONTEND", "RECEIVE_OPTIONS", "SEND_OPTIONS", "SocketOwner", "open_socket"]

RELAY_FRONTEND = "tcp://127.0.0.1:5555"
"""Where `moodloop relay` collects publishers by default (games still subscribe on 5556)."""

# Left alone, kernel TCP buffers grow to megabytes: behind a game that stalls for a minute
# that is thousands of stale messages. A few KiB hold a few messages; the HWMs bound the rest.
_KERNEL_BUFFER = 4096

SEND_OPTIONS: Mapping[int, int] = {zmq.SNDHWM: 64, zmq.SNDBUF: _KERNEL_BUFFER}
"""For sending sockets: ZeroMQ queues at most 64 messages per subscriber, then drops."""

RECEIVE_OPTIONS: Mapping[int, int] = {
    zmq.RCVHWM: 100,
    zmq.RCVBUF: _KERNEL_BUFFER,
    # Legit messages are under 1 KiB (a long model path or player name adds a few): a larger
    # frame is foreign, and libzmq drops its connection before reading it into memory.
    zmq.MAXMSGSIZE: 64 * 1024,
}
"""For receiving sockets: at most 100 queued messages, no frame over 64 KiB."""

# libzmq frees a closed socket's address in its I/O thread just after close() returns: a
# publisher restarted at once would otherwise find its own address "in use".
_REBIND_WAIT_S = 0.5
_REBIND_POLL_S = 0.01
_TCP_PORT = re.compile(r"tcp://.*:(-?[0-9]+)")


def open_socket(
    kind: int, endpoint: str, *, bind: bool, role: str, options: Mapping[int, int] | None = None
) -> zmq.Socket:
    """Create a socket with LINGER 0 and ``options``, bound or connected, or raise an actionable error.

    Args:
        kind: The ZeroMQ socket type, e.g. ``zmq.PUB``.
        endpoint: ZeroMQ address, e.g. ``tcp://127.0.0.1:5556`` (``:*`` picks a free port).
        bind: Bind (the stable end) rather than connect. An address still held by a socket
            closed a moment ago is retried for half a second.
        role: What the socket is for, for the error message.
        options: Socket options, e.g. SEND_OPTIONS; set before binding or connecting, since
            libzmq sizes each connection's queue and buffers when it is made.

    Raises:
        ConfigError: The endpoint is invalid or its address is in use.
    """
    verb = "bind" if bind else "connect"
    problem = f"Could not {verb} the {role} to {endpoint}"
    example = "Use an address like tcp://127.0.0.1:5556."
    if _port_out_of_range(endpoint):
        free = ", or * to pick a free one" if bind else ""  # a connection needs the port itself
        raise ConfigError(f"{problem}: a TCP port must be 1 to 65535{free}. {example}")
    socket = zmq.Context.instance().socket(kind)
    socket.setsockopt(zmq.LINGER, 0)  # closing drops unsent messages (Publisher gives them 200 ms)
    for option, value in (options or {}).items():
        socket.setsockopt(option, value)
    try:
        if bind:
            _bind(socket, endpoint)
        else:
            socket.connect(endpoint)
    except zmq.ZMQError as exc:
        socket.close()
        hint = (
            "Is another sensor, mock or relay already running there? Stop it, pick another "
            "--endpoint, or run `moodloop relay` and connect with --connect."
            if exc.errno == zmq.EADDRINUSE
            else example
        )
        raise ConfigError(f"{problem}: {exc}. {hint}") from None
    return socket


def _port_out_of_range(endpoint: str) -> bool:
    """Whether a TCP endpoint names a port outside 1..65535.

    libzmq binds port 99999 as 34463 (modulo 65536) and connects to it forever in vain.
    """
    port = _TCP_PORT.fullmatch(endpoint)
    return port is not None and not 1 <= int(port[1]) <= 65535


def _bind(socket: zmq.Socket, endpoint: str) -> None:
    deadline = time.monotonic() + _REBIND_WAIT_S
    while True:
        try:
            socket.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() >= deadline:
                raise
        time.sleep(_REBIND_POLL_S)


class SocketOwner(Closeable):
    """Base for objects built around one socket in ``self._socket``."""

    _socket: zmq.Socket
    _close_linger_ms = 0  # how long unsent messages may still leave after close()

    @property
    def endpoint(self) -> str:
        """The actual address, with the port filled in when bound to ``:*``.

        Raises:
            MoodloopError: The socket is closed.
        """
        self._check_open()
        return self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def _check_open(self) -> None:
        if self._socket.closed:
            raise MoodloopError(f"This {type(self).__name__} is closed; create a new one to use it again.")

    def close(self) -> None:
        """Close the socket; anything still unsent after ``_close_linger_ms`` is discarded."""
        self._socket.close(linger=self._close_linger_ms)
