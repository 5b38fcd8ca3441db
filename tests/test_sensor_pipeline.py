"""The real pipeline end to end: fake or generated sources, real sockets, recordings, the CLI."""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
from test_sensor_classify import tiny_model

from moodloop.engine.errors import ConfigError, SourceError
from moodloop.engine.protocol import DEFAULT_ENDPOINT, LABELS, Emotion, State, Status, from_record
from moodloop.engine.publisher import Publisher
from moodloop.engine.subscriber import Subscriber
from moodloop.engine.transport import RELAY_FRONTEND
from moodloop.sensor import cli
from moodloop.sensor.capture import Capture, FakeCamera, VideoSource
from moodloop.sensor.config import CaptureConfig, SensorConfig
from moodloop.sensor.detect import Face, HaarDetector, PlayerTracker
from moodloop.sensor.pipeline import Sensor
from moodloop.sensor.synthetic import FER_ZIP, cartoon_face, fer_faces, scene, write_video

NEUTRAL = np.array([0.02, 0.01, 0.02, 0.03, 0.88, 0.02, 0.02], np.float32)
HAPPY = np.array([0.01, 0.01, 0.01, 0.9, 0.05, 0.01, 0.01], np.float32)


def coded_frame(face: bool, happy: bool = False) -> np.ndarray:
    """A tiny frame whose colour scripts the fakes: green = a face is there, blue = happy."""
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 1] = 255 * face
    frame[..., 0] = 255 * happy
    return frame


class ColourDetector:
    """Fake detector: one face when the frame is green."""

    def detect(self, frame: np.ndarray, near: Face | None = None) -> list[Face]:
        return [Face(16, 8, 32, 32)] if frame[0, 0, 1] > 128 else []


class ColourModel:
    """Fake classifier: happy when the frame is blue, else neutral."""

    labels = LABELS
    name = "colour"

    def classify(self, frame: np.ndarray, face: Face) -> np.ndarray:
        return HAPPY if frame[0, 0, 0] > 128 else NEUTRAL

    def crop(self, frame: np.ndarray, face: Face) -> np.ndarray:
        return frame[face.y:face.y + face.h, face.x:face.x + face.w, 1]


def sensor(capture: Capture, sink, **kwargs) -> Sensor:
    return Sensor(capture, PlayerTracker(ColourDetector()), ColourModel(), sink, **kwargs)


def read_records(path) -> list:
    return [from_record(json.loads(line)) for line in path.read_text().splitlines()]


def sensor_args(*argv: str) -> argparse.Namespace:
    """`moodloop sensor ARGV`, parsed."""
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(["sensor", *argv])


def test_recorded_session_is_protocol_valid_with_the_expected_states(tmp_path):
    script = [(16.0, True, False), (3.0, False, False), (2.0, True, True)]  # neutral, away, smiling
    frames = [coded_frame(face, happy) for seconds, face, happy in script for _ in range(round(seconds * 30))]
    video = write_video(tmp_path / "session.avi", frames, fps=30)
    record = tmp_path / "out.jsonl"
    with (Capture(VideoSource(video), lossless=True, paced=False) as capture,
          Publisher("tcp://127.0.0.1:*", record=record) as publisher):
        summary = sensor(capture, publisher).run(threading.Event())
    messages = read_records(record)  # every line decodes and validates with the protocol module
    emotions = [m for m in messages if isinstance(m, Emotion)]
    states = [m for m in messages if isinstance(m, State)]
    assert summary.frames == len(frames) and len(emotions) == 18 * 30
    assert summary.faces == 18 * 30 + 15  # the 0.5 s hold counts as present, with no new emotion
    assert [s.state for s in states] == ["engaged", "bored", "absent", "engaged"]
    assert summary.states == {"engaged": 2, "bored": 1, "absent": 1}
    assert all(m.frame is not None for m in emotions + states)
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert emotions[0].label == "neutral" and emotions[-1].label == "happy"
    assert isinstance(messages[0], Status) and messages[-1].camera == "none"
    assert all(0 <= e.latency_ms < 1000 for e in emotions)
    since = messages[0].since  # each heartbeat tells when the state began, and how sure the sensor is
    for msg in messages:
        since = msg.since if isinstance(msg, State) else since
        assert not isinstance(msg, Status) or (msg.since == since and 0 <= msg.confidence <= 1)


def test_fast_and_paced_runs_produce_the_same_events(tmp_path):
    frames = [coded_frame(True, happy=i % 90 < 20) for i in range(150)]
    video = write_video(tmp_path / "v.avi", frames, fps=60)
    runs = []
    for fast in (True, False):
        record = tmp_path / f"{fast}.jsonl"
        with (Capture(VideoSource(video), lossless=True, paced=not fast) as capture,
              Publisher("tcp://127.0.0.1:*", record=record) as publisher):
            sensor(capture, publisher).run(threading.Event())
        runs.append([(m.frame, m.state) if isinstance(m, State) else (m.frame, m.label)
                     for m in read_records(record) if not isinstance(m, Status)])
    assert runs[0] == runs[1]


def test_live_camera_over_a_real_socket_with_loss_and_recovery():
    camera = FakeCamera(lambda i: coded_frame(True), fps=100, fail_reads=range(60, 65))
    config = SensorConfig(capture=CaptureConfig(lost_after=5, retry_s=0.2))
    stop = threading.Event()
    with (Capture(camera, config.capture) as capture,
          Publisher("tcp://127.0.0.1:*") as publisher,
          Subscriber(publisher.endpoint) as subscriber):
        runner = sensor(capture, publisher, config=config)
        thread = threading.Thread(target=runner.run, args=(stop,))
        thread.start()
        received, cameras = [], []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cameras[-2:] != ["lost", "ok"]:
            for msg in subscriber.poll():
                received.append(msg)
                if isinstance(msg, Status) and (not cameras or cameras[-1] != msg.camera):
                    cameras.append(msg.camera)
            time.sleep(0.01)
        stop.set()
        thread.join(5)
    emotions = [m for m in received if isinstance(m, Emotion)]
    assert emotions and emotions[0].frame is None  # live sources carry no frame index
    assert cameras[-2:] == ["lost", "ok"]
    assert subscriber.online


def test_cli_on_a_generated_video_with_haar_and_onnx(tmp_path, capsys):
    frames = (scene(cartoon_face(), face_px=180, offset=(i % 7, 0), seed=i % 3) for i in range(45))
    video = write_video(tmp_path / "cartoon.avi", frames, fps=15)
    record = tmp_path / "out.jsonl"
    args = sensor_args("--source", str(video), "--model", str(tiny_model(tmp_path / "m.onnx")),
                       "--endpoint", "tcp://127.0.0.1:*", "--headless", "--fast", "--record", str(record))
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert "45 frames analysed" in out.err and not out.out  # stdout stays free for --record /dev/stdout
    assert re.search(r"^moodloop sensor: publishing on tcp://127\.0\.0\.1:\d+$", out.err, re.M)  # the port * picked
    messages = read_records(record)
    assert sum(isinstance(m, Emotion) for m in messages) >= 40  # the Haar cascade finds the drawn face


def test_quiet_prints_the_summary_but_no_status_line(tmp_path, capsys):
    video = write_video(tmp_path / "v.avi", [coded_frame(True)] * 5, fps=30)
    args = sensor_args("--source", str(video), "--model", str(tiny_model(tmp_path / "m.onnx")),
                       "--endpoint", "tcp://127.0.0.1:*", "--headless", "--quiet", "--fast")
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert "5 frames analysed" in out.err and "| camera" not in out.err  # the summary, no status line,
    assert "publishing on tcp://127.0.0.1:" in out.err  # and the port * picked, without which nobody can subscribe


def test_a_sensor_that_cannot_start_says_why_and_restores_the_signal_handlers(tmp_path):
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    args = sensor_args("--source", str(tmp_path / "missing.mp4"), "--model", str(tiny_model(tmp_path / "m.onnx")),
                       "--endpoint", "tcp://127.0.0.1:*", "--headless")
    with pytest.raises(SourceError, match="not a camera index"):
        args.func(args)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_a_source_that_cannot_open_leaves_no_recording_behind(tmp_path):
    empty = tmp_path / "frames"
    empty.mkdir()
    record = tmp_path / "out.jsonl"
    args = sensor_args("--source", str(empty), "--model", str(tiny_model(tmp_path / "m.onnx")),
                       "--endpoint", "tcp://127.0.0.1:*", "--record", str(record), "--headless")
    with pytest.raises(SourceError, match="No images"):
        args.func(args)
    assert not record.exists()  # so the same command works once the folder has images


def test_save_frames_writes_crops_only_when_asked(tmp_path):
    video = write_video(tmp_path / "v.avi", [coded_frame(True)] * 5, fps=30)
    crops = tmp_path / "crops"
    crops.mkdir()  # run_sensor makes it; Sensor expects it
    with (Capture(VideoSource(video), lossless=True, paced=False) as capture,
          Publisher("tcp://127.0.0.1:*") as publisher):
        sensor(capture, publisher, save_crops=crops).run(threading.Event())
    assert len(list(crops.glob("*.png"))) == 5
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize(("inside", "why"), [("", "it is a file, not a folder"), ("crops", "Not a directory")])
def test_a_save_frames_folder_that_cannot_be_made_fails_before_anything_opens(tmp_path, inside, why):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    record = tmp_path / "out.jsonl"
    args = sensor_args("--source", str(tmp_path / "missing.mp4"), "--save-frames", str(taken / inside),
                       "--record", str(record), "--headless")
    with pytest.raises(ConfigError, match=rf"Cannot save face crops in .*: {why}\. Pass --save-frames"):
        args.func(args)
    assert taken.read_text() == "mine" and not record.exists()  # checked before the source and the recording


def test_a_save_frames_folder_with_earlier_crops_is_not_overwritten(tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "0000000.png").write_bytes(b"an earlier run's crop")
    args = sensor_args("--source", str(tmp_path / "missing.mp4"), "--save-frames", str(crops), "--headless")
    with pytest.raises(ConfigError, match=r"holds 1 \.png files.*new or empty folder"):
        args.func(args)
    assert (crops / "0000000.png").read_bytes() == b"an earlier run's crop"


def test_a_face_crop_that_cannot_be_written_is_a_config_error(tmp_path):
    video = write_video(tmp_path / "v.avi", [coded_frame(True)] * 5, fps=30)
    gone = tmp_path / "removed"  # e.g. deleted while the sensor runs
    with (Capture(VideoSource(video), lossless=True, paced=False) as capture,
          Publisher("tcp://127.0.0.1:*") as publisher,
          pytest.raises(ConfigError, match="Could not write the face crop .*removed.*--save-frames")):
        sensor(capture, publisher, save_crops=gone).run(threading.Event())


def test_help_states_the_defaults_and_how_a_video_is_paced(capsys):
    with pytest.raises(SystemExit):
        sensor_args("--help")
    text = " ".join(capsys.readouterr().out.split())
    assert DEFAULT_ENDPOINT in text and f"with --connect: the relay's frontend {RELAY_FRONTEND}" in text
    assert "5559" not in text  # the example once named a port nothing listens on
    assert "(default: sensor)" in text and "automatic without a display" in text
    assert "dropping frames when analysis is slower" in text and "TOML if it ends in .toml, else JSON" in text


def test_first_signal_asks_to_stop_and_the_second_stops_at_once():
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stop, caught = threading.Event(), []
    previous = cli._on_signals(stop, caught)
    try:
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set() and caught == [signal.SIGINT]  # a clean shutdown, no exception
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # a second SIGTERM ends the process
        with pytest.raises(KeyboardInterrupt):  # ...and a second Ctrl-C exits 130 (engine/cli.py)
            signal.raise_signal(signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_sigterm_shuts_down_cleanly_with_a_summary_and_a_last_heartbeat(tmp_path):
    video = write_video(tmp_path / "v.avi", [coded_frame(True)] * 300, fps=30)
    with Subscriber("tcp://127.0.0.1:*", bind=True) as game:
        command = cli.sensor_command(str(video), game.endpoint,
                                     extra=["--connect", "--model", str(tiny_model(tmp_path / "m.onnx"))])
        assert command[1:4] == ["-m", "moodloop.sensor", "--source"] and "--headless" in command
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert next(game.messages(timeout=20), None), "the sensor published nothing"  # it is running
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        received = list(game.messages(timeout=0.5))
    assert process.returncode == 128 + signal.SIGTERM and "frames analysed" in err  # stopped, not ended
    last = received[-1] if received else None
    assert isinstance(last, Status) and last.camera == "none"  # the final heartbeat left before the exit


@pytest.mark.skipif(not FER_ZIP.exists(), reason="needs ../shared/data/fer2013")
def test_haar_tracks_a_real_face_in_a_video(tmp_path):
    detector = HaarDetector()
    face = next(f for f in fer_faces("happy", 20) if detector.detect(scene(f, face_px=220)))
    frames = (scene(face, face_px=220, offset=(round(15 * np.sin(i / 8)), 0), seed=i % 4) for i in range(60))
    video = write_video(tmp_path / "fer.avi", frames, fps=30)  # in tmp only: never commit dataset videos
    found = 0
    tracker = PlayerTracker(detector)
    with Capture(VideoSource(video), lossless=True, paced=False) as capture:
        for frame in capture.frames(threading.Event()):
            found += tracker.locate(frame.image, frame.clock) is not None
    assert found >= 57
