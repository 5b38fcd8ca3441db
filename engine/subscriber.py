"""The receiving end a game uses: poll once per frame, read the view, never block or raise."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence

import zmq

from moodloop.engine.errors import ConfigError, ProtocolError
from moodloop.engine.protocol import DEFAULT_ENDPOINT, TOPICS, Emotion, Message, State, Status, decode
from moodloop.engine.transport import SocketOwner, open_socket

__all__ = ["Subscriber"]

log = logging.getLogger(__name__)

# One warning per this many seconds at most, so a flood of bad messages cannot flood the log.
_WARN_EVERY_S = 5.0
_ASYNC_POLL_S = 0.01
# Seconds of emotion messages, not minutes: a longer backlog would only be stale (ZeroMQ drops
# what does not fit, and the publisher never waits).
_RCVHWM = 100
# A publisher flooding faster than poll() decodes would otherwise keep it draining forever;
# this is far more than ever sits queued (RCVHWM plus socket buffers) at a sane rate.
_MAX_PER_POLL = 1000


class Subscriber(SocketOwner):
    """Subscribes to the sensor's events and keeps a view of the newest state.

    A game calls :meth:`poll` once per frame and reads the view properties; other programs
    iterate :meth:`messages` or ``async for msg in sub.amessages()``. Bad messages are dropped,
    counted in :attr:`dropped` and logged, never raised. Not thread-safe.

    Args:
        endpoint: ZeroMQ address of the sensor, mock or relay.
        topics: Topics to receive, a subset of TOPICS.
        offline_after: Seconds without any message after which the sensor counts as offline
            (the sensor sends a status heartbeat every second).
        clock: Monotonic clock in seconds; inject a fake one in tests.
        bind: Bind instead of connecting (publishers then connect to us).

    Raises:
        ConfigError: Unknown topic, or the endpoint cannot be used.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        topics: Iterable[str] = TOPICS,
        offline_after: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        bind: bool = False,
    ) -> None:
        topics = tuple(topics)
        unknown = sorted(set(topics) - set(TOPICS))
        if unknown:
            raise ConfigError(f"Unknown topic(s) {', '.join(unknown)}; choose from {', '.join(TOPICS)}.")
        self.offline_after = offline_after
        self._clock = clock
        self._socket = open_socket(zmq.SUB, endpoint, bind=bind, role="subscriber")
        self._socket.setsockopt(zmq.RCVHWM, _RCVHWM)
        for topic in topics:
            self._socket.subscribe(topic.encode("ascii"))
        self._dropped = 0
        self._last_warning: float | None = None
        self._last_message: float | None = None
        self._emotion: Emotion | None = None
        self._status: Status | None = None
        self._state = "unknown"
        # Local-clock time the current state began (by the sensor's `since` when known).
        self._state_began = 0.0

    # --- receiving -------------------------------------------------------------------------

    def poll(self) -> list[Message]:
        """Drain every queued message without blocking and update the view.

        A publisher flooding faster than this drains cannot stall the caller: one call takes
        at most a thousand messages and leaves the rest to the next.

        Returns:
            The valid messages that arrived since the last call, oldest first.
        """
        received = []
        for _ in range(_MAX_PER_POLL):
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            msg = self._accept(frames)
            if msg is not None:
                received.append(msg)
        return received

    def messages(self, timeout: float | None = None) -> Iterator[Message]:
        """Yield messages as they arrive, blocking between them.

        Args:
            timeout: Stop after this many seconds without any message; None waits forever.
        """
        wait_ms = None if timeout is None else int(timeout * 1000)
        while self._socket.poll(wait_ms):
            yield from self.poll()

    async def amessages(self, timeout: float | None = None) -> AsyncIterator[Message]:
        """Asynchronously yield messages as they arrive, without blocking the event loop.

        Args:
            timeout: Stop after this many seconds without any message; None waits forever.
        """
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while timeout is None or loop.time() - heard < timeout:
            received = self.poll()
            for msg in received:
                yield msg
            if received:
                heard = loop.time()
            else:
                await asyncio.sleep(_ASYNC_POLL_S)

    def _accept(self, frames: Sequence[bytes]) -> Message | None:
        now = self._clock()
        try:
            msg = decode(frames)
        except ProtocolError as exc:
            self._dropped += 1
            if self._last_warning is None or now - self._last_warning >= _WARN_EVERY_S:
                self._last_warning = now
                log.warning("dropped a bad message (%d so far): %s", self._dropped, exc)
            return None
        if not self.online:  # first contact, or back after an outage: forget the old state
            self._state, self._state_began = "unknown", now
        self._last_message = now
        if isinstance(msg, Emotion):
            self._emotion = msg
        else:
            if isinstance(msg, Status):
                self._status = msg
            self._set_state(msg, now)
        return msg

    def _set_state(self, msg: State | Status, now: float) -> None:
        if msg.state != self._state:
            self._state, self._state_began = msg.state, now
        if isinstance(msg, State):  # the sensor says how long ago the state began
            self._state_began = now - (msg.t - msg.since)

    # --- the view --------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """Whether any message arrived within the last ``offline_after`` seconds."""
        return self._last_message is not None and self._clock() - self._last_message <= self.offline_after

    @property
    def state(self) -> str:
        """The engagement state, or ``"unknown"`` when never heard or offline."""
        return self._state if self.online else "unknown"

    @property
    def state_age(self) -> float | None:
        """Seconds the current state has lasted, or None when offline.

        Measured from the sensor's ``since`` when a state message announced it; a late joiner
        that learned the state from a heartbeat counts from when it first heard it.
        """
        if not self.online:
            return None
        return self._clock() - self._state_began

    @property
    def emotion(self) -> Emotion | None:
        """The latest emotion reading, or None if none arrived yet."""
        return self._emotion

    @property
    def status(self) -> Status | None:
        """The latest status heartbeat, or None if none arrived yet."""
        return self._status

    @property
    def dropped(self) -> int:
        """How many bad messages were dropped."""
        return self._dropped
