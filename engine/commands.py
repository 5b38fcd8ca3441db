"""The engine's subcommands: `listen`, `mock` and `relay`."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from moodloop.engine.errors import ConfigError
from moodloop.engine.mock import SCENARIO_NAMES
from moodloop.engine.protocol import DEFAULT_ENDPOINT, TOPICS, Emotion, Message, topic_named
from moodloop.engine.recording import record_line
from moodloop.engine.transport import RELAY_FRONTEND

if TYPE_CHECKING:
    from moodloop.engine.mock import MockSensor
    from moodloop.engine.subscriber import Subscriber

__all__ = ["register"]

_SILENCE_S = 0.5  # the live view redraws at least this often, to show a sensor going offline
_KEYS = {"e": "engaged", "b": "bored", "a": "absent", "u": "unknown"}

_LISTEN_EXAMPLES = f"""\
examples:
  moodloop listen                         # every message as a JSON line
  moodloop listen --view                  # one compact line that updates live
  moodloop listen --topic state --topic status --count 5
  moodloop listen --record session.jsonl  # replay later with `moodloop mock --replay`
  moodloop listen --bind --endpoint tcp://127.0.0.1:5557   # publishers --connect to us

Each JSON line is {{"topic": ..., "v": 1, ...fields}}; see docs/protocol.md.
Default endpoint: {DEFAULT_ENDPOINT}.
"""

_MOCK_EXAMPLES = f"""\
examples:
  moodloop mock                       # the `bored` scenario on {DEFAULT_ENDPOINT}
  moodloop mock engaged --rate 30
  moodloop mock --script my.json --duration 20
  moodloop mock --replay session.jsonl
  moodloop mock absent --connect --source-id alice   # through `moodloop relay`

scenarios:
  engaged   always engaged
  bored     engaged 4 s, bored 8 s, looping
  absent    engaged 3 s, absent 5 s, looping
  cycle     unknown 2 s, engaged 5 s, bored 8 s, absent 4 s, looping

script files (--script) are JSON:
  {{"loop": true, "segments": [{{"state": "engaged", "seconds": 5}},
                             {{"state": "bored", "seconds": 8, "label": "sad"}}]}}
  state: engaged|bored|absent|unknown; label (optional): the dominant emotion.
  A script with "loop": false ends after its last segment.

keys (in a terminal): e engaged, b bored, a absent, u unknown, r resume the script, q quit.
"""

_RELAY_EXAMPLES = f"""\
examples:
  moodloop relay                       # publishers -> {RELAY_FRONTEND}, games <- {DEFAULT_ENDPOINT}
  moodloop mock bored --connect --source-id alice
  moodloop mock engaged --connect --source-id bob
  moodloop listen                      # hears both; `source` tells them apart

Games subscribe to the backend exactly as they would to a single sensor.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `listen`, `mock` and `relay` subcommands."""
    listen = _add(subparsers, "listen", "print the event stream", _LISTEN_EXAMPLES, _listen)
    listen.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="address to subscribe to")
    listen.add_argument(
        "--topic",
        action="append",
        type=_topic,
        help="only this topic: emotion, state or status (repeatable; default all)",
    )
    listen.add_argument("--count", type=_positive(int), help="exit after N messages")
    listen.add_argument("--view", action="store_true", help="a compact live view instead of JSON lines")
    listen.add_argument("--record", metavar="FILE", help="also write the messages to FILE as JSON lines "
                        "(a new file or a pipe, never an existing file)")
    listen.add_argument("--bind", action="store_true", help="bind the endpoint; publishers connect to it")

    mock = _add(subparsers, "mock", "publish scripted events, no webcam needed", _MOCK_EXAMPLES, _mock)
    mock.add_argument("scenario", nargs="?", choices=SCENARIO_NAMES, help="built-in scenario (default bored)")
    mock.add_argument("--script", metavar="FILE", help="play a JSON script of timed states instead")
    mock.add_argument("--replay", metavar="FILE", help="republish a recording with its original timing")
    mock.add_argument(
        "--endpoint",
        help=f"address to bind (default {DEFAULT_ENDPOINT}), or with --connect the relay's "
        f"frontend (default {RELAY_FRONTEND})",
    )
    mock.add_argument("--connect", action="store_true", help="connect to a relay instead of binding")
    mock.add_argument("--source-id", default="mock", help="publisher id stamped as `source` (default mock)")
    mock.add_argument(
        "--rate", type=_positive(float), default=15.0, help="emotion messages per second (default 15)"
    )
    mock.add_argument("--duration", type=_positive(float), metavar="S", help="stop after S seconds")
    mock.add_argument("--record", metavar="FILE", help="also write what is published to FILE (a new file or a "
                      "pipe, never an existing file)")
    mock.add_argument("--seed", type=int, help="seed for reproducible noise")

    summary = "let several sensors and games meet at one address"
    relay = _add(subparsers, "relay", summary, _RELAY_EXAMPLES, _relay)
    relay.add_argument(
        "--frontend", default=RELAY_FRONTEND, help=f"address publishers connect to (default {RELAY_FRONTEND})"
    )
    relay.add_argument(
        "--backend",
        "--endpoint",
        default=DEFAULT_ENDPOINT,
        help=f"address games subscribe to (default {DEFAULT_ENDPOINT})",
    )


def _add(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    examples: str,
    run: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=_until_interrupted(run))
    return parser


def _until_interrupted(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Make Ctrl-C a normal way to stop: context managers clean up, the exit code is 0."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except KeyboardInterrupt:
            return 0

    return wrapper


def _topic(value: str) -> str:
    try:
        return topic_named(value)
    except ConfigError as exc:  # argparse reports only its own error types as usage errors
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = kind(value)
        if not number > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
        return number

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid int value" errors
    return parse


# --- listen ------------------------------------------------------------------------------


def _listen(args: argparse.Namespace) -> int:
    from moodloop.engine.recording import Recorder
    from moodloop.engine.subscriber import Subscriber

    show = _LiveView(sys.stdout) if args.view else _JsonLines(sys.stdout)
    with contextlib.ExitStack() as stack:
        sub = stack.enter_context(Subscriber(args.endpoint, topics=args.topic or TOPICS, bind=args.bind))
        recorder = stack.enter_context(Recorder(args.record)) if args.record else None
        print(f"listening on {sub.endpoint} (Ctrl-C to stop)", file=sys.stderr)
        received = 0
        while True:
            for msg in sub.messages(timeout=_SILENCE_S):
                if recorder is not None:
                    recorder.write(msg)
                show(sub, msg)
                received += 1
                if received == args.count:
                    return 0
            show(sub, None)


class _JsonLines:
    """Prints each message as one JSON line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, sub: Subscriber, msg: Message | None) -> None:
        if msg is not None:
            print(record_line(msg), file=self._out, flush=True)


class _LiveView:
    """Redraws one summary line in place (a line per second when not in a terminal)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._every = 0.1 if self._tty else 1.0
        self._drawn = -float("inf")

    def __call__(self, sub: Subscriber, msg: Message | None) -> None:
        now = time.monotonic()
        if now - self._drawn < self._every:
            return
        self._drawn = now
        line = self.summary(sub)
        if self._tty:
            self._out.write(f"\r\x1b[K{line}")
            self._out.flush()
        else:
            print(line, file=self._out, flush=True)

    @staticmethod
    def summary(sub: Subscriber) -> str:
        """One line: liveness, state and its age, the latest emotion, the sensor's status."""
        if not sub.online:
            return f"offline (no message for {sub.offline_after:g} s) | dropped {sub.dropped}"
        parts = [f"online | {sub.state:<7} {sub.state_age or 0.0:5.1f} s"]
        emotion: Emotion | None = sub.emotion
        if emotion is not None:
            bar = "#" * round(emotion.confidence * 10)
            parts.append(
                f"{emotion.label:<8} {emotion.confidence:.2f} {bar:<10} "
                f"v {emotion.valence:+.2f} a {emotion.arousal:+.2f}"
            )
        if sub.status is not None:
            parts.append(f"{sub.status.fps:4.1f} fps camera {sub.status.camera}")
        parts.append(f"dropped {sub.dropped}")
        return " | ".join(parts)


# --- mock --------------------------------------------------------------------------------


def _mock(args: argparse.Namespace) -> int:
    from moodloop.engine.mock import MockSensor, Scenario
    from moodloop.engine.publisher import Publisher
    from moodloop.engine.recording import open_recording, replay

    if sum(x is not None for x in (args.scenario, args.script, args.replay)) > 1:
        raise ConfigError("Give one of SCENARIO, --script FILE or --replay FILE, not several.")
    scenario = Scenario.from_file(args.script) if args.script else args.scenario or "bored"
    if args.replay:  # an unreadable recording fails before anything is announced or bound
        open_recording(Path(args.replay)).close()
    stop = threading.Event()
    with Publisher(args.endpoint, source=args.source_id, connect=args.connect, record=args.record) as pub:
        what = f"replay of {args.replay}" if args.replay else f"scenario {args.script or scenario}"
        print(f"mock: publishing the {what} on {pub.endpoint} as {args.source_id!r}", file=sys.stderr)
        with _stop_after(args.duration, stop):
            if args.replay:
                replay(args.replay, pub, stop=stop)
            else:
                sensor = MockSensor(scenario, pub, rate=args.rate, seed=args.seed)
                with _keyboard(sensor, stop):
                    sensor.run(stop=stop)
    return 0


@contextlib.contextmanager
def _stop_after(seconds: float | None, stop: threading.Event) -> Iterator[None]:
    timer = threading.Timer(seconds, stop.set) if seconds is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


@contextlib.contextmanager
def _keyboard(sensor: MockSensor, stop: threading.Event) -> Iterator[None]:
    """In an interactive terminal, single keys force states (see _MOCK_EXAMPLES)."""
    if not sys.stdin.isatty() or os.name == "nt":
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    print("keys: e engaged, b bored, a absent, u unknown, r resume script, q quit", file=sys.stderr)

    def read_keys() -> None:
        while not stop.is_set():
            if not select.select([fd], [], [], _SILENCE_S)[0]:
                continue
            key = os.read(fd, 1).decode(errors="ignore").lower()
            if key == "q":
                stop.set()
            elif key == "r" or key in _KEYS:
                sensor.force(_KEYS.get(key))

    tty.setcbreak(fd)
    reader = threading.Thread(target=read_keys, name="moodloop-mock-keys", daemon=True)
    reader.start()
    try:
        yield
    finally:
        stop.set()
        reader.join()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


# --- relay -------------------------------------------------------------------------------


def _relay(args: argparse.Namespace) -> int:
    from moodloop.engine.relay import Relay

    with Relay(args.frontend, args.backend) as relay:
        print(
            f"relay: publishers connect to {relay.frontend}, games subscribe to {relay.backend} "
            "(Ctrl-C to stop)",
            file=sys.stderr,
        )
        threading.Event().wait()
    return 0
