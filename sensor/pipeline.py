"""The sensor's main loop: frame -> face -> classify -> smooth -> engagement -> publish.

Each stage is a small object from its own module; this one wires them together, publishes the
protocol messages, times every stage and keeps the counts for the closing summary.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from moodloop.engine.affect import valence_arousal
from moodloop.engine.errors import ConfigError
from moodloop.engine.protocol import Emotion, Message, State, Status
from moodloop.engine.publisher import Publisher
from moodloop.sensor.capture import Capture, Frame, open_source
from moodloop.sensor.classify import DEFAULT_MODEL, Classifier
from moodloop.sensor.config import SensorConfig
from moodloop.sensor.detect import Face, PlayerTracker, make_detector
from moodloop.sensor.engagement import Engagement, EngagementEstimator
from moodloop.sensor.preview import Snapshot, View
from moodloop.sensor.smooth import Reading, Smoother

__all__ = ["EmotionModel", "Sink", "StageTimes", "Summary", "Sensor", "SensorOptions", "run_sensor"]


class EmotionModel(Protocol):
    """What the pipeline needs from a classifier (Classifier, or a fake in tests)."""

    labels: tuple[str, ...]
    name: str

    def classify(self, frame: np.ndarray, face: Face) -> np.ndarray: ...

    def crop(self, frame: np.ndarray, face: Face) -> np.ndarray: ...


class Sink(Protocol):
    """Where messages go: a moodloop.engine.Publisher, or a list-backed fake."""

    def publish(self, msg: Message) -> Message: ...


class StageTimes:
    """Recent durations (ms) per stage, bounded so an hours-long run keeps constant memory.

    Args:
        keep: How many recent samples each stage keeps.
    """

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        self.samples: dict[str, deque[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        """Record one duration of `stage`."""
        self.samples.setdefault(stage, deque(maxlen=self._keep)).append(ms)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        """Time the body of a `with` block as one sample of `stage`."""
        start = time.perf_counter()
        yield
        self.add(stage, (time.perf_counter() - start) * 1000)

    def percentiles(self, stage: str, *qs: float) -> tuple[float, ...]:
        """The given percentiles (0-100) of `stage`, in ms (NaN when never measured)."""
        values = self.samples.get(stage)
        return tuple(np.percentile(values, qs)) if values else (float("nan"),) * len(qs)


@dataclass(frozen=True)
class Summary:
    """What a run did, printed at the end.

    Attributes:
        frames: Frames analysed.
        faces: Frames with the player's face: found, or held through a short detection gap
            (`DetectConfig.hold_s`).
        seconds: Wall-clock duration of the run.
        dropped: Frames the capture dropped because analysis was busy.
        unreadable: Frames the source could not decode.
        states: How often each engagement state was entered.
    """

    frames: int
    faces: int
    seconds: float
    dropped: int
    unreadable: int
    states: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Analysed frames per wall-clock second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        entered = ", ".join(f"{state} x{n}" for state, n in self.states.items()) or "none"
        return (f"moodloop sensor: {self.frames} frames analysed, {self.faces} with a face, "
                f"{self.fps:.1f} fps over {self.seconds:.1f} s, {self.dropped} dropped, "
                f"{self.unreadable} unreadable; states entered: {entered}")


class Sensor:
    """Runs the pipeline over a capture until it ends or is stopped.

    Args:
        capture: The running capture (entered).
        tracker: Finds the player's face.
        model: The emotion classifier.
        sink: Where messages are published.
        config: Smoothing, engagement and heartbeat settings.
        view: Optional preview or status line.
        save_crops: Debug only: write each face crop, as the model sees it, to this existing
            folder (`run_sensor` makes one).

    Raises:
        ConfigError: From `run`, when a face crop cannot be written.
    """

    def __init__(self, capture: Capture, tracker: PlayerTracker, model: EmotionModel, sink: Sink,
                 config: SensorConfig = SensorConfig(), *, view: View | None = None,
                 save_crops: Path | None = None) -> None:
        self._capture = capture
        self._tracker = tracker
        self._model = model
        self._sink = sink
        self._config = config
        self._smoother = Smoother(model.labels, config.smooth)
        self._estimator = EngagementEstimator(config.engagement)
        self._reading: Reading | None = None
        self._view = view
        self._save_crops = save_crops
        self._live = capture.source.live
        self.times = StageTimes()
        self._frames = self._faces = 0
        self._entered: Counter[str] = Counter()
        self._start = time.monotonic()
        self._since = time.time()  # UNIX time the current state began, for the heartbeat
        self._next_status = 0.0
        self._last_status: tuple[str, str] | None = None
        self._rate: deque[float] = deque()

    def run(self, stop: threading.Event) -> Summary:
        """Analyse frames until the source ends, `stop` is set, or the view asks to quit."""
        self._heartbeat()  # a late joiner learns the state within a second; this one at once
        waiting = time.perf_counter()
        for frame in self._capture.frames(stop):
            self.times.add("capture", (time.perf_counter() - waiting) * 1000)
            snapshot = self.step(frame) if frame is not None else self._idle()
            self._heartbeat()
            if self._view is not None and not self._view.show(snapshot):
                break
            waiting = time.perf_counter()
        self._heartbeat(final=True)
        stats = self._capture.stats()
        return Summary(self._frames, self._faces, time.monotonic() - self._start, stats.dropped,
                       stats.unreadable, dict(self._entered))

    def step(self, frame: Frame) -> Snapshot:
        """Analyse one frame and publish what it yields."""
        with self.times.measure("detect"):
            face = self._tracker.locate(frame.image, frame.clock)
        held = self._tracker.held
        # Through a short detection gap the player counts as present with their last reading:
        # classifying whatever now fills the old box (often background) would be noise.
        reading = self._reading if held else None
        if face is not None and not held:
            with self.times.measure("classify"):
                probs = self._model.classify(frame.image, face)
            with self.times.measure("smooth"):
                reading = self._reading = self._smoother.update(probs, frame.clock)
            if self._save_crops is not None:
                self._save_crop(frame, face)
        with self.times.measure("engagement"):
            engagement = self._estimator.update(reading, frame.clock)
        index = None if self._live else frame.index
        with self.times.measure("publish"):
            if reading is not None and not held:  # one emotion per analysed frame with a face
                self._publish_emotion(frame, index, face, reading)
            if engagement.changed:
                self._publish_state(engagement, frame.t - (frame.clock - engagement.since), frame.t, index)
        self._frames += 1
        self._faces += face is not None
        self._rate.append(time.monotonic())
        return Snapshot(frame.image, face, reading, engagement, frame.clock - engagement.since,
                        self._fps(), self._capture.stats().camera)

    def _save_crop(self, frame: Frame, face: Face) -> None:
        path = self._save_crops / f"{frame.index:07d}.png"
        if not cv2.imwrite(str(path), self._model.crop(frame.image, face)):  # OpenCV returns False, never raises
            raise ConfigError(f"Could not write the face crop {path}: is the disk full, or was the folder "
                              "removed? Free some space, or pass --save-frames another folder.")

    def _idle(self) -> Snapshot:
        """No frame came in time: a live camera sees nobody (after a while: absent)."""
        engagement = self._estimator.current
        if self._live:
            now, t = time.monotonic(), time.time()
            engagement = self._estimator.update(None, now)
            if engagement.changed:
                self._publish_state(engagement, t - (now - engagement.since), t, None)
        age = time.monotonic() - engagement.since if self._live else 0.0
        return Snapshot(None, None, None, engagement, age, self._fps(), self._capture.stats().camera)

    def _publish_emotion(self, frame: Frame, index: int | None, face: Face, reading: Reading) -> None:
        valence, arousal = valence_arousal(reading.probs)
        latency_ms = (time.perf_counter() - frame.tick) * 1000
        self._sink.publish(Emotion(
            t=frame.t, frame=index, probs=reading.probs, raw=reading.raw, label=reading.label,
            confidence=reading.confidence, valence=valence, arousal=arousal, face=face.box,
            latency_ms=latency_ms,
        ))
        self.times.add("latency", latency_ms)

    def _publish_state(self, engagement: Engagement, since: float, t: float, index: int | None) -> None:
        self._entered[engagement.state] += 1
        self._since = since
        self._sink.publish(State(t=t, frame=index, state=engagement.state, previous=engagement.previous,
                                 since=since, confidence=engagement.confidence))

    def _fps(self) -> float:
        """Analysed frames over the last second."""
        now = time.monotonic()
        while self._rate and self._rate[0] < now - 1.0:
            self._rate.popleft()
        return float(len(self._rate))

    def _heartbeat(self, final: bool = False) -> None:
        """Publish Status about once a second (wall clock) and whenever state or camera change.

        The final one says camera "none" (unless that was just said), so subscribers know the
        sensor stopped on purpose.
        """
        now = time.monotonic()
        camera = "none" if final else self._capture.stats().camera
        current = (self._estimator.current.state, camera)
        if current == self._last_status and (final or now < self._next_status):
            return
        self._next_status, self._last_status = now + self._config.status_every_s, current
        t = time.time()
        self._sink.publish(Status(t=t, state=current[0], fps=self._fps(), camera=camera, model=self._model.name,
                                  uptime_s=now - self._start, since=min(self._since, t),
                                  confidence=self._estimator.current.confidence))


@dataclass(frozen=True)
class SensorOptions:
    """How one sensor run is wired (the command-line choices; tuning lives in SensorConfig).

    Attributes:
        source: Camera index ("0"), video file or image folder.
        model: The ONNX emotion model.
        endpoint: ZeroMQ address to bind (or connect to, with `connect`).
        connect: Connect to a relay instead of binding.
        source_id: Publisher id stamped on every message (e.g. the player's name).
        record: Also write every published message to this JSON-lines file.
        fast: Analyse a file source as fast as possible, every frame, instead of paced.
        save_crops: Debug only: folder for the face crops the model sees.
    """

    source: str = "0"
    model: Path = DEFAULT_MODEL
    endpoint: str | None = None
    connect: bool = False
    source_id: str = "sensor"
    record: Path | None = None
    fast: bool = False
    save_crops: Path | None = None


def _prepare_crops_folder(path: Path) -> None:
    """Create the `--save-frames` folder if needed and make sure a file can be written in it.

    Raises:
        ConfigError: `path` is a file, the folder cannot be created or written to, or it holds
            crops (of an earlier run: the new ones, numbered alike, would overwrite them).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        reason = "it is a file, not a folder" if path.is_file() else exc.strerror
        raise ConfigError(f"Cannot save face crops in {path}: {reason}. Pass --save-frames a folder you "
                          "can write to (it is created if missing).") from exc
    if earlier := sum(1 for _ in path.glob("*.png")):
        raise ConfigError(f"Cannot save face crops in {path}: it holds {earlier} .png files, e.g. an earlier "
                          "run's crops, which this run would overwrite. Pass --save-frames a new or empty folder.")


def run_sensor(options: SensorOptions, config: SensorConfig, stop: threading.Event,
               view: View | None = None,
               on_publishing: Callable[[str], None] | None = None) -> tuple[Summary, StageTimes]:
    """Build every stage, run until the source ends or `stop` is set, close everything.

    Args:
        options: Source, model, endpoint and the other command-line choices.
        config: Tuning settings.
        stop: Set it to end the run cleanly.
        view: Optional preview window or status line.
        on_publishing: Called with the actual publisher address (its port filled in when
            bound to `:*`) once the socket is open.

    Raises:
        ModelError: The model file is missing or invalid.
        SourceError: The source cannot be opened.
        ConfigError: The endpoint, record file or --save-frames folder cannot be used.
    """
    # checked first: a bad folder must not cost a model load, nor leave an empty --record file
    if options.save_crops is not None:
        _prepare_crops_folder(options.save_crops)
    model = Classifier(options.model, config.classify)  # a bad model fails before the camera opens
    tracker = PlayerTracker(make_detector(config.detect), config.detect)
    source = open_source(options.source, config.capture)
    lossless = options.fast and not source.live
    # The source opens before the publisher, so a camera or folder that fails leaves no empty --record file.
    with (Capture(source, config.capture, lossless=lossless, paced=not options.fast) as capture,
          Publisher(options.endpoint, source=options.source_id, connect=options.connect,
                    record=options.record) as publisher):
        if on_publishing is not None:
            on_publishing(publisher.endpoint)
        sensor = Sensor(capture, tracker, model, publisher, config, view=view, save_crops=options.save_crops)
        return sensor.run(stop), sensor.times
