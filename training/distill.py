"""Knowledge distillation: train the fast model on the answers of slower, better ones.

The sensor needs a model that classifies a face in a few milliseconds, yet larger models (a
stride-1 stem, an ensemble) score higher. Distillation keeps the fast architecture and changes
only its training targets: each training image's label is blended with the probabilities the
teacher models give it (averaged over teachers and over the image and its mirror). FER's
labels are noisy, and a teacher's "60 % sad, 30 % neutral" carries more than the one-hot label.

Teachers run once per run, before the first epoch, on the un-augmented training images (the
augmentations are mild enough for the answer to stand); the result is cached in the run folder
(``teacher.npz``), so ``--resume`` does not pay for it again. The cache is keyed by the image
names and each teacher's path, size and modification time, so a teacher retrained in place is
asked again.

Teachers remember the images they were trained on (a model that scores 68 % on validation is
right on about 95 % of its own training images), so on those images their answers mostly
repeat the label. Out-of-fold teachers fix that: ``moodloop train --holdout K/N`` trains
without fold K of the training images, and a teacher that held a fold out answers only for
that fold. N such runs (K = 0 .. N-1) give every training image the answer of a model that
never saw it; teachers trained on all images answer for every image, and each image's target
averages the teachers that answered for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moodloop.engine.errors import ConfigError
from moodloop.training.data import Split, in_fold
from moodloop.training.evaluate import score
from moodloop.training.predict import Predictor, RunPredictor, label_columns, load_predictor, weights_file

__all__ = ["teacher_probs", "soft_targets", "TEACHER_FILE"]

log = logging.getLogger(__name__)
TEACHER_FILE = "teacher.npz"


def teacher_probs(teachers: Sequence[Path], split: Split, classes: Sequence[str], cache: Path,
                  device: str | None = None) -> np.ndarray:
    """Return the teachers' mean probabilities [N, len(classes)] for ``split``, cached in ``cache``.

    Args:
        teachers: models as ``moodloop evaluate --model`` takes them (.onnx, run folder, .pth).
        split: the training images, in training order.
        classes: the dataset's classes; every teacher must predict each of them.
        cache: an .npz file; reused when it holds these teachers' answers for these images
            (same paths and classes, and files unchanged since).
        device: where checkpoint teachers run.

    Raises:
        ConfigError: no teachers were given, or some images are in no out-of-fold teacher's
            held-out fold (and no teacher was trained on all images).
    """
    if not teachers:
        raise ConfigError("Distillation needs at least one --teacher model.")
    key = np.array([_fingerprint(Path(t)) for t in teachers] + ["|".join(classes)] + list(split.names))
    if cache.is_file():
        with np.load(cache) as stored:
            if np.array_equal(stored["key"], key):
                return stored["probs"]
    total = np.zeros((len(split), len(classes)), np.float32)
    answered = np.zeros(len(split), bool)
    for teacher in teachers:
        predictor = load_predictor(teacher, device)
        unseen = _unseen(predictor, split.names)
        log.info("scoring %d training images with teacher %s", unseen.sum(), teacher)
        if unseen.any():  # a tiny dataset can leave a fold empty
            total[unseen] += score(predictor, split.images[unseen], "flip")[:, label_columns(predictor.labels, classes)]
        answered |= unseen
    if not answered.all():
        raise ConfigError(f"{(~answered).sum()} training images (e.g. {split.names[answered.argmin()]}) are "
                          "in no teacher's held-out fold: give an out-of-fold teacher for every fold "
                          "(--holdout 0/N ... N-1/N), or add a teacher trained on all images.")
    probs = total / total.sum(1, keepdims=True)  # the teachers' mean, renormalised over the dataset's classes
    np.savez(cache, key=key, probs=probs)
    return probs


def _unseen(predictor: Predictor, names: Sequence[str]) -> np.ndarray:
    """Return a mask of the images a teacher may answer for: its held-out fold, or all of them."""
    recipe = (predictor.recipe.to_dict() if isinstance(predictor, RunPredictor)
              else predictor.info.provenance.get("recipe", {}))  # an export carries its run's recipe
    folds = recipe.get("folds", 1)
    return np.ones(len(names), bool) if folds == 1 else in_fold(names, recipe["fold"], folds)


def _fingerprint(teacher: Path) -> str:
    """Name a teacher's current weights: its path plus its weights file's size and mtime."""
    weights = weights_file(teacher)
    if not weights.is_file():
        return str(teacher)  # loading it will say what is wrong
    stat = weights.stat()
    return f"{teacher} {stat.st_size} {stat.st_mtime_ns}"


def soft_targets(labels: np.ndarray, probs: np.ndarray, weight: float, smoothing: float) -> np.ndarray:
    """Blend label-smoothed one-hot labels with teacher probabilities.

    Args:
        labels: int class indices [N].
        probs: teacher probabilities [N, K].
        weight: the teacher's share of the target, 0-1.
        smoothing: label-smoothing epsilon applied to the one-hot part.

    Returns:
        float32 targets [N, K] whose rows sum to 1.
    """
    k = probs.shape[1]
    hard = np.full(probs.shape, smoothing / k, np.float32)
    hard[np.arange(len(labels)), labels] += 1 - smoothing
    return ((1 - weight) * hard + weight * probs).astype(np.float32)
