"""The first-run sensing notice: where the answer is kept and how it is read back."""

from pathlib import Path

import pytest

from moodloop.engine.errors import ConfigError
from moodloop.games import consent


def test_config_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("MOODLOOP_CONFIG_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert consent.config_dir() == Path.home() / ".config" / "moodloop"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert consent.config_dir() == tmp_path / "xdg" / "moodloop"
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path / "mine"))
    assert consent.config_dir() == tmp_path / "mine"


def test_answer_is_remembered(monkeypatch, tmp_path):
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path / "cfg"))
    assert consent.load() is None
    assert consent.save(False) == tmp_path / "cfg" / "consent.json"
    assert consent.load() is False
    consent.save(True)
    assert consent.load() is True


@pytest.mark.parametrize("text", ["not json", '{"other": 1}', '{"sensing": "yes"}'])
def test_a_damaged_file_says_how_to_fix_it(monkeypatch, tmp_path, text):
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path))
    (tmp_path / "consent.json").write_text(text)
    with pytest.raises(ConfigError, match="delete it"):
        consent.load()


def test_notice_says_what_is_sensed_that_nothing_leaves_and_how_to_turn_it_off(monkeypatch, tmp_path):
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path))
    text = " ".join(consent.notice())
    assert "facial expression" in text
    assert "No image is stored or sent" in text
    assert "--no-sensor" in text and str(tmp_path / "consent.json") in text
