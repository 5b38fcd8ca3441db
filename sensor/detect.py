"""Face detection (Haar cascade or YuNet) and player selection.

The Haar detector works on a downscaled gray frame; between full detections the tracker
searches only a region around the player's last face, so most frames cost a fraction of a
full scan. The tracker picks one stable face (the player) and holds it through short gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from moodloop.engine.errors import ModelError
from moodloop.sensor.config import DetectConfig
from moodloop.sensor.quiet import opencv_silenced

__all__ = ["Face", "Detector", "HaarDetector", "YuNetDetector", "PlayerTracker", "make_detector"]


@dataclass(frozen=True)
class Face:
    """A face box in frame pixels.

    Attributes:
        x: Left edge.
        y: Top edge.
        w: Width.
        h: Height.
        score: Detector confidence, higher is better (Haar: merged neighbours; YuNet: probability).
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) as the protocol's `face` field."""
        return (self.x, self.y, self.w, self.h)

    def grown(self, margin: float) -> tuple[int, int, int, int]:
        """The box grown by `margin` times its size on every side (may leave the frame)."""
        dx, dy = round(self.w * margin), round(self.h * margin)
        return (self.x - dx, self.y - dy, self.w + 2 * dx, self.h + 2 * dy)

    def iou(self, other: Face) -> float:
        """Intersection over union with another box."""
        iw = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        ih = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        inter = max(0, iw) * max(0, ih)
        return inter / (self.w * self.h + other.w * other.h - inter)


class Detector(Protocol):
    """Finds faces in a BGR frame; `near` (a hint, may be ignored) limits the search to a region."""

    def detect(self, frame: np.ndarray, near: Face | None = None) -> list[Face]: ...


def _downscale(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """The image resized to at most `width` pixels wide, and the scale applied."""
    scale = min(1.0, width / image.shape[1])
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image, scale


_TRACK_PX = 48


class HaarDetector:
    """OpenCV's frontal-face Haar cascade on a downscaled, equalized gray frame."""

    def __init__(self, config: DetectConfig = DetectConfig()) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"Could not load the Haar cascade {path}: reinstall opencv-python 4.x.")
        self._config = config

    def detect(self, frame: np.ndarray, near: Face | None = None) -> list[Face]:
        """Faces in `frame`; with `near`, only those in a region around that face."""
        fh, fw = frame.shape[:2]
        x0, y0, x1, y1 = 0, 0, fw, fh
        if near is not None:
            gx, gy, gw, gh = near.grown(self._config.track_margin)
            x0, y0, x1, y1 = max(0, gx), max(0, gy), min(fw, gx + gw), min(fh, gy + gh)
            if min(x1 - x0, y1 - y0) < 24:  # the hint lies (mostly) outside this frame: scan it all
                return self.detect(frame)
        # A tracked face only needs ~48 px for the cascade's 24 px window: shrink the region to that.
        width = self._config.detect_width * (x1 - x0) / fw if near is None else (x1 - x0) * _TRACK_PX / near.w
        small, scale = _downscale(frame[y0:y1, x0:x1], round(width))
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        if near is None:
            side = max(24, round(self._config.min_face * small.shape[1]))  # of the frame as scanned
            min_size, max_size, neighbours = (side, side), (0, 0), 4  # (0, 0): no upper bound
        else:  # the player's face keeps roughly its size from one frame to the next
            side = near.w * scale
            min_size, max_size, neighbours = (round(side * 0.7),) * 2, (round(side * 1.4),) * 2, 3
        boxes, counts = self._cascade.detectMultiScale2(
            gray, scaleFactor=1.15, minNeighbors=neighbours, minSize=min_size, maxSize=max_size
        )
        return [
            Face(x0 + round(x / scale), y0 + round(y / scale), round(w / scale), round(h / scale), float(n))
            for (x, y, w, h), n in zip(boxes, counts, strict=True)
        ]


class YuNetDetector:
    """cv2.FaceDetectorYN with a user-supplied YuNet ONNX file (more robust to pose and light)."""

    def __init__(self, path: str | Path, config: DetectConfig = DetectConfig()) -> None:
        """Load the model and run it once on a blank frame.

        Raises:
            ModelError: `path` is missing or not a YuNet model.
        """
        if not Path(path).is_file():
            raise ModelError(
                f"YuNet model {path} not found: download face_detection_yunet_*.onnx from the "
                "OpenCV model zoo and pass its path, or omit it to use the built-in Haar cascade."
            )
        self._config = config
        try:
            with opencv_silenced():
                self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 240), config.score_threshold)
                # another ONNX model loads fine and fails only when run: find out now, not on the first frame
                self.detect(np.zeros((240, 320, 3), np.uint8))
        except cv2.error as exc:
            reason = " ".join(exc.err.replace("> ", "").split())  # OpenCV's message, on one line
            raise ModelError(
                f"{path} is not a YuNet face detector ONNX file ({reason}): use face_detection_yunet_*.onnx "
                "from the OpenCV model zoo, or remove detect.yunet from the config to use the Haar cascade."
            ) from exc

    def detect(self, frame: np.ndarray, near: Face | None = None) -> list[Face]:
        """Faces in `frame` (YuNet is cheap enough to scan every frame, so `near` is ignored)."""
        small, scale = _downscale(frame, self._config.detect_width)
        self._net.setInputSize((small.shape[1], small.shape[0]))
        _, rows = self._net.detect(small)
        return [
            Face(round(r[0] / scale), round(r[1] / scale), round(r[2] / scale), round(r[3] / scale), float(r[14]))
            for r in (rows if rows is not None else [])
        ]


def make_detector(config: DetectConfig) -> Detector:
    """YuNet when the config names a model file, else the Haar cascade."""
    return YuNetDetector(config.yunet, config) if config.yunet else HaarDetector(config)


class PlayerTracker:
    """Finds the player's face in each frame: one stable face, held through short gaps.

    Args:
        detector: The face detector.
        config: Tracking region, full-scan period, hold time and identity rule.
    """

    def __init__(self, detector: Detector, config: DetectConfig = DetectConfig()) -> None:
        self._detector = detector
        self._config = config
        self._face: Face | None = None
        self._size: tuple[int, ...] = ()
        self._seen = 0.0
        self._since_full = 0
        self.held = False  # True when locate() returned the last face through a detection gap

    def locate(self, frame: np.ndarray, clock: float) -> Face | None:
        """The player's face in `frame` at source time `clock`, or None when there is none."""
        faces: list[Face] = []
        if frame.shape[:2] != self._size:  # another picture size (an image folder): nothing to track
            self._face, self._size = None, frame.shape[:2]
        if self._face is not None and self._since_full < self._config.full_every:
            self._since_full += 1
            faces = self._detector.detect(frame, near=self._face)
        if not faces:  # no track, time for a full scan, or the track was lost: scan it all
            self._since_full = 0
            faces = self._detector.detect(frame)
        size = frame.shape[1], frame.shape[0]
        chosen = self._select(faces, *size)
        if chosen is None and self._face is not None and clock - self._seen > self._config.hold_s:
            self._face = None  # the player is gone for good: anyone else in view may take over
            chosen = self._best(faces, *size)
        if chosen is not None:
            self._face, self._seen = chosen, clock
        self.held = chosen is None and self._face is not None
        return self._face

    def _select(self, faces: list[Face], width: int, height: int) -> Face | None:
        """The player's face if seen again, None while held, else the best face in view."""
        if self._face is None:
            return self._best(faces, width, height)
        same = [f for f in faces if f.iou(self._face) >= self._config.switch_iou]
        return max(same, key=self._face.iou, default=None)

    @staticmethod
    def _best(faces: list[Face], width: int, height: int) -> Face | None:
        """The largest, most central face: the person sitting in front of the screen."""

        def weight(f: Face) -> float:
            dx = (f.x + f.w / 2) / width - 0.5
            dy = (f.y + f.h / 2) / height - 0.5
            return f.w * f.h * (1.0 - (dx * dx + dy * dy) ** 0.5)

        return max(faces, key=weight, default=None)
