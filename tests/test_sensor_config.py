"""Sensor config files: TOML or JSON overrides, clear errors for typos."""

from __future__ import annotations

import pytest

from moodloop.engine.errors import ConfigError
from moodloop.sensor.config import SensorConfig, load_config


def test_defaults_without_a_file():
    assert load_config(None) == SensorConfig()


def test_toml_and_json_override_a_subset(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text("status_every_s = 2.0\n[engagement]\nwindow_s = 8\n[detect]\nyunet = 'yunet.onnx'\n")
    config = load_config(toml)
    assert config.engagement.window_s == 8 and config.status_every_s == 2.0
    assert config.detect.yunet == "yunet.onnx" and config.smooth == SensorConfig().smooth
    json_file = tmp_path / "s.json"
    json_file.write_text('{"smooth": {"half_life_s": 0.5}, "detect": {"hold_s": 0}}')  # 0: no hold
    config = load_config(json_file)
    assert config.smooth.half_life_s == 0.5 and config.detect.hold_s == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"engagment": {}}', "Unknown setting.*engagment"),
        ('{"engagement": {"window": 3}}', "Unknown setting.*window.*window_s"),
        ('{"engagement": 3}', "must be a table"),
        ('{"smooth": {"half_life_s": "fast"}}', "must be a finite number"),
        ('{"classify": {"threads": 1.5}}', "threads .* must be a whole number >= 1 and <= 64"),
        ('{"detect": {"detect_width": Infinity}}', "detect_width .* must be a whole number"),
        ('{"detect": {"min_face": 2}}', "min_face .* <= 0.5"),
        ('{"engagement": {"present_fraction": 5}}', "present_fraction .* <= 1"),
        ('{"detect": {"yunet": 5}}', "yunet .* must be a string"),
        ('{"smooth": {"half_life_s": 0}}', r"half_life_s in .*\[smooth\] must be a finite number > 0"),
        ('{"engagement": {"exit_window_s": -1.5}}', "exit_window_s .* must be a finite number > 0"),
        ('{"capture": {"image_fps": 0}}', "image_fps .* must be a finite number > 0"),
        ('{"detect": {"hold_s": -0.1}}', "hold_s .* must be a finite number >= 0"),
        ('{"status_every_s": NaN}', "status_every_s .* must be a finite number > 0"),
        ("[1, 2]", "must hold an object"),
        ("{not json", "not valid"),
    ],
)
def test_bad_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "none.toml")
