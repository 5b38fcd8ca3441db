"""Make a float moodloop model cheaper for the sensor: int8 convolutions and, optionally, the
mirrored face averaged in inside the graph.

onnxruntime's static quantizer calibrates the activations on training faces and stores each
convolution's weights as per-channel int8 (QDQ format). Measured on the shipped ResNet34
(docs/model-sessions.md, session 10): 4.3x faster a face on one core with no loss of accuracy
beyond noise, which pays for averaging the face with its mirror (flip test-time augmentation) and
still halves the cost of the float model.

Blank faces are left out of the calibration: one blank training image (all pixels equal) drove
a convolution's output to 548 where 511 faces stayed under 12, the min-max ranges widened
20-50x and accuracy fell to about 50 %. Weights use 7 of their 8 bits (``reduce_range``), which
onnxruntime advises for x86 CPUs without VNNI, where the full range can saturate.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from moodloop.engine.errors import DataError, ModelError
from moodloop.sensor.classify import Classifier
from moodloop.training.clean import CleanConfig, pixel_std
from moodloop.training.predict import OnnxPredictor, written_whole

__all__ = ["QuantizeConfig", "quantize"]

_BATCH = 32  # calibration images per onnxruntime call


@dataclass(frozen=True)
class QuantizeConfig:
    """What ``moodloop quantize`` does.

    Attributes:
        model: the float .onnx model (``moodloop export`` writes one).
        out: the .onnx file to write.
        flip: average each face's probabilities with its mirror's inside the graph.
    """

    model: Path
    out: Path
    flip: bool = False


def quantize(config: QuantizeConfig, faces: np.ndarray) -> Path:
    """Write the int8 version of ``config.model``, check that the sensor loads it, return its path.

    Args:
        config: source, destination and whether to add the mirrored view.
        faces: uint8 gray training faces [N, 48, 48] that calibrate the activation ranges
            (a few hundred suffice; never validation images, which score the result). Blank
            ones are skipped.

    Raises:
        ModelError: the source is missing, not a moodloop model, or already quantized.
        DataError: no calibration face is left.
    """
    source = OnnxPredictor(config.model)
    if "int8" in source.info.provenance:
        raise ModelError(f"{config.model} is already quantized; pass the float model it was made from "
                         f"({source.info.provenance['int8']['source']}).")
    faces = faces[pixel_std(faces) >= CleanConfig().blank_std]
    if not len(faces):
        raise DataError("Quantization needs calibration faces, and the data gave none that are not blank.")
    with tempfile.TemporaryDirectory() as tmp:
        prepared, int8 = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        # Folds the float16 storage casts and the BatchNorms into the convolutions first.
        quant_pre_process(str(config.model), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(int8), _Batches(source, faces), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        model = onnx.load(str(int8))
    if config.flip:
        _average_with_mirror(model, len(source.labels))
    info = replace(source.info, provenance={**source.info.provenance, "int8": {
        "source": config.model.name,
        "source_sha256": hashlib.sha256(config.model.read_bytes()).hexdigest(),
        "calibration_images": len(faces),
        "method": "onnxruntime static QDQ, per-channel 7-bit weights, uint8 activations (MinMax)",
        "flip": config.flip,
    }})
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "moodloop", info.to_metadata()
    config.out.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(config.out) as partial:
        onnx.save(model, str(partial))
        Classifier(partial)  # the sensor's own loader validates the graph and the metadata
    return config.out


class _Batches(CalibrationDataReader):
    """The calibration faces, as the model's inputs, a batch at a time."""

    def __init__(self, model: OnnxPredictor, faces: np.ndarray) -> None:
        self._batches = (model.inputs(faces[i:i + _BATCH]) for i in range(0, len(faces), _BATCH))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"input": batch}


def _average_with_mirror(model: onnx.ModelProto, classes: int) -> None:
    """Rewire the graph to run the batch and its mirror images together and average the two."""
    graph = model.graph
    given, result = graph.input[0].name, graph.output[0].name
    for node in graph.node:  # the network now reads both views and writes both answers
        node.input[:] = ["mirror_both" if name == given else name for name in node.input]
        node.output[:] = ["mirror_probs" if name == result else name for name in node.output]
    graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), name) for name, v in (
        ("mirror_start", [-1]), ("mirror_end", [np.iinfo(np.int64).min]), ("mirror_axis", [3]),
        ("mirror_step", [-1]), ("mirror_shape", [2, -1, classes]), ("mirror_views", [0])))
    before = [helper.make_node("Slice", [given, "mirror_start", "mirror_end", "mirror_axis", "mirror_step"],
                               ["mirror_image"]),  # reversed along the width
              helper.make_node("Concat", [given, "mirror_image"], ["mirror_both"], axis=0)]
    after = [helper.make_node("Reshape", ["mirror_probs", "mirror_shape"], ["mirror_pairs"]),
             helper.make_node("ReduceMean", ["mirror_pairs", "mirror_views"], [result], keepdims=0)]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(before + nodes + after)
