"""`python -m moodloop.sensor [options]` is `moodloop sensor [options]`, for child processes.

It builds only the sensor's own parser, so a game can launch the sensor without importing the
other components' commands.
"""

import argparse
import sys

from moodloop.engine.cli import run_command
from moodloop.sensor.cli import register


def main() -> int:
    """Parse `moodloop sensor` options from sys.argv and run the sensor."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    register(subparsers)
    parser = subparsers.choices["sensor"]
    parser.prog = "python -m moodloop.sensor"  # usage and errors name the command as it was typed
    return run_command(parser.parse_args())  # the same logging and error handling as `moodloop`


if __name__ == "__main__":
    sys.exit(main())
