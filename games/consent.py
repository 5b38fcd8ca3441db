"""The first-run notice about webcam sensing, and the player's remembered answer.

The answer lives in ``consent.json`` in the config directory: ``$MOODLOOP_CONFIG_DIR`` if set,
else ``$XDG_CONFIG_HOME/moodloop``, else ``~/.config/moodloop``. Deleting the file asks again.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from moodloop.engine.errors import ConfigError

__all__ = ["TITLE", "notice", "config_dir", "consent_file", "load", "save"]

TITLE = "Before the camera turns on"


def notice() -> tuple[str, ...]:
    """The notice's lines, naming the file that remembers the answer."""
    return (
        "moodloop can watch your face through the webcam to tell whether you are engaged,",
        "bored or away, and the game reacts: a bored player gets a wave of rocks.",
        "",
        "What is sensed: your facial expression, as seven emotion scores, and whether a face is there.",
        "Every camera frame is analysed in memory on this computer. No image is stored or sent",
        "anywhere; only the scores travel, to the game, on this computer.",
        "",
        "To turn sensing off: press N now, or play with  moodloop play --no-sensor.",
        f"Your answer is kept in {consent_file()}; delete it to be asked again.",
    )


def config_dir() -> Path:
    """The directory of moodloop's user settings (not created here)."""
    if override := os.environ.get("MOODLOOP_CONFIG_DIR"):
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "moodloop"


def consent_file() -> Path:
    """The file that remembers the answer to the notice."""
    return config_dir() / "consent.json"


def load() -> bool | None:
    """The remembered answer: True (sensing on), False (off) or None (never asked)."""
    path = consent_file()
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))["sensing"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"Cannot read {path} ({exc}); delete it to be asked again.") from exc
    if not isinstance(answer, bool):
        raise ConfigError(f"{path} says sensing={answer!r}, expected true or false; delete it to be asked again.")
    return answer


def save(accepted: bool) -> Path:
    """Remember the answer and return the file it is in."""
    path = consent_file()
    record = {"sensing": accepted, "decided": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot save your answer to {path} ({exc}); set MOODLOOP_CONFIG_DIR to a writable folder."
        ) from exc
    return path
