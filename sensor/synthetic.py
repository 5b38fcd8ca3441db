"""Synthetic scenes for tests, demos and benchmarks: no webcam, no recorded people.

Frames are made in memory: a face (a FER2013 validation crop read straight from the zip, or a
drawn cartoon) pasted on a textured background, optionally written to a video file. Dataset
images are never written anywhere except a video the caller explicitly asks for (keep such
videos out of the repository).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from moodloop.engine.errors import DataError, SourceError

__all__ = ["FER_ZIP", "fer_faces", "cartoon_face", "scene", "write_video"]

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


def scene(face: np.ndarray, *, size: tuple[int, int] = (640, 480), face_px: int = 200,
          offset: tuple[int, int] = (0, 0), seed: int = 0) -> np.ndarray:
    """A BGR frame of `size` (w, h): a textured background with the gray `face` pasted near the center."""
    width, height = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 160, width, dtype=np.float32)[None, :, None]
    frame = np.clip(ramp + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    patch = cv2.cvtColor(cv2.resize(face, (face_px, face_px), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    x = (width - face_px) // 2 + offset[0]
    y = (height - face_px) // 2 + offset[1]
    frame[y:y + face_px, x:x + face_px] = patch
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
