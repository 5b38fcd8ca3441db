"""`moodloop play`: start the sensor (or the mock) and the game, connected on a free local port.

Only argparse-level code lives at module level; the game, pygame and ZeroMQ load in `run`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from moodloop.engine.errors import ConfigError, ModelError
from moodloop.engine.outputs import writable_file
from moodloop.sensor.cli import sensor_command  # argparse-level too: the one place that knows the sensor's argv
from moodloop.sensor.config import parse_source

if TYPE_CHECKING:
    from moodloop.games.feed import FeedPlan

__all__ = ["register", "run", "plan_feed"]

log = logging.getLogger(__name__)

NO_CAMERA_HINT = "No webcam? Try  moodloop play --mock bored  or  --source VIDEO."
SENSOR_ERROR_HINT = "Its own message in the terminal says why."  # the child shares the game's stderr

EXAMPLES = """\
examples:
  moodloop play                      # webcam 0: the game reacts to how you feel
  moodloop play --source 1           # another camera
  moodloop play --source clip.mp4    # a video of a face instead of the webcam
  moodloop play --mock bored         # no webcam: a scripted player who gets bored
  moodloop play --no-sensor          # just the game
  moodloop play --mock cycle --headless --bot --frames 1800 --stats s.json

keys: arrows/WASD move, Space fires, P or Esc pauses, H hides the HUD, Enter or R plays again
after a game over, Q quits from the pause or game-over screen.

The first time a camera would turn on, the game explains what is sensed and asks; the answer
is remembered in ~/.config/moodloop/consent.json ($XDG_CONFIG_HOME/moodloop/ where that is
set, or $MOODLOOP_CONFIG_DIR). Runs with --headless never ask: they use the camera only with
--accept-sensing or a remembered yes. A video, a folder, --mock, --no-sensor and --endpoint
start no camera, so they need no answer.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `play` subcommand."""
    parser = subparsers.add_parser(
        "play",
        help="play Star Drift, the demo game that reacts when you get bored",
        description="Play Star Drift: dodge and shoot rocks. The webcam sensor runs alongside:\n"
        "when you look bored, a wave of rocks comes and the pace rises; when you leave, the game waits.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    feed = parser.add_mutually_exclusive_group()
    feed.add_argument(
        "--source", metavar="CAMERA|VIDEO|DIR", help="sensor input: camera index, video file or image folder (default: 0)"
    )
    feed.add_argument(
        "--mock", metavar="SCENARIO", help="play against a scripted player: engaged, bored, absent, cycle or a JSON script"
    )
    feed.add_argument("--endpoint", metavar="URL", help="subscribe to a sensor already running, e.g. tcp://127.0.0.1:5556")
    feed.add_argument("--no-sensor", action="store_true", help="play without any sensing")
    parser.add_argument("--model", type=Path, metavar="FILE", help="the sensor's ONNX model (default: the shipped one)")
    parser.add_argument("--accept-sensing", action="store_true", help="agree to the webcam notice without seeing it (remembered)")
    parser.add_argument("--headless", action="store_true", help="no window (SDL dummy driver), for automation")
    parser.add_argument("--frames", type=_positive, metavar="N", help="quit after N frames")
    parser.add_argument("--bot", action="store_true", help="let the autopilot play")
    parser.add_argument("--seed", type=int, help="seed the rocks for a reproducible run")
    parser.add_argument("--stats", type=Path, metavar="FILE", help="write run statistics as JSON at exit")
    parser.add_argument("--screenshot", type=Path, metavar="FILE", help="save the last frame as PNG")
    parser.set_defaults(func=run)


def _positive(value: str) -> int:
    # Every bad value gets this message: on a ValueError argparse would name this function instead.
    if not value.strip().isdecimal() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of frames above 0, e.g. 600, not {value!r}")
    return int(value)


def run(args: argparse.Namespace) -> int:
    """Run `moodloop play`; returns the exit code."""
    from moodloop.games.app import GameConfig, play
    from moodloop.games.feed import Feed

    if args.screenshot is not None and args.screenshot.suffix.lower() != ".png":  # pygame goes by the name
        raise ConfigError(f"--screenshot {args.screenshot}: the frame is saved as PNG; give a name ending in .png.")
    for path, option in ((args.stats, "--stats"), (args.screenshot, "--screenshot")):
        if path is not None:
            writable_file(path, option)
    plan, ask = plan_feed(args)
    config = GameConfig(
        headless=args.headless, frames=args.frames, bot=args.bot, seed=args.seed, ask_consent=ask, screenshot=args.screenshot
    )
    try:
        with _exit_on_signals(), Feed(plan) as feed:
            stats = play(config, feed)
    except (KeyboardInterrupt, SystemExit) as stop:
        if args.stats is not None and hasattr(stop, "stats"):  # a run stopped by Ctrl-C has figures too
            _write_stats(args.stats, stop.stats)
        raise
    if args.stats is not None:
        _write_stats(args.stats, stats)
    log.info("%d frames, %.1f fps, worst frame %.1f ms", stats["frames"], stats["fps_mean"], stats["frame_ms_max"])
    return 0


def _write_stats(path: Path, stats: dict) -> None:
    """Write the run's statistics as JSON (--stats)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--stats {path}: cannot write it ({exc.strerror or exc}).") from exc


def plan_feed(args: argparse.Namespace) -> tuple[FeedPlan, bool]:
    """Decide what feeds the game, from the options and the remembered consent.

    A camera needs a yes: remembered, given with --accept-sensing, or asked for in the game
    window. Headless runs cannot ask, so without a yes they play without the camera.

    Returns:
        The feed plan, and whether the game must show the notice before starting it.

    Raises:
        ConfigError: An unknown mock scenario, --model with a feed that starts no sensor, or an
            unreadable consent file.
        SourceError: A --source that is empty, or a path that does not exist.
        ModelError: A --model file that does not exist.
    """
    from moodloop.engine.mock import SCENARIO_NAMES, Scenario
    from moodloop.games import consent
    from moodloop.games.feed import MOCK, OFF, SENSOR, FeedPlan, free_endpoint

    if args.model is not None:
        # Like the feed options' own clash, but --model does go with --source.
        clash = next((option for option, given in (("--mock", args.mock), ("--no-sensor", args.no_sensor),
                                                   ("--endpoint", args.endpoint)) if given), None)
        if clash:
            raise ConfigError(f"argument --model: not allowed with argument {clash}: --model is for the sensor "
                              f"that play starts, and with {clash} it starts none. Drop --model, or use --source.")
        if not args.model.is_file():
            raise ModelError(f"--model {args.model}: no such file; give an ONNX model (`moodloop export` writes "
                             "one), or leave --model out for the shipped one.")
    if args.no_sensor:
        return FeedPlan(kind=OFF), False
    if args.endpoint:
        return FeedPlan(kind=SENSOR, endpoint=args.endpoint), False
    if args.mock:
        if args.mock in SCENARIO_NAMES:
            scenario = args.mock
        elif Path(args.mock).is_file():
            scenario = Scenario.from_file(args.mock)
        elif Path(args.mock).suffix.lower() == ".json" or "/" in args.mock:  # meant as a script file
            raise ConfigError(f"--mock {args.mock}: no such script file; check the path, or use a scenario name "
                              f"({', '.join(SCENARIO_NAMES)}).")
        else:
            names = ", ".join(SCENARIO_NAMES)
            raise ConfigError(f"Unknown mock scenario {args.mock!r}; use one of {names} or a JSON script file.")
        return FeedPlan(kind=MOCK, endpoint=free_endpoint(), scenario=scenario), False
    source = "0" if args.source is None else args.source
    camera = isinstance(parse_source(source), int)  # a bad one fails now, not once the game runs
    endpoint = free_endpoint()
    extra = ["--quiet"]  # the game owns the terminal: no status line a second
    if args.model is not None:
        extra += ["--model", str(args.model)]
    argv = tuple(sensor_command(source, endpoint, extra=extra))
    hint = NO_CAMERA_HINT if camera else SENSOR_ERROR_HINT
    plan = FeedPlan(kind=SENSOR, endpoint=endpoint, argv=argv, camera=camera, hint=hint)
    if not camera:
        return plan, False
    if args.accept_sensing:
        consent.save(True)
    answer = consent.load()
    if answer is None and not args.headless:
        return plan, True
    if not answer:
        why = "you said no" if answer is False else "a headless run cannot ask"
        log.warning("Sensing is off (%s): playing without the camera. --accept-sensing turns it on.", why)
        return FeedPlan(kind=OFF), False
    return plan, False


@contextmanager
def _exit_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into a normal exit, so the sensor child is stopped, not orphaned."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
