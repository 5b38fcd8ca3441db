"""Face detection and player selection: a stable player, held through short gaps."""

from __future__ import annotations

import numpy as np
import pytest
from test_sensor_classify import tiny_model

from moodloop.engine.errors import ModelError
from moodloop.sensor.config import DetectConfig
from moodloop.sensor.detect import Face, HaarDetector, PlayerTracker, YuNetDetector, make_detector
from moodloop.sensor.synthetic import cartoon_face, scene

FRAME = np.zeros((480, 640, 3), np.uint8)
PLAYER = Face(260, 160, 120, 120)
BYSTANDER = Face(500, 40, 90, 90)


class ScriptedDetector:
    """Returns the scripted faces for each call; records whether it was asked to track."""

    def __init__(self, script: list[list[Face]]) -> None:
        self.script = script
        self.calls: list[bool] = []

    def detect(self, frame: np.ndarray, near: Face | None = None) -> list[Face]:
        self.calls.append(near is not None)
        return self.script[min(len(self.calls) - 1, len(self.script) - 1)]


def test_face_geometry():
    assert PLAYER.iou(PLAYER) == 1.0 and PLAYER.iou(BYSTANDER) == 0.0
    assert Face(10, 10, 10, 10).grown(0.5) == (5, 5, 20, 20)


def test_largest_most_central_face_is_the_player_and_stays_so():
    moved = Face(270, 165, 120, 120)
    big_newcomer = Face(0, 0, 300, 300)
    tracker = PlayerTracker(ScriptedDetector([[BYSTANDER, PLAYER], [moved, big_newcomer]]))
    assert tracker.locate(FRAME, 0.0) == PLAYER
    assert tracker.locate(FRAME, 0.1) == moved  # the same person, not the bigger newcomer


def test_short_gap_holds_the_last_face_then_lets_go():
    config = DetectConfig(hold_s=0.5)
    tracker = PlayerTracker(ScriptedDetector([[PLAYER], [], [], []]), config)
    assert tracker.locate(FRAME, 0.0) == PLAYER and not tracker.held
    assert tracker.locate(FRAME, 0.3) == PLAYER and tracker.held
    assert tracker.locate(FRAME, 0.6) is None and not tracker.held


def test_player_gone_for_good_hands_over_to_someone_else():
    tracker = PlayerTracker(ScriptedDetector([[PLAYER], [BYSTANDER]]), DetectConfig(hold_s=0.5))
    tracker.locate(FRAME, 0.0)
    assert tracker.locate(FRAME, 0.2) == PLAYER  # still held: a bystander does not steal it
    assert tracker.locate(FRAME, 1.0) == BYSTANDER


def test_tracks_in_a_region_between_full_scans():
    detector = ScriptedDetector([[PLAYER]])
    tracker = PlayerTracker(detector, DetectConfig(full_every=3))
    for i in range(8):
        tracker.locate(FRAME, i / 30)
    assert detector.calls == [False, True, True, True, False, True, True, True]


def test_haar_finds_and_tracks_a_drawn_face():
    detector = HaarDetector()
    frame = scene(cartoon_face(), face_px=200)
    (face,) = detector.detect(frame)
    assert abs(face.x + face.w / 2 - 320) < 30 and abs(face.y + face.h / 2 - 240) < 30
    (tracked,) = detector.detect(frame, near=face)
    assert tracked.iou(face) > 0.7
    assert detector.detect(FRAME) == []


def test_a_hint_outside_a_smaller_frame_falls_back_to_a_full_scan():
    detector = HaarDetector()
    small = scene(cartoon_face(), size=(320, 240), face_px=120)
    (face,) = detector.detect(small, near=Face(900, 700, 200, 200))  # where a bigger picture had it
    assert abs(face.x + face.w / 2 - 160) < 20


def test_picture_size_changes_drop_the_track():
    detector = ScriptedDetector([[Face(900, 700, 200, 200)], [PLAYER]])
    tracker = PlayerTracker(detector)
    tracker.locate(np.zeros((960, 1280, 3), np.uint8), 0.0)
    assert tracker.locate(FRAME, 0.1) == PLAYER
    assert detector.calls == [False, False]  # the second frame was scanned whole, not tracked


def test_the_smallest_face_is_a_share_of_the_frame_not_of_the_detect_width():
    frame = scene(cartoon_face(), face_px=100)  # 16 % of 640 px, above min_face 0.15
    assert len(HaarDetector(DetectConfig(detect_width=2000)).detect(frame)) == 1


def test_yunet_needs_a_model_file(tmp_path):
    with pytest.raises(ModelError, match="YuNet model"):
        make_detector(DetectConfig(yunet=str(tmp_path / "missing.onnx")))
    (tmp_path / "bad.onnx").write_bytes(b"nope")
    with pytest.raises(ModelError, match="not a YuNet"):
        YuNetDetector(tmp_path / "bad.onnx")


def test_an_onnx_file_that_is_not_yunet_fails_at_load_not_on_the_first_frame(tmp_path, capfd):
    # OpenCV loads any ONNX graph as a FaceDetectorYN: only running it shows it is not YuNet
    with pytest.raises(ModelError, match="not a YuNet face detector.*Haar cascade"):
        make_detector(DetectConfig(yunet=str(tiny_model(tmp_path / "emotions.onnx"))))
    assert "ERROR" not in capfd.readouterr().err  # OpenCV's own log lines would precede our message
