"""Every tunable number of the sensor, in frozen dataclasses with documented defaults.

A config file (JSON or TOML) overrides any subset, by section:

    [engagement]
    window_s = 8.0
    [smooth]
    half_life_s = 0.5

Unknown sections or keys are a ConfigError, so a typo never silently does nothing; so is a
number out of range: every number must be >= 0, and sizes, rates and window lengths > 0.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodloop.engine.errors import ConfigError

__all__ = [
    "CaptureConfig",
    "DetectConfig",
    "ClassifyConfig",
    "SmoothConfig",
    "EngagementConfig",
    "SensorConfig",
    "load_config",
]

# Settings that 0 would break (division by zero, empty windows, a busy retry loop).
_POSITIVE = frozenset({
    "width", "height", "lost_after", "retry_s", "retry_max_s", "image_seconds", "image_fps",
    "detect_width", "half_life_s", "window_s", "exit_window_s", "status_every_s",
})


@dataclass(frozen=True)
class CaptureConfig:
    """Frame sources.

    Attributes:
        width: Requested camera width in pixels (the camera may pick another).
        height: Requested camera height in pixels.
        lost_after: Consecutive failed camera reads that mean the camera is lost.
        retry_s: First delay before reopening a lost camera; doubles up to `retry_max_s`.
        retry_max_s: Longest delay between reopen attempts.
        image_seconds: How long an image-folder slideshow shows each image.
        image_fps: Frame rate of the slideshow (each image repeats at this rate).
    """

    width: int = 640
    height: int = 480
    lost_after: int = 10
    retry_s: float = 0.5
    retry_max_s: float = 8.0
    image_seconds: float = 2.0
    image_fps: float = 10.0


@dataclass(frozen=True)
class DetectConfig:
    """Face detection and player selection.

    Attributes:
        detect_width: Frames are downscaled to this width before detection (cost ~ pixels).
        full_every: Run a full-frame detection every N frames; in between, search only a
            region around the player's last face (much cheaper).
        track_margin: The tracking region is the last face grown by this fraction per side.
        min_face: Smallest face to find, as a fraction of the frame width (a player sits close).
        hold_s: A detection gap shorter than this keeps the last face (no flicker).
        switch_iou: A detected face overlapping the player's last face by at least this IoU
            is the same player.
        yunet: Path to a YuNet ONNX file to use cv2.FaceDetectorYN instead of the Haar cascade.
        score_threshold: Minimum YuNet score.
    """

    detect_width: int = 320
    full_every: int = 15
    track_margin: float = 0.4
    min_face: float = 0.15
    hold_s: float = 0.5
    switch_iou: float = 0.3
    yunet: str | None = None
    score_threshold: float = 0.7


@dataclass(frozen=True)
class ClassifyConfig:
    """Emotion classification.

    Attributes:
        margin: The square crop around the face box grows by this fraction of the box side
            on every side. 0: a Haar box already matches FER2013's framing (the face fills
            the frame); bench/sensor_crop.py measured 59.0 % at 0 against 51.5 % at 0.1.
        threads: onnxruntime intra-op threads; 1 leaves the other core to the game.
    """

    margin: float = 0.0
    threads: int = 1


@dataclass(frozen=True)
class SmoothConfig:
    """Smoothing of class probabilities over time.

    Attributes:
        half_life_s: Exponential moving average half-life in seconds of source time, so the
            smoothing is the same at any frame rate.
        hysteresis: A new dominant label must beat the current one by this probability margin.
    """

    half_life_s: float = 0.3
    hysteresis: float = 0.1


@dataclass(frozen=True)
class EngagementConfig:
    """Engagement state rules (docs/engagement.md explains each one).

    Attributes:
        window_s: Rolling window for boredom, the 10 s clip length DAiSEE labels.
        exit_window_s: Short window that decides leaving `bored` (a reaction ends it fast).
        calibration_s: Seconds of visible face that form the player's resting baseline.
        absent_after_s: No face for this long means `absent`.
        present_fraction: `bored` needs the face visible in at least this share of the window.
        expressivity_margin: A frame is "quiet" when its expressivity (1 - P(neutral)) is at
            most the player's baseline plus this margin...
        arousal_margin: ...and its arousal at most the baseline plus this margin.
        baseline_cap: Upper bound of the baseline expressivity and arousal, so a player who
            smiled through calibration still reads as reacting when smiling later.
        bored_enter: Share of quiet frames in the window needed to become `bored`.
        bored_exit: `bored` ends when the share of quiet frames in the exit window drops below
            this (hysteresis: lower than `bored_enter`).
        bored_sustain_s: The `bored` condition must hold this long before the state changes.
        engaged_sustain_s: The `engaged` condition must hold this long before the state changes.
    """

    window_s: float = 10.0
    exit_window_s: float = 1.5
    calibration_s: float = 3.0
    absent_after_s: float = 2.0
    present_fraction: float = 0.8
    expressivity_margin: float = 0.15
    arousal_margin: float = 0.1
    baseline_cap: float = 0.4
    bored_enter: float = 0.85
    bored_exit: float = 0.5
    bored_sustain_s: float = 2.0
    engaged_sustain_s: float = 0.25


@dataclass(frozen=True)
class SensorConfig:
    """All sensor settings, one section per pipeline stage.

    Attributes:
        status_every_s: Heartbeat period of `moodloop.status` messages (wall-clock seconds).
    """

    capture: CaptureConfig = field(default_factory=CaptureConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    engagement: EngagementConfig = field(default_factory=EngagementConfig)
    status_every_s: float = 1.0


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `cls` from `values`, recursing into nested sections."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) {', '.join(unknown)} in {where}; "
            f"known: {', '.join(fields)}. Check the spelling against docs/sensor.md."
        )
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"[{name}] in {where} must be a table/object of settings.")
            value = _build(type(default), value, f"{where} [{name}]")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} in {where} must be a number, not {value!r}.")
            positive = name in _POSITIVE
            if not (value > 0 if positive else value >= 0):  # written so that NaN fails too
                bound = "> 0" if positive else ">= 0"
                raise ConfigError(f"{name} in {where} must be {bound}, not {value!r}: "
                                  f"set it {bound} or remove it to use the default ({default}).")
        kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path | None = None) -> SensorConfig:
    """Load a SensorConfig from a `.toml` or `.json` file; defaults when `path` is None.

    Raises:
        ConfigError: The file is missing, unparsable, names an unknown setting or sets a number
            out of its range.
    """
    if path is None:
        return SensorConfig()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}. Check the --config path.") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Config file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold an object of sections, e.g. {{\"smooth\": {{...}}}}.")
    return _build(SensorConfig, values, str(path))
