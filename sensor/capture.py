"""Frame sources (camera, video file, image folder) and the threaded capture that reads them.

The capture thread keeps only the newest frame: when analysis is slower than the camera, old
frames are dropped and counted, never queued, so the sensor always looks at the present. A
file source also carries its own clock (frame index / fps), so every time-based rule runs on
video time and `--fast` produces the same events as real-time playback.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from moodloop.engine.errors import MoodloopError, SourceError
from moodloop.sensor.config import CaptureConfig, parse_source
from moodloop.sensor.quiet import opencv_silenced

__all__ = [
    "Frame",
    "Source",
    "EndOfSource",
    "CameraSource",
    "FakeCamera",
    "VideoSource",
    "ImageFolderSource",
    "open_source",
    "Capture",
    "CaptureStats",
]

log = logging.getLogger(__name__)

_JOIN_S = 2.0  # how long closing waits for the capture thread's last read

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class EndOfSource(Exception):
    """A file source has no more frames (not an error)."""


class Source(Protocol):
    """Where frames come from. Cameras are `live`; files have a nominal `fps` and a clock.

    `read()` returns an image, None for an unreadable frame (skipped and counted), or raises
    EndOfSource at the end of a file. A live source that keeps returning None is lost.
    """

    name: str
    live: bool
    fps: float

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Frame:
    """One captured image.

    Attributes:
        image: BGR pixels.
        index: Source frame index (file sources) or capture count (cameras).
        t: Wall-clock capture time, UNIX seconds.
        clock: Source clock in seconds: video time for files, monotonic time for cameras.
        tick: time.perf_counter() at capture, for latency measurements.
    """

    image: np.ndarray
    index: int
    t: float
    clock: float
    tick: float


class _OpenCVSource:
    """What the sources wrapping a cv2.VideoCapture share: releasing it."""

    _cap: cv2.VideoCapture | None = None

    def close(self) -> None:
        """Release the camera or file."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_OpenCVSource):
    """A webcam by index, through cv2.VideoCapture."""

    live = True

    def __init__(self, index: int, config: CaptureConfig = CaptureConfig()) -> None:
        self.name = f"camera {index}"
        self.index = index
        self.fps = 30.0
        self._config = config

    def open(self) -> None:
        """Open the camera or raise SourceError suggesting another --source."""
        with opencv_silenced():
            cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"Could not open camera {self.index}: is it connected, or is another app using it? "
                f"Try --source {self.index + 1}, or a video file or image folder with --source PATH."
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._config.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._config.height)
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        self._cap = cap

    def read(self) -> np.ndarray | None:
        """The next camera image, or None when the read failed."""
        ok, image = self._cap.read() if self._cap is not None else (False, None)
        return image if ok else None


class FakeCamera:
    """A camera stand-in for tests and demos: same interface as CameraSource, scripted.

    Args:
        image_at: Makes the image for read number `i` (0, 1, ...).
        fps: Reads are paced at this rate, like a real camera blocking until the next frame.
        fail_reads: Read numbers that fail (a run of `lost_after` of them is a loss).
        fail_opens: How many reopen attempts fail after a loss before the camera comes back.
        missing: The camera cannot be opened at all.
    """

    live = True

    def __init__(self, image_at: Callable[[int], np.ndarray], *, fps: float = 100.0,
                 fail_reads: range | set[int] = range(0), fail_opens: int = 0, missing: bool = False) -> None:
        self.name = "fake camera"
        self.fps = fps
        self.opens = 0
        self._image_at = image_at
        self._fail_reads = fail_reads
        self._fail_opens = fail_opens
        self._missing = missing
        self._reads = 0

    def open(self) -> None:
        """Open, or raise SourceError like a missing camera would."""
        self.opens += 1
        if self._missing or 1 < self.opens <= 1 + self._fail_opens:
            raise SourceError("Could not open fake camera: scripted failure. Try --source with a video file.")

    def read(self) -> np.ndarray | None:
        """The next scripted image, or None for a scripted failure."""
        time.sleep(1.0 / self.fps)
        i, self._reads = self._reads, self._reads + 1
        return None if i in self._fail_reads else self._image_at(i)

    def close(self) -> None:
        """Nothing to release."""


class VideoSource(_OpenCVSource):
    """A video file, read frame by frame at its own nominal frame rate.

    A file that ends well before the frame count in its header (damaged or truncated) logs a
    warning, since its end is otherwise indistinguishable from a normal one.
    """

    live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.fps = 30.0
        # Frames the header announces (0: unknown), frames passed (read or skipped), frames decoded.
        self._announced = self._position = self._decoded = 0
        # Damaged frames still to report (one None each, so the file's clock runs on through
        # them) and the frame past them.
        self._pending: tuple[int, np.ndarray | None] | None = None

    def open(self) -> None:
        """Open the file or raise SourceError."""
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"Could not open video {self.path}: the file is missing or in a format OpenCV cannot "
                "decode. Try an .mp4 or .avi file, or an image folder."
            )
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0.1 <= fps <= 1000.0 else 30.0  # some containers report 0 or nonsense
        if self.fps != fps:
            log.warning("%s reports %s frames per second; its clock assumes 30 (the times of its states "
                        "may be off: re-encode it with a real frame rate if they matter).", self.path, fps)
        self._announced = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._cap = cap

    def read(self) -> np.ndarray | None:
        """The next frame; None if it cannot be decoded; EndOfSource at the end.

        Raises:
            SourceError: The file ended without one frame that could be decoded.
        """
        if self._cap is None:
            raise EndOfSource
        if self._pending is None:
            self._pending = self._next()
        skipped, image = self._pending
        self._pending = (skipped - 1, image) if skipped else None
        return None if skipped else image

    def _next(self) -> tuple[int, np.ndarray | None]:
        """Grab the next frame that can be, seeking past damaged ones while the header promises more.

        A damaged frame fails like the end of the file; a second's worth in a row (30 frames at
        least) ends the search, which a cut-short file soon runs out of.

        Returns:
            How many frames were skipped, and the image (None if it would not decode).
        """
        for skipped in range(max(30, math.ceil(self.fps)) + 1):
            self._position += 1
            if self._cap.grab():
                ok, image = self._cap.retrieve()
                self._decoded += ok
                return skipped, image if ok else None
            if self._position >= self._announced:
                break
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, self._position)
        if not self._decoded:
            raise SourceError(f"No frame of {self.path} could be decoded: the file is damaged or its codec is "
                              "missing here. Check that it plays in another app, or convert it to .mp4.")
        self._check_complete(self._position - skipped - 1)
        raise EndOfSource

    def _check_complete(self, reached: int) -> None:
        """Warn when the file ended over a second and 5 % early (some containers estimate the count)."""
        missing = self._announced - reached
        if missing > max(self.fps, 0.05 * self._announced):
            log.warning("%s ended after %d of the %d frames its header announces: the file is probably "
                        "truncated or damaged, and its last %.1f s were not analysed. Check that it plays to "
                        "the end in another app, or record it again.", self.path, reached,
                        self._announced, missing / self.fps)


class ImageFolderSource:
    """A slideshow of the images in a folder (sorted by name), or of one image, each shown for a while.

    An image that cannot be decoded is named once and its slide's frames count as unreadable,
    so that frame numbers keep mapping to images (frame // frames per slide).
    """

    live = False

    def __init__(self, path: str | Path, config: CaptureConfig = CaptureConfig()) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.fps = config.image_fps
        self._repeat = max(1, round(config.image_seconds * config.image_fps))
        self._files: list[Path] = []
        self._position = self._decoded = 0
        self._image: np.ndarray | None = None

    def open(self) -> None:
        """List the images or raise SourceError when there are none."""
        self._position = 0
        if self.path.is_file():
            self._files = [self.path]
            return
        try:
            self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as exc:
            raise SourceError(f"Cannot list image folder {self.path}: {exc.strerror}. Check its permissions.") from exc
        if not self._files:
            raise SourceError(
                f"No images ({', '.join(IMAGE_SUFFIXES)}) in folder {self.path}: add some, or pass a video "
                "file or a camera index to --source."
            )

    def read(self) -> np.ndarray | None:
        """The current slide; None if its file cannot be decoded; EndOfSource after the last.

        Raises:
            SourceError: None of the images could be decoded.
        """
        slide, repeat = divmod(self._position, self._repeat)
        if slide >= len(self._files):
            if not self._decoded:
                raise SourceError(f"None of the {len(self._files)} images of {self.path} could be decoded: "
                                  "are they damaged, or not the images their names say?")
            raise EndOfSource
        self._position += 1
        if repeat == 0:
            self._image = cv2.imread(str(self._files[slide]), cv2.IMREAD_COLOR)
            self._decoded += self._image is not None
            if self._image is None:
                log.warning("Skipped %s: OpenCV cannot decode it (damaged, or not the image its name says).",
                            self._files[slide])
        return self._image

    def close(self) -> None:
        """Nothing to release."""
        self._files = []


def open_source(spec: str, config: CaptureConfig = CaptureConfig()) -> Source:
    """Turn a --source value into a Source: a camera index, a video file or an image folder.

    Raises:
        SourceError: `spec` is empty, or neither a number nor an existing file or folder.
    """
    source = parse_source(spec)
    if isinstance(source, int):
        return CameraSource(source, config)
    if source.is_dir() or source.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(source, config)
    return VideoSource(source)


@dataclass(frozen=True)
class CaptureStats:
    """What the capture thread has seen so far.

    Attributes:
        captured: Frames read from the source.
        dropped: Frames replaced by a newer one before analysis took them.
        unreadable: Frames the source could not decode (skipped).
        camera: "ok", "lost" (retrying) or "none" (the file source ended).
    """

    captured: int
    dropped: int
    unreadable: int
    camera: str


class Capture:
    """Reads a Source on its own thread and hands out only the newest frame.

    Args:
        source: The frame source; opened on entry (SourceError if it cannot be).
        config: Retry and pacing settings.
        lossless: Hand over every frame, waiting for the consumer instead of dropping (for
            `--fast` file analysis, where nothing is live and every frame counts).
        paced: Play a file source at its own frame rate, like a camera.

    Use as a context manager, then iterate `frames()` or call `read()`.
    """

    def __init__(self, source: Source, config: CaptureConfig = CaptureConfig(), *,
                 lossless: bool = False, paced: bool = True) -> None:
        self.source = source
        self._config = config
        self._lossless = lossless
        self._paced = paced and not source.live
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._ended = False
        self._failure: Exception | None = None  # what ended the capture thread, for read() to raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="moodloop-capture", daemon=True)
        self._captured = self._dropped = self._unreadable = 0
        self._camera = "ok"
        self._retry_delay = config.retry_s  # grows until a frame comes, not merely until a reopen works

    def __enter__(self) -> Capture:
        self.source.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread, which releases the source as it ends.

        A read that blocks past ``_JOIN_S`` (a USB camera can) is not waited for: the thread
        releases the source once that read returns, never while it is still in use.
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.ident is None:  # never started: the source is ours to release
            self.source.close()
        else:
            self._thread.join(timeout=_JOIN_S)

    def stats(self) -> CaptureStats:
        """A snapshot of the capture counters."""
        with self._cond:
            camera = "none" if self._ended and self._slot is None else self._camera
            return CaptureStats(self._captured, self._dropped, self._unreadable, camera)

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken, waiting up to `timeout` seconds.

        Returns None when no frame came in time, or at once when the camera is lost, so the
        caller can report it.

        Raises:
            EndOfSource: The file source is exhausted.
            SourceError: Reading the source failed unexpectedly (or the MoodloopError it raised).
        """
        if self._thread.ident is None:
            # A video plays from the first read, not from opening: setting up the rest of the
            # sensor (the model, the socket, a --record pipe waiting for its reader) would skip its start.
            self._thread.start()
        with self._cond:
            camera = self._camera
            self._cond.wait_for(lambda: self._slot is not None or self._ended or self._camera != camera, timeout)
            frame, self._slot = self._slot, None
            if frame is None and self._ended:
                if isinstance(self._failure, MoodloopError):
                    raise self._failure
                if self._failure is not None:
                    raise SourceError(
                        f"Reading {self.source.name} failed: {self._failure!r}. Check that it plays in "
                        "another app, or try another --source."
                    ) from self._failure
                raise EndOfSource
            if frame is not None and self._lossless:
                # a prefetched file frame counts as captured when analysis can take it, as a
                # camera frame would be, so latency measures the pipeline, not the prefetch
                frame = replace(frame, t=time.time(), tick=time.perf_counter())
            self._cond.notify_all()
            return frame

    def frames(self, stop: threading.Event, timeout: float = 0.25) -> Iterator[Frame | None]:
        """Yield frames until the source ends or `stop` is set; None after `timeout` s idle."""
        while not stop.is_set():
            try:
                yield self.read(timeout)
            except EndOfSource:
                return

    def _run(self) -> None:
        """The capture thread: read until the source ends, fails or we stop; then release it and say it ended."""
        try:
            self._read_source()
        except Exception as exc:  # raised on this thread it would go unseen: read() raises it instead
            self._failure = exc
        finally:
            self.source.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _read_source(self) -> None:
        start = time.monotonic()
        index = 0
        failures = 0
        while not self._stop.is_set():
            try:
                image = self.source.read()
            except EndOfSource:
                return
            if image is None:
                failures += 1
                self._count_unreadable()
                if not self.source.live:
                    index += 1  # the video clock runs on through a frame that cannot be decoded
                elif failures >= self._config.lost_after:
                    self._reconnect()
                    failures = 0
                continue
            failures = 0
            clock = index / self.source.fps if not self.source.live else time.monotonic()
            if self._paced:
                self._stop.wait(max(0.0, start + clock - time.monotonic()))
            self._put(image, index, clock)
            index += 1

    def _count_unreadable(self) -> None:
        with self._cond:
            self._unreadable += 1

    def _put(self, image: np.ndarray, index: int, clock: float) -> None:
        with self._cond:
            if self._lossless:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
            if self._slot is not None:
                self._dropped += 1
            self._slot = Frame(image, index, time.time(), clock, time.perf_counter())
            self._captured += 1
            if self._camera == "lost":
                log.info("%s is back", self.source.name)
            self._camera = "ok"
            self._retry_delay = self._config.retry_s
            self._cond.notify_all()

    def _reconnect(self) -> None:
        """Reopen a lost camera, waiting twice as long each time, until it opens or we stop.

        A camera that opens yet sends nothing is lost again at once: the wait keeps growing
        (and the loss is told once) until a frame comes.
        """
        with self._cond:
            newly_lost = self._camera != "lost"
            self._camera = "lost"
            self._cond.notify_all()
        if newly_lost:
            log.warning("%s lost; retrying", self.source.name)
        while not self._stop.wait(self._retry_delay):
            self._retry_delay = min(self._retry_delay * 2, self._config.retry_max_s)
            self.source.close()
            try:
                self.source.open()
            except SourceError:
                continue
            return
