"""Export a training run as the one file the sensor loads: ONNX with moodloop metadata.

The graph takes ``input`` float32 [N, 1, 48, 48] (N dynamic) and returns ``probs`` (softmax
inside the graph). Weights are stored as float16 by default, each followed by a Cast to
float32, so the file is half the size (a ResNet34 is 85 MB in float32) while every
computation stays float32; ``fp16=False`` keeps float32 storage. The exporter is torch's
``torch.export``-based one (the TorchScript exporter is deprecated).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moodloop.engine.errors import ModelError
from moodloop.engine.outputs import writable_file
from moodloop.training.data import IMAGE_SIZE, Split
from moodloop.training.predict import (OnnxPredictor, Predictor, RunPredictor, label_columns, reading_model,
                                       written_whole)

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = ["ExportConfig", "export", "exported_weights", "provenance", "Parity", "compare", "parity"]

_FP16_SUFFIX = "__fp16"  # a float16-stored initializer's name; a Cast restores the original name
_MODEL_PREFIX = "0."  # the model is module 0 of the exported Sequential(model, Softmax)


@dataclass(frozen=True)
class ExportConfig:
    """What ``moodloop export`` does.

    Attributes:
        run: the training run folder.
        out: the .onnx file to write; None for ``<run>/<run name>.onnx``.
        fp16: store weights as float16 (compute stays float32).
        checkpoint: which checkpoint of the run, "best" or "last".
    """

    run: Path
    out: Path | None = None
    fp16: bool = True
    checkpoint: str = "best"


def export(config: ExportConfig) -> Path:
    """Export the run's checkpoint to ONNX, check that the sensor loads it, return its path.

    Raises:
        ConfigError: the output file cannot be written (checked first).
        ModelError: the run or checkpoint is missing, or the result does not load in the sensor.
    """
    import onnx
    import torch
    from onnxscript.optimizer import fold_constants, remove_unused_nodes

    from moodloop.sensor.classify import Classifier, ModelInfo

    out = config.out or config.run / f"{config.run.name}.onnx"
    writable_file(out, "--out")
    learner = RunPredictor(config.run, config.checkpoint, device="cpu")
    net = torch.nn.Sequential(learner.learn.model, torch.nn.Softmax(dim=1)).eval().float()
    net = net.to(memory_format=torch.contiguous_format)
    program = torch.onnx.export(net, (torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE),), dynamo=True,
                                input_names=["input"], output_names=["probs"],
                                dynamic_shapes=({0: torch.export.Dim("N")},), external_data=False,
                                verbose=False, optimize=False)
    # optimize=False keeps every parameter and BatchNorm statistic as an initializer named after
    # the module path, so the shipped file doubles as `moodloop train --init` weights. Folding
    # constants removes the exporter's zero-bias Expand nodes, which otherwise stop onnxruntime
    # from fusing BatchNorm, ReLU and the residual Add into the convolutions when the sensor
    # loads the file (measured: docs/sensor.md).
    fold_constants(program.model)
    remove_unused_nodes(program.model)  # and the constants that fed them
    model = program.model_proto
    if config.fp16:
        model = _fp16_storage(model)
    info = ModelInfo(out, learner.labels, channels=1, height=IMAGE_SIZE, width=IMAGE_SIZE, mean=(learner.norm.mean,),
                     std=(learner.norm.std,), provenance=provenance(config.run, config.checkpoint, config.fp16))
    entry = model.metadata_props.add()
    entry.key, entry.value = "moodloop", info.to_metadata()
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(out) as partial:  # the file at ``out`` stays until its successor loads
        onnx.save(model, str(partial))
        Classifier(partial)  # the sensor's own loader validates the graph and the metadata
    return out


def _fp16_storage(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store every float32 initializer of an ONNX model as float16 plus a Cast back to float32.

    Args:
        model: the model; changed in place and returned.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            name = tensor.name
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16),
                                                    name + _FP16_SUFFIX))
            casts.append(helper.make_node("Cast", [name + _FP16_SUFFIX], [name], to=TensorProto.FLOAT,
                                          name=f"{name}__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model


def exported_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read the model's state dict back from an exported file (initializers keep module paths).

    Args:
        path: an .onnx file written by ``export``, float16 or float32 storage.

    Raises:
        ModelError: the file is not an ONNX model, holds no weights under the module paths an
            export gives them, or holds int8 weights (``moodloop quantize``).
    """
    import onnx
    import torch
    from onnx import numpy_helper

    with reading_model(path):
        model = onnx.load(str(path))
    made = json.loads({p.key: p.value for p in model.metadata_props}.get("moodloop", "{}")).get("provenance", {})
    if "int8" in made:  # convolutions fused with their BatchNorms, then rounded: not trainable weights
        raise ModelError(f"{path} holds int8 weights made by `moodloop quantize` from {made['int8']['source']}; "
                         "training needs the float model it was made from (for the shipped model, see "
                         '"Float weights" in docs/model.md).')
    weights = {t.name.removesuffix(_FP16_SUFFIX).removeprefix(_MODEL_PREFIX):
               torch.from_numpy(numpy_helper.to_array(t).astype(np.float32))
               for t in model.graph.initializer if t.name.startswith(_MODEL_PREFIX)}
    if not weights:
        raise ModelError(f"{path} holds no weights named as `moodloop export` names them (another program's "
                         "model?); pass an .onnx written by `moodloop export`, or a run folder.")
    return weights


def provenance(run: Path, checkpoint: str, fp16: bool) -> dict:
    """Describe where an exported model came from: data, recipe, metrics, software, date."""
    import fastai
    import onnx
    import torch

    from moodloop.training.train import read_history, read_run

    record = read_run(run)
    epoch = record.get("best_epoch") if checkpoint == "best" else record.get("epochs_done")
    history = read_history(run)
    return {
        "run": run.name,
        "checkpoint": checkpoint,
        "data": {"layout": record.get("layout"), "train_images": record.get("train_images"),
                 "valid_images": record.get("valid_images"), "classes": record["classes"]},
        "recipe": record["recipe"],
        # The models it started from and learnt from, as the run was given them.
        "init": record.get("init"),
        "teachers": record.get("teachers", []),
        "metrics": {"epoch": epoch, "epochs_done": record.get("epochs_done"),
                    "valid_accuracy": record.get("best_accuracy") if checkpoint == "best" else None,
                    **history.get(epoch, {})},
        "storage": "float16 weights, float32 compute" if fp16 else "float32",
        "software": {"torch": torch.__version__, "fastai": fastai.__version__, "onnx": onnx.__version__},
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class Parity:
    """How closely a model file reproduces a reference model on the same images.

    Attributes:
        images: images compared.
        agreement: share of images where both predict the same class.
        max_prob_diff: largest absolute difference of any class probability.
        reference_accuracy: the reference's accuracy (the fastai learner in float32, or the
            float model a quantized one was made from).
        model_accuracy: the model file's accuracy.
    """

    images: int
    agreement: float
    max_prob_diff: float
    reference_accuracy: float
    model_accuracy: float

    def to_dict(self) -> dict:
        """Return the figures as plain JSON-ready values."""
        return asdict(self)


def compare(reference: Predictor, model: Predictor, split: Split, classes: tuple[str, ...]) -> Parity:
    """Score two models on ``split`` and measure how closely ``model`` follows ``reference``.

    Args:
        reference: the model to match.
        model: the model under test.
        split: labelled images to score.
        classes: the split's class names (matched to the model labels by name).
    """
    a, b = reference.predict(split.images), model.predict(split.images)
    b = b[:, label_columns(model.labels, reference.labels)]  # same order, whatever the file says
    actual = label_columns(reference.labels, classes)[split.labels]
    return Parity(len(split), float((a.argmax(1) == b.argmax(1)).mean()), float(np.abs(a - b).max()),
                  float((a.argmax(1) == actual).mean()), float((b.argmax(1) == actual).mean()))


def parity(run: Path, onnx_path: Path, split: Split, classes: tuple[str, ...],
           checkpoint: str = "best", device: str | None = None) -> Parity:
    """Compare the run's fastai learner and the exported ONNX model on ``split`` (see ``compare``).

    Args:
        run: the training run folder.
        onnx_path: the exported model.
        split: labelled images to score.
        classes: the split's class names.
        checkpoint: the checkpoint the ONNX model was exported from.
        device: where the learner runs.
    """
    return compare(RunPredictor(run, checkpoint, device), OnnxPredictor(onnx_path), split, classes)
