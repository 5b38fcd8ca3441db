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

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from moodloop.engine.errors import ConfigError, DataError, ModelError, MoodloopError
from moodloop.training.data import IMAGE_SIZE, Split

if TYPE_CHECKING:
    from fastai.data.core import DataLoaders

__all__ = ["Predictor", "OnnxPredictor", "RunPredictor", "load_predictor", "label_columns", "weights_file",
           "reading_model", "written_whole", "RUN_FILE"]

RUN_FILE = "run.json"
"""A training run's record (``moodloop train --out``): what its checkpoints need to be rebuilt."""


class Predictor(Protocol):
    """Anything that turns images into class probabilities."""

    name: str
    labels: tuple[str, ...]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Return float32 probabilities [N, len(labels)] for uint8 gray images [N, 48, 48]."""


@dataclass
class OnnxPredictor:
    """An exported moodloop ONNX model, run batch-wise by the sensor's own Classifier.

    The training faces become crops as the sensor makes them for this model (its input size;
    BGR for a colour model), so scores are those of the sensor's preprocessing, not a copy of it.

    Args:
        path: the .onnx file.
        batch_size: images per onnxruntime call.

    Attributes:
        info: what the file's metadata says about the model.
    """

    path: Path
    batch_size: int = 256

    def __post_init__(self) -> None:
        from moodloop.sensor.classify import Classifier
        from moodloop.sensor.config import ClassifyConfig

        if self.path.is_dir():
            raise ModelError(f"{self.path} is a folder, not an .onnx file. For a training run folder, run "
                             f"`moodloop export --run {self.path}` first and pass the .onnx it writes.")
        # Every core: scoring a dataset has no game to leave one to.
        self._classifier = Classifier(self.path, ClassifyConfig(threads=min(os.cpu_count() or 1, 64)))
        self.info = self._classifier.info
        self.name, self.labels = self.path.name, self.info.labels

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Return float32 probabilities [N, K] (see Predictor)."""
        return np.concatenate([self._classifier.probabilities(self._crops(images[i:i + self.batch_size]))
                               for i in range(0, len(images), self.batch_size)])

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """Return the model's float32 input [N, C, H, W] for uint8 gray images [N, 48, 48]."""
        return self._classifier.inputs(self._crops(images))

    def _crops(self, images: np.ndarray) -> np.ndarray:
        info = self.info
        if (info.height, info.width) != (IMAGE_SIZE, IMAGE_SIZE):
            images = np.stack([cv2.resize(i, (info.width, info.height), interpolation=cv2.INTER_AREA)
                               for i in images])
        return images if info.channels == 1 else np.repeat(images[..., None], 3, axis=-1)  # gray as BGR


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
        with reading_model(self.run / f"{self.checkpoint}.pth"):
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
        if not (path.parent / RUN_FILE).is_file():  # without it nothing says which network the weights fit
            raise ModelError(f"{path}: a .pth checkpoint must sit in its training run folder, beside the "
                             f"{RUN_FILE} that `moodloop train` wrote, and {path.parent} has none. Pass the "
                             "checkpoint in its run folder (or the folder itself), or an exported .onnx.")
        return RunPredictor(path.parent, path.stem, device)
    if path.is_dir():
        return RunPredictor(path, device=device)
    raise ModelError(f"Cannot load model {path}: expected an .onnx file, a training run folder "
                     "(with run.json and best.pth) or a .pth checkpoint in one.")


def weights_file(model: Path) -> Path:
    """Return the file that holds a model's weights: a run folder's best.pth, else ``model`` itself."""
    return model / "best.pth" if model.is_dir() else model


_MODEL_KINDS = {
    ".onnx": ("an ONNX model", "pass an .onnx written by `moodloop export` or `moodloop quantize`"),
    ".pth": ("a moodloop checkpoint", "pass a best.pth or last.pth as `moodloop train` wrote it, in its run "
                                      "folder (a copy cut short cannot be read: copy it again)"),
}


@contextmanager
def reading_model(path: Path) -> Iterator[None]:
    """Report a model file that does not parse (damaged, or not a model at all) as a ModelError.

    torch, onnx and onnxruntime raise untyped errors for such files (KeyError, UnpicklingError,
    protobuf's DecodeError, RuntimeError...), so everything but a MoodloopError is caught.

    Args:
        path: the .onnx or .pth file read inside the block.
    """
    try:
        yield
    except MoodloopError:
        raise
    except Exception as exc:
        kind, advice = _MODEL_KINDS[".pth" if path.suffix.lower() == ".pth" else ".onnx"]  # ONNX files: any name
        why = re.split(r"(?<=\.)\s", str(exc).strip(), maxsplit=1)[0].rstrip(".")[:160]  # torch's run to pages
        raise ModelError(f"{path} is not {kind} ({type(exc).__name__}: {why}); {advice}.") from exc


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """Write ``path`` through a partial file next to it, yielded to the block.

    The partial file replaces ``path`` only when the block succeeds, and is removed otherwise,
    so a failure or a kill mid-write never leaves ``path`` half-written (a checkpoint that can
    no longer resume, a shipped model that no longer loads).

    Raises:
        ConfigError: the write failed (a full disk, no permission); ``path`` is as it was.
    """
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    try:
        yield partial
        partial.replace(path)
    except (OSError, RuntimeError) as exc:  # torch's writer reports a full disk as a RuntimeError
        free = shutil.disk_usage(path.parent).free / 2**20 if path.parent.is_dir() else 0
        raise ConfigError(f"Could not write {path} ({exc}; {free:.0f} MiB free on its disk); it is as it was. "
                          "Free some space or write elsewhere.") from exc
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
                        f"knows {list(model_labels)}. Map each onto one of those with --merge SRC=DST "
                        f"(e.g. --merge {missing[0]}=CLASS), as the model's own training did if it merged classes.")
    return np.array([list(model_labels).index(c) for c in classes], dtype=np.int64)
