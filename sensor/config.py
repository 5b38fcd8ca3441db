"""Every tunable number of the sensor, in frozen dataclasses with documented defaults.

A config file (JSON or TOML) overrides any subset, by section:

    [engagement]
    window_s = 8.0
    [smooth]
    half_life_s = 0.5

Unknown sections or keys are a ConfigError, so a typo never silently does nothing; so is a
value of the wrong type (a fraction where a whole number belongs, a number for a path) or a
number out of range: every number must be finite and >= 0, sizes, rates and window lengths
> 0, shares and probabilities at most 1, and pixel sizes and thread counts plausible.

``parse_source`` reads what a ``--source`` names, for the sensor and for ``moodloop play``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodloop.engine.errors import ConfigError, SourceError

__all__ = [
    "CaptureConfig",
    "DetectConfig",
    "ClassifyConfig",
    "SmoothConfig",
    "EngagementConfig",
    "SensorConfig",
    "load_config",
    "parse_source",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Range:
    """The finite numbers a setting accepts: `low` <= value (< with `above`) <= `high`."""

    low: float = 0.0
    high: float = math.inf
    above: bool = False

    def __contains__(self, value: float) -> bool:
        # NaN fails every comparison; the last one rejects inf and JSON integers too big for a float
        low_ok = value > self.low if self.above else value >= self.low
        return low_ok and value <= self.high and value <= sys.float_info.max

    def __str__(self) -> str:
        low = f"{'>' if self.above else '>='} {self.low:g}"
        return low if self.high == math.inf else f"{low} and <= {self.high:g}"


# Settings that 0 would break (division by zero, empty windows, a busy retry loop).
_POSITIVE = _Range(above=True)
# Shares of frames or of probability mass, probabilities and IoUs.
_FRACTION = _Range(0, 1)
# Every other number only needs to be finite and >= 0 (`_Range()`).
_RANGES: dict[str, _Range] = {
    **dict.fromkeys(("retry_s", "retry_max_s", "image_seconds", "half_life_s", "window_s", "exit_window_s",
                     "status_every_s", "absent_after_s"), _POSITIVE),
    **dict.fromkeys(("switch_iou", "score_threshold", "hysteresis", "present_fraction", "expressivity_margin",
                     "arousal_margin", "baseline_cap", "bored_enter", "bored_exit"), _FRACTION),
    "width": _Range(16, 8192), "height": _Range(16, 8192),  # pixels a camera could deliver
    "lost_after": _Range(1, 10_000),
    "image_fps": _Range(0, 240, above=True),  # the frame rates a video source accepts
    "detect_width": _Range(64, 4096),  # pixels: below 64 the cascade's 24 px window finds nothing
    "min_face": _Range(0, 0.5),  # a larger minimum would miss a player at a normal distance
    "margin": _Range(-0.25, 1),  # from half the face box (tighter) to 3x it
    "threads": _Range(1, 64),
}


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
            on every side (negative: shrinks). 0: a Haar box already matches FER2013's framing
            (the face fills the frame); bench/sensor_crop.py measured 64.0 % at 0 against
            58.9 % at 0.1, and 66.8 % at -0.05 (pasted faces, see docs/engagement.md).
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

    def __post_init__(self) -> None:
        if self.bored_exit > self.bored_enter:  # a rule across two settings: the ranges cannot say it
            raise ConfigError(f"bored_exit ({self.bored_exit}) in [engagement] is above bored_enter "
                              f"({self.bored_enter}): bored would end and start again on the same frames. "
                              "Keep bored_exit lower.")


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
            _check_number(name, value, default, where)
        elif not isinstance(value, str):  # the non-numeric settings are file paths
            raise ConfigError(f"{name} in {where} must be a string (a file path), not {value!r}: "
                              "quote the path, or remove the setting.")
        kwargs[name] = value
    return cls(**kwargs)


def _check_number(name: str, value: Any, default: float, where: str) -> None:
    """Raise ConfigError unless `value` has the type of `default` (int or float) and is in range."""
    whole = isinstance(default, int)
    allowed = _RANGES.get(name, _Range())
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or value not in allowed:
        what = f"a {'whole' if whole else 'finite'} number {allowed}"
        raise ConfigError(f"{name} in {where} must be {what}, not {value!r}: "
                          f"change it, or remove it to use the default ({default}).")


def load_config(path: str | Path | None = None) -> SensorConfig:
    """Load a SensorConfig from a `.toml` file, or any other as JSON; defaults when `path` is None.

    Raises:
        ConfigError: The file is missing, unparsable, names an unknown setting, or sets a value
            of the wrong type or out of its range.
    """
    if path is None:
        return SensorConfig()
    path = Path(path)
    toml = path.suffix.lower() == ".toml"
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if toml else json.loads(text)
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}. Check the --config path.") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} is not valid {'TOML' if toml else 'JSON'} ({exc}): "
                          "files ending in .toml are read as TOML, any other as JSON.") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold an object of sections, e.g. {{\"smooth\": {{...}}}}.")
    return _build(SensorConfig, values, str(path))


def parse_source(spec: str) -> int | Path:
    """Read a --source value: a camera index (or /dev/videoN), or the path of a video file or image folder.

    Raises:
        SourceError: `spec` is empty, or neither a number nor an existing file or folder.
    """
    if not spec.strip():  # Path("") is the current folder: never what an empty --source meant
        raise SourceError("--source is empty: pass a camera index (0, 1, ...), a video file or an image folder.")
    if spec.isdigit():
        if Path(spec).exists():  # a camera index wins, as documented; the path is one ./ away
            log.warning("--source %s means camera %s; for the %s of that name here, pass --source ./%s.",
                        spec, spec, "folder" if Path(spec).is_dir() else "file", spec)
        return int(spec)
    # A Linux camera device (or a udev link to one, /dev/v4l/by-id/...) is the camera of that index.
    if device := re.fullmatch(r"/dev/video(\d+)", os.path.realpath(spec)):
        return int(device[1])
    if not Path(spec).exists():
        raise SourceError(f"--source {spec!r} is not a camera index (0, 1, ...), a video file or an image "
                          "folder: check the path.")
    return Path(spec)
