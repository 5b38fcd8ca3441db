"""The `moodloop` console command: one entry point, one subcommand per job.

Each component registers its own subcommands, so this module stays a thin dispatcher.
Registration modules import only argparse-level code; heavy imports (torch, cv2, pygame)
happen inside the command functions, so `moodloop --help` is instant and the training
extra is needed only by the training commands.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from moodloop.engine.errors import MoodloopError

__all__ = ["main", "build_parser", "run_command"]

# Modules exposing `register(subparsers)`; each adds its subcommands with
# `set_defaults(func=run)` where `run(args) -> int` is the exit code.
_COMMAND_MODULES = (
    "moodloop.games.play",
    "moodloop.sensor.cli",
    "moodloop.engine.commands",
    "moodloop.training.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="moodloop",
        description="Games that react to how the player feels. A sensor watches the webcam and "
        "publishes emotion and engagement events over ZeroMQ; games subscribe.",
        epilog="Run `moodloop COMMAND --help` for the options and examples of each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `moodloop` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Set up logging and run a parsed subcommand the way every moodloop entry point does.

    Args:
        args: Parsed options holding ``func`` (the subcommand's ``run``) and optionally
            ``verbose``.

    Returns:
        The command's exit code; 2 after printing a MoodloopError, or a full disk, as
        ``moodloop: error: ...``; 130 on a Ctrl-C the command did not handle itself; 0 when the
        program reading the output stopped reading.
    """
    # Libraries (onnxscript, fastai's helpers) only get to say warnings; moodloop says what it does.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("moodloop").setLevel(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except MoodloopError as exc:
        print(f"moodloop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped (`moodloop listen | head`): it has what it wanted
        # Python flushes stdout again at exit; point it at /dev/null so that cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise  # anything else is unexpected: keep its traceback
        where = f" to {exc.filename}" if exc.filename else ""
        print(f"moodloop: error: a write{where} failed: {exc.strerror}. Free some space or write elsewhere, "
              "then run the command again.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
