"""How `moodloop play` options and the remembered consent decide what feeds the game."""

import argparse
import json

import pytest

from moodloop.engine.errors import ConfigError, ModelError, SourceError
from moodloop.games import consent, play
from moodloop.games.feed import MOCK, OFF, SENSOR


@pytest.fixture(autouse=True)
def config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture(autouse=True)
def media(monkeypatch, tmp_path):
    """A video, an image folder and a model in the working folder, as a player would name them."""
    monkeypatch.chdir(tmp_path)
    for name in ("clip.mp4", "m.onnx"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "frames").mkdir()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    play.register(parser.add_subparsers())
    return parser.parse_args(["play", *argv])


def plan(*argv: str):
    return play.plan_feed(parse(*argv))


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
    with pytest.raises(ConfigError, match="Unknown mock scenario 'sleepy'.*bored"):
        plan("--mock", "sleepy")
    for typo in ("scripts/s.json", "s2.json"):  # a path, not a scenario name: the file is what is missing
        with pytest.raises(ConfigError, match=f"--mock {typo}: no such script file"):
            plan("--mock", typo)


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


@pytest.mark.parametrize("feed", [["--mock", "bored"], ["--no-sensor"], ["--endpoint", "tcp://127.0.0.1:5556"]])
def test_model_is_refused_with_a_feed_that_starts_no_sensor(feed):
    with pytest.raises(ConfigError, match=f"--model: not allowed with argument {feed[0]}"):
        plan(*feed, "--model", "m.onnx")


def test_missing_paths_stop_play_before_the_game_starts():
    with pytest.raises(SourceError, match="'gone.mp4' is not a camera index"):
        plan("--source", "gone.mp4")
    with pytest.raises(SourceError, match="--source is empty"):  # not the webcam that no --source means
        plan("--source", "")
    with pytest.raises(ModelError, match="--model gone.onnx: no such file"):
        plan("--source", "1", "--model", "gone.onnx")


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_frames_must_be_a_positive_whole_number(value, capsys):
    with pytest.raises(SystemExit):
        parse("--frames", value)
    assert f"must be a whole number of frames above 0, e.g. 600, not {value!r}" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "name", "why"), [("--stats", "notes.txt/s.json", "notes.txt is not a folder"),
                                                     ("--screenshot", "shots.png", "shots.png is a folder"),
                                                     ("--screenshot", "shot.jpg", "saved as PNG; give a name ending")])
def test_unwritable_outputs_are_refused_before_the_game_starts(option, name, why, tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    (tmp_path / "shots.png").mkdir()
    args = parse("--no-sensor", "--headless", "--frames", "1", option, name)
    with pytest.raises(ConfigError, match=f"{option} .*{why}"):
        play.run(args)


def test_help_lists_every_key_the_game_over_screen_shows(capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    keys = " ".join(capsys.readouterr().out.split())
    assert "Enter or R plays again after a game over, Q quits from the pause or game-over screen" in keys
