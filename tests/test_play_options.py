"""How `moodloop play` options and the remembered consent decide what feeds the game."""

import argparse
import json

import pytest

from moodloop.engine.errors import ConfigError
from moodloop.games import consent, play
from moodloop.games.feed import MOCK, OFF, SENSOR


@pytest.fixture(autouse=True)
def config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path / "config"))


def plan(*argv: str):
    parser = argparse.ArgumentParser()
    play.register(parser.add_subparsers())
    return play.plan_feed(parser.parse_args(["play", *argv]))


def test_webcam_asks_first_in_a_window_and_never_in_headless_runs():
    feed, ask = plan()
    assert (feed.kind, feed.camera, ask) == (SENSOR, True, True)
    assert feed.argv[feed.argv.index("--source") + 1] == "0"
    feed, ask = plan("--headless")
    assert (feed.kind, ask) == (OFF, False)
    assert consent.load() is None  # not asked is not an answer


def test_accept_sensing_is_remembered():
    feed, ask = plan("--headless", "--accept-sensing")
    assert (feed.kind, ask) == (SENSOR, False)
    feed, ask = plan()
    assert (feed.kind, ask) == (SENSOR, False)


def test_a_no_is_respected():
    consent.save(False)
    feed, ask = plan("--source", "1")
    assert (feed.kind, ask) == (OFF, False)


@pytest.mark.parametrize("source", ["clip.mp4", "frames/"])
def test_videos_and_folders_need_no_consent(source):
    feed, ask = plan("--source", source, "--headless")
    assert (feed.kind, feed.camera, ask) == (SENSOR, False, False)


def test_mock_by_name_or_script(tmp_path):
    feed, ask = plan("--mock", "bored")
    assert (feed.kind, feed.scenario, feed.argv, ask) == (MOCK, "bored", (), False)
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"segments": [{"state": "bored", "seconds": 2}]}))
    assert plan("--mock", str(script))[0].scenario.segments[0].state == "bored"
    with pytest.raises(ConfigError, match="bored"):
        plan("--mock", "sleepy")


def test_no_sensor_and_endpoint():
    assert plan("--no-sensor")[0].kind == OFF
    feed, _ = plan("--endpoint", "tcp://127.0.0.1:5556")
    assert (feed.kind, feed.endpoint, feed.argv) == (SENSOR, "tcp://127.0.0.1:5556", ())


def test_feed_options_exclude_each_other():
    with pytest.raises(SystemExit):
        plan("--mock", "bored", "--source", "0")


def test_model_passes_through_to_the_sensor_and_defaults_to_the_shipped_one():
    assert "--model" not in plan("--source", "clip.mp4")[0].argv
    feed, _ = plan("--source", "clip.mp4", "--model", "m.onnx")
    assert feed.argv[-2:] == ("--model", "m.onnx")
