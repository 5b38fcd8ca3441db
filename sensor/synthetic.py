"""Synthetic scenes for tests, demos and benchmarks: no webcam, no recorded people.

Frames are made in memory: a face (a FER2013 validation crop read straight from the zip, or a
drawn cartoon) pasted on a textured background, optionally written to a video file. Dataset
images are never written anywhere except a video the caller explicitly asks for (keep such
videos out of the repository).

Scripted sessions (`SESSIONS`: e.g. 10 s of reactions, then a long blank stare) are built from
such frames and played through the real sensor by `play_session`, for bench/session.py and
tests/test_sensor_sessions.py.
"""

from __future__ import annotations

import math
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from moodloop.engine.errors import DataError, SourceError
from moodloop.engine.protocol import Message, State
from moodloop.engine.recording import read_recording
from moodloop.sensor.config import SensorConfig
from moodloop.sensor.detect import HaarDetector
from moodloop.sensor.pipeline import SensorOptions, run_sensor

__all__ = ["FER_ZIP", "fer_faces", "cartoon_face", "background", "paste", "scene", "write_video",
           "Segment", "SESSIONS", "spans", "segment_at", "FacePool", "session_frames", "play_session",
           "states_on_video_clock"]

FER_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013" / "fer2013-trainval.zip"


def fer_faces(label: str, count: int, *, zip_path: Path = FER_ZIP, split: str = "validation") -> list[np.ndarray]:
    """The first `count` 48x48 gray faces of `label` in a FER2013 zip, decoded in memory.

    Raises:
        DataError: The zip is missing or has no such folder.
    """
    prefix = f"{split}/{label}/"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = sorted(n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".jpg"))[:count]
            faces = [cv2.imdecode(np.frombuffer(archive.read(n), np.uint8), cv2.IMREAD_GRAYSCALE) for n in names]
    except OSError as exc:
        raise DataError(f"Cannot read FER2013 zip {zip_path}: {exc}. See ../shared/data/fer2013/README.md.") from exc
    if not faces:
        raise DataError(f"No images under {prefix} in {zip_path}: check the label and the split (e.g. validation).")
    return faces


def cartoon_face(size: int = 160) -> np.ndarray:
    """A drawn gray face-like pattern (oval, eyes, brows, nose, mouth)."""
    img = np.full((size, size), 90, np.uint8)
    c, s = size // 2, size / 160
    cv2.ellipse(img, (c, c), (round(60 * s), round(75 * s)), 0, 0, 360, 200, cv2.FILLED)
    for dx in (-25, 25):
        cv2.ellipse(img, (c + round(dx * s), c - round(20 * s)), (round(12 * s), round(6 * s)), 0, 0, 360, 40, cv2.FILLED)
        cv2.line(img, (c + round((dx - 14) * s), c - round(34 * s)), (c + round((dx + 14) * s), c - round(34 * s)), 60, 3)
    cv2.line(img, (c, c - round(5 * s)), (c, c + round(15 * s)), 140, 3)
    cv2.ellipse(img, (c, c + round(35 * s)), (round(25 * s), round(8 * s)), 0, 0, 180, 50, 3)
    return img


def background(size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    """A BGR frame of `size` (w, h): a horizontal gray ramp with sensor-like noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 160, width, dtype=np.float32)[None, :, None]
    return np.clip(ramp + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, face: np.ndarray, face_px: int = 200,
          offset: tuple[int, int] = (0, 0)) -> tuple[int, int, int, int]:
    """Paste the gray `face`, resized to `face_px`, near the center of BGR `frame` (in place).

    Returns:
        The pasted box (x, y, w, h).
    """
    height, width = frame.shape[:2]
    patch = cv2.cvtColor(cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    x = (width - face_px) // 2 + offset[0]
    y = (height - face_px) // 2 + offset[1]
    frame[y:y + face_px, x:x + face_px] = patch
    return x, y, face_px, face_px


def scene(face: np.ndarray, *, size: tuple[int, int] = (640, 480), face_px: int = 200,
          offset: tuple[int, int] = (0, 0), seed: int = 0) -> np.ndarray:
    """A BGR frame of `size` (w, h): a textured background with the gray `face` pasted near the center."""
    frame = background(size, seed)
    paste(frame, face, face_px, offset)
    return frame


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """Write BGR frames to a Motion-JPEG .avi (a codec every OpenCV build can write and read).

    Raises:
        SourceError: OpenCV cannot write the file.
    """
    path = Path(path)
    writer: cv2.VideoWriter | None = None
    try:
        for frame in frames:
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frame.shape[1::-1])
                if not writer.isOpened():
                    raise SourceError(f"OpenCV cannot write the video {path}; use an .avi path in a writable folder.")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    return path


@dataclass(frozen=True)
class Segment:
    """One stretch of a scripted session.

    Attributes:
        seconds: How long it lasts.
        labels: FER2013 classes shown in turn; empty means nobody in front of the camera.
        every_s: Show a new face this often (a reacting player); None holds one face for the
            whole segment (a person keeping still).
    """

    seconds: float
    labels: tuple[str, ...] = ()
    every_s: float | None = None

    def __str__(self) -> str:
        if not self.labels:
            return "no face"
        shown = "/".join(self.labels)
        return f"{shown}, a new face every {self.every_s:g} s" if self.every_s else f"one {shown} face, held"


_REACTING = ("happy", "surprise")
SESSIONS: dict[str, tuple[Segment, ...]] = {
    # Reactions, then the same neutral face staring blankly: bored during the stare, not before.
    "engaged-then-bored": (Segment(10.0, _REACTING, 1.0), Segment(20.0, ("neutral",))),
    # Strong expressions throughout: never bored.
    "expressive": (Segment(20.0, ("happy", "surprise", "angry", "fear"), 1.0),),
    # The player leaves for 5 s: absent during the gap, back after it.
    "absent": (Segment(6.0, _REACTING, 1.0), Segment(5.0), Segment(4.0, _REACTING, 1.0)),
    # A face lost for 0.3 s every 3 s (a hand, a turned head): no state flicker.
    "short-pauses": (Segment(2.7, _REACTING, 1.0), Segment(0.3)) * 6,
}
"""Scripted sessions by name: what a person in front of the camera does, segment by segment."""


def spans(segments: Sequence[Segment]) -> list[tuple[float, float]]:
    """The (start, end) video seconds of each segment."""
    bounds, start = [], 0.0
    for segment in segments:
        bounds.append((start, start + segment.seconds))
        start += segment.seconds
    return bounds


def segment_at(segments: Sequence[Segment], t: float) -> tuple[int, float]:
    """The index of the segment playing at video time `t` and the seconds since it began."""
    bounds = spans(segments)
    index = next((i for i, (_, end) in enumerate(bounds) if t < end), len(bounds) - 1)
    return index, t - bounds[index][0]


def states_on_video_clock(messages: Sequence[Message], fps: float) -> list[tuple[float, State]]:
    """The published states with their video time (frame / fps)."""
    return [((m.frame or 0) / fps, m) for m in messages if isinstance(m, State)]


class FacePool:
    """FER2013 validation faces, per class, that the Haar detector finds when pasted at `face_px`.

    Faces are decoded in memory and cached, so several sessions share one read of the zip.

    Args:
        face_px: Pasted face size in pixels (a real webcam face is about 150-250 px).
        candidates: How many faces of each class to read before filtering.
        zip_path: The FER2013 zip.
    """

    def __init__(self, face_px: int = 200, *, candidates: int = 16, zip_path: Path = FER_ZIP) -> None:
        self.face_px = face_px
        self._candidates = candidates
        self._zip_path = zip_path
        self._faces: dict[str, list[np.ndarray]] = {}
        self._detector = HaarDetector()
        self._background = background()

    def faces(self, label: str) -> list[np.ndarray]:
        """The detectable faces of `label`, in the zip's order.

        Raises:
            DataError: The zip is missing or none of the candidates is detectable.
        """
        if label not in self._faces:
            found = [f for f in fer_faces(label, self._candidates, zip_path=self._zip_path)
                     if self._detector.detect(self._on_background(f))]
            if not found:
                raise DataError(f"None of the first {self._candidates} {label} faces in {self._zip_path} is "
                                f"detectable at {self.face_px} px; try another face size.")
            self._faces[label] = found
        return self._faces[label]

    def _on_background(self, face: np.ndarray) -> np.ndarray:
        frame = self._background.copy()
        paste(frame, face, self.face_px)
        return frame


def session_frames(segments: Sequence[Segment], pool: FacePool, *, fps: float = 30.0,
                   seed: int = 0) -> Iterator[np.ndarray]:
    """The 640x480 frames of a scripted session, like a webcam: each face sways slightly and jitters.

    Every segment takes fresh faces from `pool` (the same inputs give the same frames).
    """
    rng = np.random.default_rng(seed)
    backgrounds = [background(seed=seed + k) for k in range(4)]
    used: Counter[str] = Counter()
    index = 0
    for segment in segments:
        count = round(segment.seconds * fps)
        hold = round(segment.every_s * fps) if segment.every_s else count
        face: np.ndarray | None = None
        for i in range(count):
            if segment.labels and i % hold == 0:
                label = segment.labels[(i // hold) % len(segment.labels)]
                faces = pool.faces(label)
                face = faces[used[label] % len(faces)]
                used[label] += 1
            frame = backgrounds[index % len(backgrounds)].copy()
            if face is not None:
                t = index / fps
                sway = (6 * math.sin(2 * math.pi * t / 4.0), 3 * math.sin(2 * math.pi * t / 5.3))
                offset = (round(sway[0] + rng.normal(0, 1)), round(sway[1] + rng.normal(0, 1)))
                x, y, w, h = paste(frame, face, pool.face_px, offset)
                noise = rng.integers(-4, 5, (h, w, 3), dtype=np.int16)
                frame[y:y + h, x:x + w] = np.clip(frame[y:y + h, x:x + w] + noise, 0, 255).astype(np.uint8)
            yield frame
            index += 1


def play_session(segments: Sequence[Segment], pool: FacePool, model: Path, *,
                 config: SensorConfig = SensorConfig(), fps: float = 30.0) -> list[Message]:
    """Write the session's video to a temporary folder, run the real sensor on it (`--fast`).

    Args:
        segments: The script.
        pool: Where the faces come from.
        model: The ONNX emotion model.
        config: Sensor settings (the tuning under test).
        fps: Video frame rate; every time rule runs on the video clock (`frame / fps`).

    Returns:
        Every message the sensor published, in order (`frame` is set on emotion and state).
    """
    with tempfile.TemporaryDirectory() as tmp:  # the video and recording never outlive the run
        video = write_video(Path(tmp) / "session.avi", session_frames(segments, pool, fps=fps), fps=fps)
        record = Path(tmp) / "session.jsonl"
        options = SensorOptions(source=str(video), model=model, endpoint="tcp://127.0.0.1:*",
                                record=record, fast=True)
        run_sensor(options, config, threading.Event())
        return list(read_recording(record))
