"""The evaluation arithmetic on hand-checked numbers: confusion orientation, macro-F1, and the
test-time augmentation views."""

import numpy as np
import pytest

from moodloop.engine.cli import build_parser
from moodloop.engine.errors import ConfigError
from moodloop.training.evaluate import TTA, comparison_table, evaluate, format_evaluation, score
from moodloop.training.predict import label_columns


def test_confusion_rows_are_actual_and_columns_predicted():
    labels = ("angry", "happy", "sad")
    actual = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 1])  # two angry right, one angry read as happy; sad missed
    result = evaluate(np.eye(3)[predicted], actual, labels)
    assert result.confusion == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert result.accuracy == pytest.approx(4 / 6) and result.images == 6
    assert result.per_class["angry"] == {"precision": 1.0, "recall": pytest.approx(2 / 3),
                                         "f1": pytest.approx(0.8), "support": 3}
    assert result.per_class["happy"]["precision"] == pytest.approx(0.5)
    assert result.per_class["sad"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result.macro_f1 == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)


def test_macro_f1_ignores_classes_absent_from_the_data():
    labels = ("angry", "happy", "sad")
    result = evaluate(np.eye(3)[[0, 2]], np.array([0, 0]), labels)  # one angry read as sad
    assert result.per_class["sad"]["support"] == 0 and result.per_class["sad"]["precision"] == 0.0
    assert result.macro_f1 == pytest.approx(result.per_class["angry"]["f1"])
    sad = format_evaluation(result).splitlines()[-1].split()  # no recall or F1 without a sad face
    assert sad == ["sad", "0.000", "-", "-", "0"]
    assert comparison_table([result]).splitlines()[1].split()[-1] == "-"


def test_data_classes_map_to_model_columns_by_name():
    columns = label_columns(("happy", "sad", "angry"), ("angry", "happy"))
    assert columns.tolist() == [2, 0]


class _Recorder:
    """A predictor that keeps every batch it sees and answers 'class 0' with the mean pixel."""

    name, labels = "recorder", ("bright", "dark")

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def predict(self, images: np.ndarray) -> np.ndarray:
        self.seen.append(images.copy())
        bright = images.reshape(len(images), -1).mean(1) / 255
        return np.stack([bright, 1 - bright], 1).astype(np.float32)


def test_ten_crop_averages_corner_and_centre_crops_and_their_mirrors():
    # A left-to-right ramp: every crop and mirror shows a different mean, so the views are told apart.
    ramp = np.tile(np.linspace(0, 250, 48).astype(np.uint8), (48, 1))
    images = np.stack([ramp, ramp[::-1].T])
    recorder = _Recorder()
    probs = score(recorder, images, "tencrop")
    assert len(recorder.seen) == 10 and all(v.shape == images.shape and v.dtype == np.uint8 for v in recorder.seen)
    left, right = recorder.seen[0][0], recorder.seen[2 * 1][0]  # top-left crop, top-right crop
    assert left.mean() < ramp.mean() < right.mean()  # corner crops shift the view
    assert np.array_equal(recorder.seen[1][0], left[:, ::-1])  # each crop is followed by its mirror
    assert np.allclose(probs, np.mean([recorder.predict(v) for v in recorder.seen[:10]], 0))


def test_flip_tta_and_unknown_names():
    recorder = _Recorder()
    images = np.arange(2 * 48 * 48, dtype=np.uint8).reshape(2, 48, 48)
    score(recorder, images, "flip")
    assert [v[0, 0, 0] for v in recorder.seen] == [images[0, 0, 0], images[0, 0, 47]]
    with pytest.raises(ConfigError, match="Unknown test-time augmentation 'fivecrop'"):
        score(recorder, images, "fivecrop")

    parser = build_parser()  # the CLI lists the choices as literals, to start without importing cv2
    for name in TTA:
        assert parser.parse_args(["evaluate", "--data", "d", "--tta", name]).tta == name
    assert parser.parse_args(["evaluate", "--data", "d", "--tta"]).tta == "flip"


def test_split_choices_include_all_for_a_plain_class_folder(capsys):
    parser = build_parser()
    assert parser.parse_args(["evaluate", "--data", "d", "--split", "all"]).split == "all"
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--data", "d", "--split", "test"])
    assert "choose from 'valid', 'train', 'all'" in capsys.readouterr().err
