"""Score images with a model: an exported ONNX file or a training run's fastai checkpoint.

Both kinds answer the same question (class probabilities for uint8 48x48 gray faces), so
evaluation, cleaning and the parity check treat them alike. ONNX models run through
onnxruntime only, and their metadata is read by the sensor's own loader, so training scores
exactly what the sensor will run. Only the training commands (evaluate, clean, export) ever
load a ``.pth`` checkpoint, and always with ``torch.load(weights_only=True)``: tensors only,
no pickled code runs. The sensor and games load ONNX files alone. Export and training write
these files whole or not at all (``written_whole``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from moodloop.engine.errors import DataError, ModelError
from moodloop.training.data import IMAGE_SIZE, Split

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders

__all__ = ["Predictor", "OnnxPredictor", "RunPredictor", "load_predictor", "label_columns", "weights_file",
           "written_whole"]


class Predictor(Protocol):
    """Anything that turns images into class probabilities."""

    name: str
    labels: tuple[str, ...]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Return float32 probabilities [N, len(labels)] for uint8 gray images [N, 48, 48]."""


@dataclass
class OnnxPredictor:
    """An exported moodloop ONNX model, run batch-wise through onnxruntime.

    Args:
        path: the .onnx file.
        batch_size: images per onnxruntime call.

    Attributes:
        info: what the file's metadata says about the model.
        metadata: that metadata as stored (JSON).
    """

    path: Path
    batch_size: int = 256

    def __post_init__(self) -> None:
        import onnxruntime as ort

        from moodloop.sensor.classify import ModelInfo

        if not self.path.is_file():
            raise ModelError(f"Model file {self.path} not found.")
        try:
            self._session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises untyped errors for bad files
            raise ModelError(f"{self.path} is not a loadable ONNX model ({exc}).") from exc
        self.metadata = self._session.get_modelmeta().custom_metadata_map.get("moodloop")
        self.info = ModelInfo.from_metadata(self.path, self.metadata)
        self.name, self.labels = self.path.name, self.info.labels

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Return float32 probabilities [N, K] (see Predictor)."""
        return np.concatenate([self._run(images[i:i + self.batch_size])
                               for i in range(0, len(images), self.batch_size)])

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """Return the model's float32 input [N, C, H, W] for uint8 gray images [N, 48, 48]."""
        info = self.info
        if (info.height, info.width) != (IMAGE_SIZE, IMAGE_SIZE):
            images = np.stack([cv2.resize(i, (info.width, info.height), interpolation=cv2.INTER_AREA)
                               for i in images])
        x = np.repeat(images[:, None].astype(np.float32) / 255, info.channels, axis=1)  # gray to C
        return (x - np.float32(info.mean).reshape(1, -1, 1, 1)) / np.float32(info.std).reshape(1, -1, 1, 1)

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self._session.run(["probs"], {"input": self.inputs(images)})[0]


@dataclass
class RunPredictor:
    """A training run's checkpoint, scored by its fastai Learner in float32 (no bf16 autocast).

    Args:
        run: the run folder (``moodloop train --out``).
        checkpoint: checkpoint name in it, "best" or "last".
        device: "cpu", "cuda" or None for CUDA when available.
    """

    run: Path
    checkpoint: str = "best"
    device: str | None = None

    def __post_init__(self) -> None:
        from moodloop.training.recipe import Normalization, Recipe, build_learner, pick_device
        from moodloop.training.train import read_run

        record = read_run(self.run)
        if not (self.run / f"{self.checkpoint}.pth").is_file():
            raise ModelError(f"{self.run} has no {self.checkpoint}.pth checkpoint yet; "
                             f"it has {sorted(p.name for p in self.run.glob('*.pth')) or 'none'}.")
        self.device = pick_device(self.device)
        self.labels = tuple(record["classes"])
        self.name = self.run.name if self.checkpoint == "best" else f"{self.run.name}/{self.checkpoint}"
        self.recipe = replace(Recipe.from_dict(record["recipe"]), bf16=False)
        self.norm = Normalization(**record["normalization"])
        self.learn = build_learner(self._loaders(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.uint8)),
                                   self.recipe, len(self.labels), self.run)
        self.learn.load(self.checkpoint, with_opt=False, device=self.device, weights_only=True)

    def _loaders(self, images: np.ndarray) -> DataLoaders:
        from moodloop.training.recipe import build_dataloaders

        split = Split(images, np.zeros(len(images), np.int64), ("",) * len(images))
        return build_dataloaders(split, split, self.recipe, self.norm, self.device)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Return float32 probabilities [N, K] (see Predictor)."""
        with self.learn.no_bar():
            probs, _ = self.learn.get_preds(dl=self._loaders(images).valid)
        return probs.float().numpy()


def load_predictor(model: str | Path | None, device: str | None = None) -> Predictor:
    """Load a model for scoring.

    Args:
        model: an exported .onnx file; a run folder (its best.pth is used) or a .pth file in
            one; None for the shipped default model.
        device: where checkpoints run; ONNX models always run on onnxruntime's CPU provider.

    Raises:
        ModelError: the model is missing or not one of the kinds above.
    """
    if model is None:
        from moodloop.sensor.classify import DEFAULT_MODEL

        if not DEFAULT_MODEL.is_file():
            raise ModelError(f"The shipped model {DEFAULT_MODEL} is missing: train and export one "
                             "(`moodloop train`, `moodloop export --out ...`) or pass --model.")
        model = DEFAULT_MODEL
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        return OnnxPredictor(path)
    if path.suffix.lower() == ".pth":
        return RunPredictor(path.parent, path.stem, device)
    if path.is_dir():
        return RunPredictor(path, device=device)
    raise ModelError(f"Cannot load model {path}: expected an .onnx file, a training run folder "
                     "(with run.json and best.pth) or a .pth checkpoint in one.")


def weights_file(model: Path) -> Path:
    """Return the file that holds a model's weights: a run folder's best.pth, else ``model`` itself."""
    return model / "best.pth" if model.is_dir() else model


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """Write ``path`` through a partial file next to it, yielded to the block.

    The partial file replaces ``path`` only when the block succeeds, and is removed otherwise,
    so a failure or a kill mid-write never leaves ``path`` half-written (a checkpoint that can
    no longer resume, a shipped model that no longer loads).
    """
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def label_columns(model_labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Return, for each data class, the model output column with the same name.

    Raises:
        DataError: a data class has no model label of that name (e.g. the model merged it:
            evaluate with the same ``--merge``).
    """
    missing = [c for c in classes if c not in model_labels]
    if missing:
        raise DataError(f"The data has classes {missing} that the model does not predict; the model "
                        f"knows {list(model_labels)}. Map them with --merge, e.g. --merge "
                        f"{missing[0]}={model_labels[0]}.")
    return np.array([list(model_labels).index(c) for c in classes], dtype=np.int64)
