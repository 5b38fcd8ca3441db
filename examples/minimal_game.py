"""A minimal custom game: poll the sensor once per frame and let the Director decide.

Run a sensor (or `moodloop mock bored`) and then `python examples/minimal_game.py`.
"""

from __future__ import annotations

import contextlib
import sys
import time

from moodloop.engine import DEFAULT_ENDPOINT, Director, Subscriber


def main(endpoint: str = DEFAULT_ENDPOINT, frames: int | None = None, fps: float = 30.0) -> int:
    """Run the game loop for ``frames`` frames (forever if None); return the waves spawned."""
    director, waves, frame = Director(), 0, 0
    with Subscriber(endpoint) as sensor:
        while frames is None or frame < frames:
            sensor.poll()  # drain the queue: never blocks
            decision = director.update(sensor.state)
            if decision.pause:
                pass  # the player walked away: freeze the world
            elif decision.intervene:
                waves += 1
                print(f"frame {frame}: the player looks bored, spawning wave {waves}")
            speed = 1.0 + decision.intensity  # ramp the difficulty while boredom lasts
            time.sleep(1.0 / fps)  # ... update and draw the world at `speed` here ...
            frame += 1
    return waves


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the example quietly
        main(*sys.argv[1:2])
