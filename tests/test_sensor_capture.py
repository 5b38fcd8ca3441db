"""Capture: newest-frame hand-off, file clocks, camera loss and recovery, unreadable frames."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest

from moodloop.engine.errors import SourceError
from moodloop.sensor.capture import (
    CameraSource,
    Capture,
    EndOfSource,
    FakeCamera,
    ImageFolderSource,
    VideoSource,
    open_source,
)
from moodloop.sensor.config import CaptureConfig
from moodloop.sensor.synthetic import write_video

FAST_RETRY = CaptureConfig(lost_after=5, retry_s=0.01, retry_max_s=0.02)


def gray(i: int) -> np.ndarray:
    return np.full((24, 32, 3), i % 256, np.uint8)


class ScriptedFile:
    """A file source at 10 fps reading a script: an image, None (undecodable) or an error to raise."""

    name = "scripted file"
    live = False
    fps = 10.0

    def __init__(self, *script: np.ndarray | Exception | None) -> None:
        self._script = iter(script)

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray | None:
        item = next(self._script, EndOfSource())
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        pass


def test_slow_consumer_gets_the_newest_frame_and_drops_are_counted():
    with Capture(FakeCamera(gray, fps=500)) as capture:
        seen = []
        for _ in range(5):
            time.sleep(0.03)
            seen.append(capture.read(timeout=1.0).index)
        stats = capture.stats()
    assert stats.dropped > 0 and stats.camera == "ok"
    assert all(b - a > 1 for a, b in zip(seen, seen[1:], strict=False))  # frames skipped, not queued


def test_lossless_video_hands_over_every_frame_on_video_time(tmp_path):
    video = write_video(tmp_path / "v.avi", (gray(i * 20) for i in range(12)), fps=24)
    with Capture(VideoSource(video), lossless=True, paced=False) as capture:
        frames = list(capture.frames(threading.Event()))
        assert capture.stats().camera == "none"
    assert [f.index for f in frames] == list(range(12))
    assert [f.clock for f in frames] == pytest.approx([i / 24 for i in range(12)])
    assert frames[-1].t >= frames[0].t


def test_paced_video_plays_at_its_frame_rate(tmp_path):
    video = write_video(tmp_path / "v.avi", (gray(i) for i in range(10)), fps=50)
    start = time.monotonic()
    with Capture(VideoSource(video), lossless=True) as capture:
        list(capture.frames(threading.Event()))
    assert time.monotonic() - start >= 9 / 50


def test_missing_camera_suggests_another_source():
    with pytest.raises(SourceError, match="--source"), Capture(FakeCamera(gray, missing=True)):
        pass
    with pytest.raises(SourceError, match="Try --source 43"):
        CameraSource(42).open()


def test_camera_lost_then_recovers_by_itself(caplog):
    caplog.set_level(logging.INFO)
    camera = FakeCamera(gray, fps=400, fail_reads=range(20, 25), fail_opens=2)  # unplugged once
    cameras = []
    with Capture(camera, FAST_RETRY) as capture:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (cameras[-2:] == ["lost", "ok"]):
            frame = capture.read(timeout=0.01)
            state = capture.stats().camera
            if not cameras or cameras[-1] != state:
                cameras.append(state)
            if frame is not None and frame.index > 40:
                break
        stats = capture.stats()
    assert "lost" in cameras and cameras[-1] == "ok"
    assert camera.opens == 1 + 2 + 1  # first open, two failed retries, the one that worked
    assert caplog.text.count("lost; retrying") == caplog.text.count("is back") == 1
    assert stats.unreadable >= FAST_RETRY.lost_after


def test_a_camera_that_opens_but_sends_nothing_is_retried_ever_more_slowly(caplog):
    camera = FakeCamera(gray, fps=400, fail_reads=range(5, 10**9))  # reopens fine, reads nothing
    with caplog.at_level(logging.INFO), Capture(camera, CaptureConfig(lost_after=5, retry_s=0.01,
                                                                       retry_max_s=0.16)) as capture:
        capture.read(timeout=0.7)
        time.sleep(0.7)
        assert capture.stats().camera == "lost"
    # waits of 0.01, 0.02, 0.04, 0.08, 0.16 s...: a handful of reopens, not one every 25 ms
    assert 4 <= camera.opens <= 10
    assert caplog.text.count("lost; retrying") == 1 and "is back" not in caplog.text


def test_unreadable_frames_are_skipped_and_counted():
    camera = FakeCamera(gray, fps=400, fail_reads={3, 7})
    with Capture(camera, FAST_RETRY, lossless=True) as capture:
        frames = [capture.read(timeout=1.0) for _ in range(8)]
        assert capture.stats().unreadable == 2 and capture.stats().camera == "ok"
    assert [f.index for f in frames] == list(range(8))


def test_undecodable_file_frames_keep_the_video_clock():
    with Capture(ScriptedFile(gray(0), None, gray(2)), lossless=True, paced=False) as capture:
        frames = list(capture.frames(threading.Event()))
        assert capture.stats().unreadable == 1
    assert [(f.index, f.clock) for f in frames] == [(0, 0.0), (2, pytest.approx(0.2))]


def test_a_source_failing_mid_stream_ends_the_capture_with_its_error():
    with Capture(ScriptedFile(gray(0), OSError("disk gone"))) as capture:
        assert capture.read(timeout=1.0).index == 0
        with pytest.raises(SourceError, match="disk gone.*--source"):
            capture.read(timeout=1.0)  # before the fix: None forever, the sensor never ended
        assert capture.stats().camera == "none"


@pytest.mark.parametrize(("kept", "warned"), [(0.5, True), (1.0, False)])
def test_a_video_ending_before_its_announced_length_is_reported(tmp_path, caplog, kept, warned):
    # an .avi announces its frame count in the header; cutting the file keeps the header
    video = write_video(tmp_path / "v.avi", (gray(i) for i in range(60)), fps=30)
    data = video.read_bytes()
    video.write_bytes(data[:round(len(data) * kept)])
    with caplog.at_level(logging.WARNING), Capture(VideoSource(video), lossless=True, paced=False) as capture:
        frames = list(capture.frames(threading.Event()))
    assert len(frames) < 60 if warned else len(frames) == 60
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned
    assert not warned or f"ended after {len(frames)} of the 60 frames" in warnings[0]


def test_image_folder_is_a_slideshow(tmp_path):
    for name, value in (("a.png", 10), ("b.png", 200)):
        cv2.imwrite(str(tmp_path / name), gray(value))
    (tmp_path / "notes.txt").write_text("not an image")
    source = ImageFolderSource(tmp_path, CaptureConfig(image_seconds=0.5, image_fps=4))
    source.open()
    images = [source.read() for _ in range(4)]
    with pytest.raises(EndOfSource):
        source.read()
    assert [int(img[0, 0, 0]) for img in images] == [10, 10, 200, 200]


def test_an_image_that_cannot_be_decoded_is_named_and_skipped(tmp_path, caplog):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((8, 8, 3), 10, np.uint8))
    (tmp_path / "b.png").write_bytes(b"not a png")
    cv2.imwrite(str(tmp_path / "c.png"), np.full((8, 8, 3), 200, np.uint8))
    source = ImageFolderSource(tmp_path, CaptureConfig(image_seconds=0.5, image_fps=4))
    source.open()
    frames = [source.read() for _ in range(6)]
    with pytest.raises(EndOfSource):
        source.read()
    # its slide's frames are unreadable, so frame numbers still map to images (frame // 2)
    assert [None if f is None else int(f[0, 0, 0]) for f in frames] == [10, 10, None, None, 200, 200]
    assert caplog.text.count("b.png") == 1


def test_sources_with_nothing_decodable_are_errors_not_empty_results(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"not a png")
    video = write_video(tmp_path / "v.avi", (gray(i) for i in range(30)), fps=30)
    header_only = tmp_path / "header.avi"
    data = video.read_bytes()
    header_only.write_bytes(data[:data.find(b"movi") + 4])  # opens, announces 30 frames, holds none
    for source, complaint in ((ImageFolderSource(tmp_path / "bad"), "None of the 1 images"),
                              (VideoSource(header_only), "No frame of .*header.avi could be decoded")):
        with Capture(source, lossless=True, paced=False) as capture:
            with pytest.raises(SourceError, match=complaint):
                list(capture.frames(threading.Event()))


def test_a_damaged_frame_inside_a_video_is_skipped_not_the_end(tmp_path, caplog):
    video = write_video(tmp_path / "v.avi", (np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8)
                                             for i in range(90)), fps=30)
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20_000] = np.random.default_rng(0).integers(0, 255, 20_000, np.uint8).tobytes()
    video.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING), Capture(VideoSource(video), lossless=True, paced=False) as capture:
        frames = list(capture.frames(threading.Event()))
        unreadable = capture.stats().unreadable
    assert unreadable >= 1 and len(frames) + unreadable == 90  # went on past it, to the end (not 83 frames)
    assert frames[-1].index == 89 and frames[-1].clock == pytest.approx(89 / 30)
    assert "ended after" not in caplog.text


def test_open_source_dispatch(tmp_path, monkeypatch, caplog):
    assert isinstance(open_source("0"), CameraSource)
    assert isinstance(open_source(str(tmp_path)), ImageFolderSource)
    cv2.imwrite(str(tmp_path / "face.PNG"), gray(7))  # one image: a slideshow of one, not a 1-frame video
    one = open_source(str(tmp_path / "face.PNG"), CaptureConfig(image_seconds=1.0, image_fps=3))
    one.open()
    assert [int(one.read()[0, 0, 0]) for _ in range(3)] == [7, 7, 7]
    (tmp_path / "face.PNG").unlink()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "2024").mkdir()  # a folder named like a camera index: still the camera, with a hint
    assert isinstance(open_source("2024"), CameraSource) and "pass --source ./2024" in caplog.text
    assert isinstance(open_source("./2024"), ImageFolderSource)
    (tmp_path / "by-id").symlink_to("/dev/video5")  # as udev names a camera
    assert [open_source(s).index for s in ("/dev/video3", str(tmp_path / "by-id"))] == [3, 5]  # live, reconnecting
    with pytest.raises(SourceError, match="not a camera index"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="No images"):
        open_source(str(tmp_path)).open()
    with pytest.raises(SourceError, match="--source is empty"):
        open_source("")  # not the current folder


class StuckCamera(FakeCamera):
    """A camera whose second read blocks until released, as a USB camera can on unplugging."""

    def __init__(self) -> None:
        super().__init__(gray)
        self.reading, self.release, self.closed = threading.Event(), threading.Event(), threading.Event()
        self.closed_while_reading = False

    def read(self) -> np.ndarray | None:
        if self._reads == 1:
            self.reading.set()
            self.release.wait(5)
            self.reading.clear()
        return super().read()

    def close(self) -> None:
        self.closed_while_reading |= self.reading.is_set()
        self.closed.set()


def test_close_never_releases_a_camera_that_is_still_being_read(monkeypatch):
    monkeypatch.setattr("moodloop.sensor.capture._JOIN_S", 0.05)
    camera = StuckCamera()
    with Capture(camera) as capture:
        capture.read(timeout=0)  # the first read starts the capture thread
        assert camera.reading.wait(2)
    assert not camera.closed.is_set()  # close() gave up waiting: the thread still owns the camera
    camera.release.set()
    assert camera.closed.wait(2) and not camera.closed_while_reading


def test_a_slow_video_keeps_its_frame_rate_and_a_nonsense_one_is_warned_of(tmp_path, caplog):
    rates = []
    for fps in (0.5, 0.05):  # a time-lapse at one frame every 2 s; a container's nonsense
        source = VideoSource(write_video(tmp_path / f"{fps}.avi", (gray(i) for i in range(3)), fps=fps))
        source.open()
        rates.append(source.fps)
        source.close()
    assert rates == [0.5, 30.0] and "reports 0.05 frames per second; its clock assumes 30" in caplog.text


def test_a_video_plays_from_the_first_read_not_from_opening(tmp_path):
    video = write_video(tmp_path / "v.avi", (gray(i) for i in range(30)), fps=30)
    with Capture(VideoSource(video)) as capture:
        time.sleep(0.3)  # the rest of the sensor starting up (a model, a socket, a pipe's reader)
        assert capture.read(timeout=1.0).index == 0  # before: about the 9th frame
