"""The ONNX classifier: metadata validation, preprocessing, and clear errors for bad model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from moodloop.engine.errors import ModelError
from moodloop.engine.protocol import LABELS
from moodloop.sensor.classify import Classifier, crop_face
from moodloop.sensor.detect import Face

META = {
    "format": 1,
    "labels": list(LABELS),
    "input": {"channels": 1, "height": 48, "width": 48, "mean": [0.5], "std": [0.25]},
    "provenance": {"note": "test"},
}


def tiny_model(path: Path, meta: dict | None = META, *, classes: int = 7, size: int = 48,
               input_type: int = TensorProto.FLOAT, output_type: int = TensorProto.FLOAT) -> Path:
    """A linear softmax classifier over the pixels, with the moodloop input/output names and types."""
    weights = np.random.default_rng(0).normal(0, 0.01, (size * size, classes)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["input"], ["pixels"], to=TensorProto.FLOAT),
         helper.make_node("Flatten", ["pixels"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["softmax"], axis=1),
         helper.make_node("Cast", ["softmax"], ["probs"], to=output_type)],
        "tiny",
        [helper.make_tensor_value_info("input", input_type, ["N", 1, size, size])],
        [helper.make_tensor_value_info("probs", output_type, ["N", classes])],
        [helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    if meta is not None:
        helper.set_model_props(model, {"moodloop": json.dumps(meta)})
    onnx.save(model, str(path))
    return path


def test_classifies_a_face_into_a_distribution(tmp_path):
    classifier = Classifier(tiny_model(tmp_path / "m.onnx"))
    assert classifier.labels == LABELS and classifier.name == "m"
    frame = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    probs = classifier.classify(frame, Face(200, 150, 160, 160))
    assert probs.shape == (7,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert classifier.crop(frame, Face(200, 150, 160, 160)).shape == (48, 48)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (None, "malformed moodloop metadata"),
        ({**META, "format": 2}, "inconsistent"),
        ({**META, "labels": []}, "inconsistent"),
        ({**META, "input": {"channels": 1}}, "malformed"),
        ({**META, "labels": list(LABELS[:5])}, "do not match"),
    ],
)
def test_bad_metadata_is_a_model_error_naming_the_path(tmp_path, meta, message):
    path = tiny_model(tmp_path / "bad.onnx", meta)
    with pytest.raises(ModelError, match=message) as info:
        Classifier(path)
    assert str(path) in str(info.value) and '"probs"' in str(info.value)


def test_missing_and_non_onnx_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Classifier(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x80\x04 this is a pickle, not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX file"):
        Classifier(junk)


def test_input_size_mismatch_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="do not match"):
        Classifier(tiny_model(tmp_path / "m.onnx", size=64))


@pytest.mark.parametrize(
    ("types", "found"),
    [
        ({"input_type": TensorProto.FLOAT16}, r"inputs \[input tensor\(float16\)"),
        ({"input_type": TensorProto.UINT8}, r"inputs \[input tensor\(uint8\)"),
        ({"output_type": TensorProto.FLOAT16}, r"outputs \[probs tensor\(float16\)"),
    ],
)
def test_input_or_output_that_is_not_float32_is_refused_at_load(tmp_path, types, found):
    # onnxruntime would load it and fail (or return float16) only on the first face
    with pytest.raises(ModelError, match=found + r".*do not match .*input tensor\(float\).*probs tensor\(float\)"):
        Classifier(tiny_model(tmp_path / "m.onnx", **types))


def test_a_folder_given_as_the_model_is_named_a_directory(tmp_path):
    with pytest.raises(ModelError, match="is a directory"):
        Classifier(tmp_path)


def test_crop_is_square_with_margin_and_padded_at_the_border():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[40:60, 40:60] = 255
    crop = crop_face(frame, Face(40, 40, 20, 20), 0.5, (40, 40), gray=True)
    assert crop.shape == (40, 40) and crop[20, 20] == 255 and crop[2, 2] == 0  # margin: dark border
    edge = crop_face(frame, Face(0, 0, 30, 20), 0.2, (48, 48), gray=False)
    assert edge.shape == (48, 48, 3)
    frame[45:55, 45:55] = 128  # a negative margin keeps the middle of the box only
    inner = crop_face(frame, Face(40, 40, 20, 20), -0.25, (10, 10), gray=True)
    assert inner.shape == (10, 10) and (inner == 128).all()
