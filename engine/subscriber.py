"""The receiving end a game uses: poll once per frame, read the view, never block or raise."""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence

import zmq

from moodloop.engine.errors import ConfigError, ProtocolError
from moodloop.engine.protocol import (
    DEFAULT_ENDPOINT,
    STATUS,
    TOPICS,
    Emotion,
    Message,
    State,
    Status,
    decode,
    topic_named,
)
from moodloop.engine.transport import RECEIVE_OPTIONS, SocketOwner, open_socket

__all__ = ["Subscriber"]

log = logging.getLogger(__name__)

# One warning per kind of problem per this many seconds at most, so bad messages cannot flood the log.
_WARN_EVERY_S = 5.0
# A source whose sequence numbers go back twice within this many seconds is two publishers.
_SAME_SOURCE_S = 10.0
_ASYNC_POLL_S = 0.01
# A publisher flooding faster than poll() decodes would otherwise keep it draining forever;
# this is far more than ever sits queued (RECEIVE_OPTIONS) at a sane rate.
_MAX_PER_POLL = 1000


class Subscriber(SocketOwner):
    """Subscribes to the sensor's events and keeps a view of the newest state.

    A game calls :meth:`poll` once per frame and reads the view properties; other programs
    iterate :meth:`messages` or ``async for msg in sub.amessages()``. Bad messages are dropped,
    counted in :attr:`dropped` and logged, never raised. Not thread-safe.

    Through ``moodloop relay`` several players' sensors share one address: give ``source`` to
    follow one player, e.g. ``Subscriber(source="alice")``; without it the view mixes them.

    Args:
        endpoint: ZeroMQ address of the sensor, mock or relay.
        topics: Topic or topics that :meth:`poll` and :meth:`messages` return, of TOPICS, in
            full or short (``"state"``). The status heartbeat is received in any case: it
            keeps :attr:`online` and :attr:`state` current.
        offline_after: Seconds without any message after which the sensor counts as offline
            (the sensor sends a status heartbeat every second).
        clock: Monotonic clock in seconds; inject a fake one in tests.
        bind: Bind instead of connecting (publishers then connect to us).
        source: Keep only the messages of the publisher with this ``source`` (a player's
            sensor); others are ignored, neither returned nor counted as dropped.

    Raises:
        ConfigError: Unknown topic, ``offline_after`` not a positive number of seconds, or
            the endpoint cannot be used.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        topics: str | Iterable[str] = TOPICS,
        offline_after: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        bind: bool = False,
        source: str | None = None,
    ) -> None:
        if not isinstance(topics, (str, Iterable)):
            raise ConfigError(f"topics must be a topic name or a list of them, of {', '.join(TOPICS)}; "
                              f"not {topics!r}.")
        wanted = {topic_named(name) for name in ([topics] if isinstance(topics, str) else topics)}
        if not wanted:
            raise ConfigError(f"topics is empty: name one or more of {', '.join(TOPICS)} (default: all).")
        if not (isinstance(offline_after, numbers.Real) and not isinstance(offline_after, bool)
                and math.isfinite(offline_after) and offline_after > 0):
            raise ConfigError(
                f"offline_after must be a positive number of seconds such as 3.0, not {offline_after!r}."
            )
        self.offline_after = offline_after
        self.source = source
        self._clock = clock
        self._socket = open_socket(zmq.SUB, endpoint, bind=bind, role="subscriber", options=RECEIVE_OPTIONS)
        # The status heartbeat is always received: without it a sensor whose player sits still
        # (no state change) would look offline. poll() returns only the wanted topics.
        for topic in wanted | {STATUS}:
            self._socket.subscribe(topic.encode("ascii"))
        self._wanted = wanted
        self._dropped = 0
        self._last_warning: dict[object, float] = {}  # per kind of problem: a version mismatch is never hidden
        self._last_message: float | None = None  # local clock
        self._last_t: float | None = None  # the sender's clock
        self._seq: dict[str, int] = {}  # per source: the last sequence number heard
        self._seq_back: dict[str, float] = {}  # per source: when its sequence last went back
        self._emotion: Emotion | None = None
        self._status: Status | None = None
        self._state = "unknown"
        self._confidence: float | None = None
        # Local-clock time the current state began (by the sensor's `since` when known).
        self._state_began = 0.0

    # --- receiving -------------------------------------------------------------------------

    def poll(self) -> list[Message]:
        """Drain every queued message without blocking and update the view.

        A publisher flooding faster than this drains cannot stall the caller: one call takes
        at most a thousand messages and leaves the rest to the next.

        Returns:
            The valid messages that arrived since the last call, oldest first.

        Raises:
            MoodloopError: The subscriber is closed.
        """
        self._check_open()
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

        Ends when the subscriber is closed, e.g. from inside the loop.

        Args:
            timeout: Stop after this many seconds without a message of ``topics`` (heartbeats
                not asked for do not count); None waits forever.

        Raises:
            MoodloopError: The subscriber is closed.
        """
        self._check_open()
        while received := self._next_messages(timeout):
            yield from received

    def _next_messages(self, timeout: float | None) -> list[Message]:
        """Wait for :meth:`poll` to return messages; [] after ``timeout`` seconds without."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._socket.closed:
            wait_ms = None if deadline is None else max(0, round((deadline - time.monotonic()) * 1000))
            if not self._socket.poll(wait_ms):
                return []
            # Bad messages, other players' and heartbeats not asked for wake the socket too, unheard.
            if (received := self.poll()) or wait_ms == 0:
                return received
        return []

    async def amessages(self, timeout: float | None = None) -> AsyncIterator[Message]:
        """Asynchronously yield messages as they arrive, without blocking the event loop.

        Ends when the subscriber is closed, e.g. from inside the loop.

        Args:
            timeout: Stop after this many seconds without a message of ``topics``; None waits forever.

        Raises:
            MoodloopError: The subscriber is closed.
        """
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while not self._socket.closed and (timeout is None or loop.time() - heard < timeout):
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
            self._warn(type(exc), now, "dropped a bad message (%d so far): %s", self._dropped, exc)
            return None
        if self.source is not None and msg.source != self.source:
            return None
        self._check_sequence(msg, now)
        # First contact, back after an outage, or a new sensor process: forget the old state.
        # Silence the sender's clock does not show is the caller's (a loading screen that did
        # not poll): its messages waited in the queue.
        outage = not self.online and (self._last_t is None or msg.t - self._last_t > self.offline_after)
        if outage or self._restarted(msg):
            self._state, self._state_began, self._confidence = "unknown", now, None
        self._last_message, self._last_t = now, msg.t
        if isinstance(msg, Emotion):
            self._emotion = msg
        else:
            if isinstance(msg, Status):
                self._status = msg
            self._set_state(msg, now)
        if isinstance(msg, Status) and msg.camera == "none":  # the sensor's last word: it stopped
            self._last_message = self._last_t = None  # offline now; whatever comes next is first contact
        return msg if msg.TOPIC in self._wanted else None

    def _warn(self, kind: object, now: float, message: str, *args: object) -> None:
        if now - self._last_warning.get(kind, -math.inf) >= _WARN_EVERY_S:
            self._last_warning[kind] = now
            log.warning(message, *args)

    def _check_sequence(self, msg: Message, now: float) -> None:
        """Warn when two publishers share a source name, since their states then mix.

        Each publisher numbers its messages from 0: a restart sends a source's sequence back
        once, two publishers send it back and forth.
        """
        last = self._seq.get(msg.source)
        self._seq[msg.source] = msg.seq
        if last is None or msg.seq > last:
            return
        if now - self._seq_back.get(msg.source, -math.inf) < _SAME_SOURCE_S:
            self._warn(("same source", msg.source), now,
                       "two sensors publish as source %r and their states mix: give each its own "
                       "--source-id (and follow one with Subscriber(source=...)).", msg.source)
        self._seq_back[msg.source] = now

    def _restarted(self, msg: Message) -> bool:
        """Whether ``msg`` is the heartbeat of a new process of the last heartbeat's sender.

        A sensor restarted faster than ``offline_after`` never looks offline, but its uptime
        starts again from zero.
        """
        last = self._status
        return (
            isinstance(msg, Status)
            and last is not None
            and msg.source == last.source
            and msg.uptime_s < last.uptime_s
        )

    def _set_state(self, msg: State | Status, now: float) -> None:
        if msg.state != self._state:
            self._state, self._state_began = msg.state, now
        if msg.since is not None:  # the sensor says how long ago the state began
            self._state_began = now - (msg.t - msg.since)
        if msg.confidence is not None:
            self._confidence = msg.confidence

    # --- the view --------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """Whether any message arrived within the last ``offline_after`` seconds, and the last
        heartbeat was not the sensor's final one (camera ``none``)."""
        return self._last_message is not None and self._clock() - self._last_message <= self.offline_after

    @property
    def state(self) -> str:
        """The engagement state, or ``"unknown"`` when never heard or offline."""
        return self._state if self.online else "unknown"

    @property
    def state_age(self) -> float | None:
        """Seconds the current state has lasted, or None when offline.

        Measured from the sensor's ``since`` (in every state message and heartbeat); from a
        sensor too old to send it in heartbeats, a late joiner counts from when it first heard
        the state.
        """
        if not self.online:
            return None
        return self._clock() - self._state_began

    @property
    def state_confidence(self) -> float | None:
        """How sure the sensor is of :attr:`state`, in [0, 1]; None when offline or not yet told.

        Updated by every state message and heartbeat; a game that acts on ``bored`` may wait
        for, say, 0.7.
        """
        return self._confidence if self.online else None

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
