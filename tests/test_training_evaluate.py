"""The evaluation arithmetic on hand-checked numbers: confusion orientation and macro-F1."""

import numpy as np
import pytest

from moodloop.training.evaluate import evaluate
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


def test_data_classes_map_to_model_columns_by_name():
    columns = label_columns(("happy", "sad", "angry"), ("angry", "happy"))
    assert columns.tolist() == [2, 0]
