"""examples/minimal_game.py runs against the mock and reacts to boredom."""

from __future__ import annotations

import functools
import importlib.util
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine_support import ANY_PORT

from moodloop.engine import Director, MockSensor, Publisher, Scenario, Segment

EXAMPLE = Path(__file__).parent.parent / "examples" / "minimal_game.py"


def test_minimal_game_spawns_a_wave_when_the_mock_player_is_bored(monkeypatch):
    spec = importlib.util.spec_from_file_location("minimal_game", EXAMPLE)
    game = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(game)
    # Boredom confirmed after 0.2 s instead of 3 s keeps the test short.
    monkeypatch.setattr(game, "Director", functools.partial(Director, bored_after=0.2))
    with Publisher(ANY_PORT) as pub, ThreadPoolExecutor(1) as pool:
        waves = pool.submit(game.main, pub.endpoint, frames=200, fps=200)
        time.sleep(0.1)  # let the game subscribe before the first state change goes out
        MockSensor(Scenario((Segment("bored"),)), pub).run(duration=1.0)
        assert waves.result() == 1
