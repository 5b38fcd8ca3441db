"""What feeds the game its emotions: the sensor as a supervised child, or the mock in a thread.

A `Child` lives in its own session (process group), so a Ctrl-C meant for the game is handled
by the game, which then stops the whole group: terminate, wait, kill. If the game is killed
outright (SIGKILL, a crash), Linux sends the child SIGTERM for it. No orphans.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from moodloop.engine.lifecycle import Closeable
from moodloop.engine.mock import MockSensor, Scenario
from moodloop.engine.publisher import Publisher

__all__ = ["free_endpoint", "Child", "FeedPlan", "Feed"]

log = logging.getLogger(__name__)

SENSOR, MOCK, OFF = "sensor", "mock", "off"


def free_endpoint(host: str = "127.0.0.1") -> str:
    """A TCP endpoint on a port that is free right now, for the child to bind."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return f"tcp://{host}:{probe.getsockname()[1]}"


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _parent_death_hook() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when this process dies; None elsewhere.

    A game killed with SIGKILL cannot stop its child, and the child's own session shields it
    from the terminal's signals, so the kernel has to tell it. The request follows the thread
    that starts the child: start children from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now: the hook runs between fork and exec
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the game died before the request was made
            os._exit(1)

    return hook


class Child(Closeable):
    """A child process started now and stopped on `close` (or leaving a `with` block).

    Args:
        argv: The command line.
        grace_s: Seconds the child gets to exit after SIGTERM before SIGKILL.
    """

    def __init__(self, argv: Sequence[str], *, grace_s: float = 3.0) -> None:
        self.argv = tuple(argv)
        self._grace_s = grace_s
        self._proc = subprocess.Popen(self.argv, start_new_session=True, preexec_fn=_parent_death_hook())

    @property
    def pid(self) -> int:
        """The child's process id, also its process group id."""
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited, else None (never blocks)."""
        return self._proc.poll()

    def close(self) -> None:
        """Stop the child and its process group: SIGTERM, wait `grace_s`, then SIGKILL."""
        if self._proc.poll() is not None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(self._grace_s)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored SIGTERM for %.0f s; killing it", self.argv[0], self._grace_s)
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()


class _MockThread(Closeable):
    """The engine's scripted MockSensor, publishing a scenario at `endpoint` from a thread.

    Args:
        scenario: A Scenario or the name of a built-in one.
        endpoint: Where to bind the publisher.

    Raises:
        ConfigError: Unknown scenario, or the endpoint cannot be bound.
    """

    def __init__(self, scenario: Scenario | str, endpoint: str) -> None:
        self._publisher = Publisher(endpoint, source="mock")
        self._stop = threading.Event()
        try:
            mock = MockSensor(scenario, self._publisher)
        except Exception:
            self._publisher.close()  # e.g. an unknown scenario: the port must not stay bound
            raise
        self._crashed = False
        self._thread = threading.Thread(target=self._run, args=(mock,), name="moodloop-mock", daemon=True)
        self._thread.start()

    def _run(self, mock: MockSensor) -> None:
        try:
            mock.run(stop=self._stop)
        except BaseException:
            self._crashed = True  # the traceback still goes to stderr, as a child's would
            raise

    @property
    def returncode(self) -> int | None:
        """0 once the scenario has ended, 1 if it crashed, else None (as for a `Child`)."""
        return None if self._thread.is_alive() else int(self._crashed)

    def close(self) -> None:
        """Stop publishing and release the socket."""
        self._stop.set()
        self._thread.join()
        self._publisher.close()


@dataclass(frozen=True, kw_only=True)
class FeedPlan:
    """How the game gets its emotions.

    With neither `argv` nor `scenario`, the game subscribes to whatever already publishes at
    `endpoint` (`moodloop play --endpoint`).

    Attributes:
        kind: "sensor", "mock" or "off" (no feed: the game plays plain).
        endpoint: Where the game subscribes; None when off.
        argv: The sensor child to start.
        scenario: The mock scenario to play instead (a name or a Scenario).
        camera: The child opens a camera, so the first-run notice applies.
        hint: What to tell the player if the child stops.
    """

    kind: str
    endpoint: str | None = None
    argv: tuple[str, ...] = ()
    scenario: Scenario | str | None = None
    camera: bool = False
    hint: str = ""


class Feed(Closeable):
    """Starts the plan's child when told to, notices if it stops, and stops it on `close`.

    Args:
        plan: What to start (nothing until `start`, so the first-run notice comes first).
    """

    def __init__(self, plan: FeedPlan) -> None:
        self.plan = plan
        self.kind = plan.kind
        self.failure: str | None = None
        self.started = False  # start() was called (the player may never answer the notice)
        self.stopped = False  # the child has exited: `failure` says why, unless it ran to its end
        self._child: Child | _MockThread | None = None

    @property
    def camera_on(self) -> bool:
        """Whether a child that opens a camera is running."""
        return self.plan.camera and self._child is not None and not self.stopped

    @property
    def external(self) -> bool:
        """Whether the feed is a sensor this game did not start (``--endpoint``): its camera is not ours to know."""
        return self.kind == SENSOR and not self.plan.argv

    @property
    def finished(self) -> bool:
        """Whether the child ran its video or script to the end (no failure)."""
        return self.stopped and self.failure is None

    @property
    def note(self) -> str | None:
        """What the player should know of the feed: why it failed, or that it ended."""
        if self.finished:
            return f"The {self.kind} finished: its {'script' if self.kind == MOCK else 'video or images'} ran to the end."
        return self.failure

    def start(self) -> None:
        """Start the sensor child or the mock, if the plan has one."""
        plan = self.plan
        self.started = True
        if self._child is not None or plan.endpoint is None:
            return
        if plan.scenario is not None:
            self._child = _MockThread(plan.scenario, plan.endpoint)
        elif plan.argv:
            log.info("starting the sensor: %s", " ".join(plan.argv))
            self._child = Child(plan.argv)

    def decline(self) -> None:
        """The player said no to sensing: play plain."""
        self.kind = OFF

    def check(self) -> str | None:
        """Return why the child failed, the first time it is seen stopped; else None.

        Exit code 0 from a file source or a mock is no failure: its video or script ran to its end.
        """
        if self._child is None or self.stopped or self._child.returncode is None:
            return None
        self.stopped = True
        code = self._child.returncode
        if code == 0 and not self.plan.camera:  # a camera never ends by itself: exit 0 there means it was stopped
            log.info("%s The game goes on without it.", self.note)
            return None
        signum = -code if code < 0 else code - 128 if code > 128 else 0  # killed, or stopped and exited 128+N
        if signum:  # from outside: it had no chance to say why, so the hint would mislead
            self.failure = f"The {self.kind} was stopped from outside (signal {signum})."
        else:
            self.failure = f"The {self.kind} stopped (exit code {code}). {self.plan.hint}".strip()
        log.warning("%s The game goes on without it.", self.failure)
        return self.failure

    def close(self) -> None:
        """Stop the child, if one was started."""
        if self._child is not None:
            self._child.close()
