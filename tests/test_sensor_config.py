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
        ('{"smooth": {"half_life_s": 0}}', r"half_life_s in .*\[smooth\] must be a finite number > 0, not 0"),
        ('{"engagement": {"exit_window_s": -1.5}}', "exit_window_s .* must be a finite number > 0"),
        ('{"capture": {"image_fps": 0}}', "image_fps .* must be a finite number > 0 and <= 240"),
        ('{"detect": {"hold_s": -0.1}}', "hold_s .* must be a finite number >= 0"),
        ('{"detect": {"hold_s": true}}', "hold_s .* must be a finite number"),
        ('{"status_every_s": NaN}', "status_every_s .* must be a finite number > 0, not nan"),
        ('{"detect": {"hold_s": Infinity}}', "hold_s .* must be a finite number >= 0, not inf"),
        ('{"engagement": {"window_s": 1%s}}' % ("0" * 400), "window_s .* finite"),  # JSON ints are unbounded
        ('{"classify": {"threads": 1.5}}', r"threads .* must be a whole number >= 1 and <= 64, not 1.5"),
        ('{"classify": {"threads": 100000}}', "threads .* <= 64"),
        ('{"classify": {"threads": 0}}', "threads .* >= 1"),
        ('{"detect": {"full_every": 0.5}}', "full_every .* must be a whole number"),
        ('{"detect": {"detect_width": Infinity}}', "detect_width .* must be a whole number"),
        ('{"detect": {"detect_width": 1000000000000}}', "detect_width .* >= 64 and <= 4096"),
        ('{"detect": {"min_face": 2}}', "min_face .* <= 0.5"),
        ('{"engagement": {"absent_after_s": 0}}', "absent_after_s .* > 0"),  # a present player would be absent
        ('{"engagement": {"present_fraction": 5}}', "present_fraction .* >= 0 and <= 1"),
        ('{"detect": {"yunet": 5}}', r"yunet .* must be a string \(a file path\), not 5"),
        ("[1, 2]", "must hold an object"),
        ("{not json", "not valid JSON"),
        # TOML has inf and nan, and floats where whole numbers belong
        ("[detect]\ndetect_width = inf", "detect_width .* whole number .*, not inf"),
        ("[detect]\ndetect_width = 1e12", "detect_width .* whole number"),
        ("[capture]\nimage_fps = inf", "image_fps .* finite number"),
        ("[smooth]\nhalf_life_s = nan", "half_life_s .* finite number > 0, not nan"),
        ("[engagement]\nbored_enter = 0.6\nbored_exit = 0.9", r"bored_exit \(0.9\) .* above bored_enter \(0.6\)"),
    ],
)
def test_bad_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / ("bad.toml" if text.startswith("[") and "\n" in text else "bad.json")
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize("name", ["photo.toml", "photo.jpg"])
def test_a_binary_file_given_as_config_is_a_config_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a config")
    with pytest.raises(ConfigError, match="not valid"):
        load_config(path)


def test_the_limits_themselves_are_accepted(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text("[classify]\nthreads = 64\nmargin = 1\n[detect]\ndetect_width = 64\nmin_face = 0\n"
                    "[engagement]\npresent_fraction = 1.0\n")
    config = load_config(path)
    assert (config.classify.threads, config.detect.detect_width, config.engagement.present_fraction) == (64, 64, 1.0)


@pytest.mark.parametrize(("name", "tried"), [("s.cfg", "JSON"), ("s.toml", "TOML"), ("s.TOML", "TOML")])
def test_a_parse_error_names_the_format_tried_and_the_rule(tmp_path, name, tried):
    path = tmp_path / name
    path.write_text("[smooth]\nhalf_life_s = = 1\n")
    with pytest.raises(ConfigError, match=f"not valid {tried} .*ending in .toml are read as TOML, any other as JSON"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "none.toml")
