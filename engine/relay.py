"""A meeting point for several sensors (players) and many games: libzmq's XSUB/XPUB proxy.

Publishers connect to the frontend (``Publisher(connect=True)``, ``--connect``), games
subscribe to the backend exactly as they would to a single sensor; subscriptions travel
upstream, so each publisher only sends the topics somebody wants.
"""

from __future__ import annotations

import itertools
import threading

import zmq

from moodloop.engine.lifecycle import Closeable
from moodloop.engine.protocol import DEFAULT_ENDPOINT
from moodloop.engine.transport import RECEIVE_OPTIONS, RELAY_FRONTEND, SEND_OPTIONS, open_socket

__all__ = ["Relay"]

_ids = itertools.count()


class Relay(Closeable):
    """Forwards every message from the frontend's publishers to the backend's subscribers.

    The proxy runs in a background thread from construction until :meth:`close`.
    ``frontend`` and ``backend`` hold the actual addresses (ports filled in for ``:*``).

    Args:
        frontend: Address publishers connect to (XSUB, bound).
        backend: Address subscribers connect to (XPUB, bound).

    Raises:
        ConfigError: An address is invalid or in use.
    """

    def __init__(self, frontend: str = RELAY_FRONTEND, backend: str = DEFAULT_ENDPOINT) -> None:
        # Receiving like a Subscriber and sending like a Publisher, the relay keeps what waits
        # for a stalled game as bounded as a direct connection does.
        self._frontend = open_socket(
            zmq.XSUB, frontend, bind=True, role="relay frontend", options=RECEIVE_OPTIONS
        )
        try:
            self._backend = open_socket(
                zmq.XPUB, backend, bind=True, role="relay backend", options=SEND_OPTIONS
            )
        except Exception:
            self._frontend.close()
            raise
        # Read before the proxy thread owns the sockets (ZeroMQ sockets are not thread-safe).
        self.frontend = self._frontend.getsockopt_string(zmq.LAST_ENDPOINT)
        self.backend = self._backend.getsockopt_string(zmq.LAST_ENDPOINT)
        # proxy_steerable stops cleanly on TERMINATE from this control pair.
        control = f"inproc://moodloop-relay-{next(_ids)}"
        self._control = open_socket(zmq.PAIR, control, bind=True, role="relay control")
        self._stopper = open_socket(zmq.PAIR, control, bind=False, role="relay control")
        self._thread = threading.Thread(target=self._serve, name="moodloop-relay", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            zmq.proxy_steerable(self._frontend, self._backend, None, self._control)
        finally:
            for socket in (self._frontend, self._backend, self._control):
                socket.close()

    def close(self) -> None:
        """Stop the proxy and release both addresses."""
        if self._thread.is_alive():
            self._stopper.send(b"TERMINATE")
            self._thread.join()
        self._stopper.close()
