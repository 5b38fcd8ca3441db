"""`python -m moodloop.sensor [options]` is `moodloop sensor [options]`, for child processes.

It builds only the sensor's own parser, so a game can launch the sensor without importing the
other components' commands.
"""

import argparse
import logging
import sys

from moodloop.engine.errors import MoodloopError
from moodloop.sensor.cli import register


def main() -> int:
    """Parse `moodloop sensor` options from sys.argv and run the sensor."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    register(subparsers)
    parser = subparsers.choices["sensor"]
    parser.prog = "python -m moodloop.sensor"  # usage and errors name the command as it was typed
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except MoodloopError as exc:
        print(f"moodloop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the sensor's own Ctrl-C handling is in place
        return 130


if __name__ == "__main__":
    sys.exit(main())
