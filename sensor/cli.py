"""`moodloop sensor`: watch the player and publish emotion and engagement events.

Only argparse is imported at module level, so `moodloop --help` stays instant; OpenCV and
onnxruntime load when the command runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SENSOR_MODULE", "register", "run", "sensor_command"]

SENSOR_MODULE = "moodloop.sensor"  # what `sensor_command` runs with `python -m`; tests swap in a fake

_EXAMPLES = """\
examples:
  moodloop sensor                                  # webcam 0 with a preview window
  moodloop sensor --source 1 --headless            # second camera, status line on stderr
  moodloop sensor --headless --quiet               # no status line: only errors and the summary
  moodloop sensor --source session.mp4 --headless --fast --record out.jsonl
                                                   # analyse a video as fast as possible, keep the events
  moodloop sensor --connect --source-id alice      # one of several players, through `moodloop relay`
                                                   # (its frontend, tcp://127.0.0.1:5555)
  python -m moodloop.sensor --headless --quiet     # the same command, as a game's child process
                                                   # (what `moodloop play` runs)

A video plays at its own frame rate, like a camera: when analysis is slower, frames are
dropped (counted in the summary); --fast analyses every frame instead. Ctrl-C or SIGTERM stops
the sensor cleanly with a summary (exit 130 or 143; 0 when the source ran to its end); a second
one stops it at once.

Privacy: frames and face crops never leave the process or touch the disk, unless you pass
--save-frames DIR (debug). Events are published on localhost unless --endpoint says otherwise.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `sensor` subcommand."""
    parser = subparsers.add_parser(
        "sensor",
        help="watch the player (webcam, video or images) and publish emotion/engagement events",
        description="Detect the player's face, classify its expression with the ONNX model, estimate\n"
        "engagement (engaged/bored/absent) and publish protocol v1 events over ZeroMQ\n"
        "(by default on tcp://127.0.0.1:5556; `moodloop listen` prints them).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", default="0", metavar="CAMERA|VIDEO|DIR", help="camera index (or /dev/videoN), video file or image folder (default: 0)")
    parser.add_argument("--model", type=Path, metavar="FILE", help="ONNX emotion model (default: the shipped fer_resnet34.onnx)")
    parser.add_argument("--endpoint", metavar="ADDR",
                        help="ZeroMQ address (default: bind tcp://127.0.0.1:5556; with --connect: the relay's "
                        "frontend tcp://127.0.0.1:5555); a port of * picks a free one, printed at start")
    parser.add_argument("--connect", action="store_true", help="connect to a relay instead of binding")
    parser.add_argument("--source-id", default="sensor", metavar="NAME",
                        help="publisher id on every message, e.g. a player name (default: sensor)")
    parser.add_argument("--headless", action="store_true",
                        help="no window; one status line a second on stderr (automatic without a display)")
    parser.add_argument("--quiet", action="store_true",
                        help="no status line on stderr (errors, a port picked by *, and the final summary "
                        "still print)")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="also write every message to FILE (JSON lines; a new file or a pipe, never an "
                        "existing file)")
    parser.add_argument("--fast", action="store_true",
                        help="analyse a file source as fast as possible, every frame (without it a video plays "
                        "at its own frame rate, dropping frames when analysis is slower)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="file overriding tuning defaults: TOML if it ends in .toml, else JSON")
    parser.add_argument("--save-frames", type=Path, metavar="DIR",
                        help="debug: write every face crop, as the model sees it, to DIR: a new or empty folder (off by default)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sensor until the source ends, the window closes, Ctrl-C or SIGTERM; print a summary."""
    from moodloop.sensor.config import load_config
    from moodloop.sensor.pipeline import SensorOptions, run_sensor
    from moodloop.sensor.preview import PreviewWindow, StatusLine, View, has_display

    config = load_config(args.config)
    options = SensorOptions(
        source=args.source,
        endpoint=args.endpoint,
        connect=args.connect,
        source_id=args.source_id,
        record=args.record,
        fast=args.fast,
        save_crops=args.save_frames,
        **({"model": args.model} if args.model else {}),
    )
    view: View | None = None
    if not args.headless and has_display():
        view = PreviewWindow()
    elif not args.quiet:
        view = StatusLine()
    stop, caught = threading.Event(), []
    previous = _on_signals(stop, caught)
    try:
        # a port of * is picked by the system: say which (--quiet too), or nobody can subscribe
        announce = _announce if args.endpoint and args.endpoint.endswith(":*") else None
        summary, _ = run_sensor(options, config, stop, view, on_publishing=announce)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if view is not None:
            view.close()
    print(summary, file=sys.stderr)  # beside the status lines: stdout may be the --record stream
    # Stopped by a signal: 128 + its number, as shells report it (130 Ctrl-C, 143 SIGTERM), so a
    # parent tells a stop from a source that ran to its end (0).
    return 128 + caught[0] if caught else 0


def _announce(endpoint: str) -> None:
    """Print the address subscribers need when the user let the system pick the port."""
    print(f"moodloop sensor: publishing on {endpoint}", file=sys.stderr)


def _on_signals(stop: threading.Event, caught: list[int]) -> dict[int, object]:
    """Make the first SIGINT/SIGTERM set `stop` (clean shutdown, its number added to `caught`)
    and any later one act as usual.

    A sensor stuck at startup (a slow camera or model) only looks at `stop` once running, so a
    second Ctrl-C raises KeyboardInterrupt (exit 130) and a second SIGTERM terminates it.

    Returns:
        The handlers to restore.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}

    def request_stop(signum: int, _frame: object) -> None:
        caught.append(signum)
        stop.set()
        for signum, handler in defaults.items():
            signal.signal(signum, handler)

    return {signum: signal.signal(signum, request_stop) for signum in defaults}


def sensor_command(source: str = "0", endpoint: str | None = None, *, extra: Sequence[str] = ()) -> list[str]:
    """The argv that starts a headless sensor as a child process (what `moodloop play` launches).

    The sensor gets no preview window: the game owns the screen.

    Args:
        source: Camera index, video file or image folder.
        endpoint: ZeroMQ address the game subscribes to (default: the protocol default).
        extra: More `moodloop sensor` options, e.g. ["--source-id", "alice"].

    Returns:
        The command line, starting with this Python interpreter.
    """
    argv = [sys.executable, "-m", SENSOR_MODULE, "--source", source]
    argv += ["--endpoint", endpoint] if endpoint else []
    return argv + ["--headless", *extra]
