"""Score models on a labelled dataset: accuracy, per-class precision/recall/F1, macro-F1,
a confusion matrix and a top-losses grid, for one model or several side by side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from moodloop.engine.errors import ConfigError
from moodloop.engine.outputs import writable_file, writable_folder
from moodloop.training.data import Dataset, Split, load_dataset
from moodloop.training.predict import Predictor, label_columns, load_predictor

__all__ = ["EvalConfig", "Evaluation", "evaluate", "score", "TTA", "run_evaluation", "comparison_table",
           "format_evaluation", "default_split"]


@dataclass(frozen=True)
class EvalConfig:
    """What ``moodloop evaluate`` does.

    Attributes:
        models: model paths (.onnx, run folder, .pth); empty for the shipped default model.
        data: dataset folder, .zip or fer2013.csv.
        split: split to score; None for "valid" when the data has one, else the whole folder.
        merge: {class: into_class} merges applied to the data's labels.
        tta: test-time augmentation: None, "flip" (the image and its mirror) or "tencrop" (see
            ``TTA``).
        json: optional path of the JSON report.
        plots: optional folder for the confusion-matrix and top-losses PNGs.
        top_losses: images in the top-losses grid.
        device: where checkpoints run ("cpu", "cuda"; None picks CUDA when available).
    """

    models: tuple[str, ...] = ()
    data: Path = Path(".")
    split: str | None = None
    merge: tuple[tuple[str, str], ...] = ()
    tta: str | None = None
    json: Path | None = None
    plots: Path | None = None
    top_losses: int = 24
    device: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """One model's scores on one split. Class-indexed fields follow ``labels`` (the model's).

    Attributes:
        model: the model's name.
        split: the split scored.
        images: how many images were scored.
        tta: the test-time augmentation used ("flip", "tencrop"), None for none.
        accuracy: share of correct top-1 predictions.
        macro_f1: F1 averaged over the classes present in the data.
        labels: the model's class names (confusion matrix axes).
        per_class: {label: {"precision", "recall", "f1", "support"}}.
        confusion: counts [actual][predicted] over ``labels``.
    """

    model: str
    split: str
    images: int
    tta: str | None
    accuracy: float
    macro_f1: float
    labels: tuple[str, ...]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]


def score(predictor: Predictor, images: np.ndarray, tta: str | None = None) -> np.ndarray:
    """Return the predictor's probabilities, averaged over the test-time views ``TTA[tta]``."""
    if tta not in (None, *TTA):
        raise ConfigError(f"Unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA)}.")
    views = [images] if tta is None else TTA[tta](images)
    return sum(predictor.predict(view) for view in views) / len(views)


def _flip(images: np.ndarray) -> list[np.ndarray]:
    """The images and their mirrors."""
    return [images, np.ascontiguousarray(images[:, :, ::-1])]


def _ten_crop(images: np.ndarray, crop: int = 44) -> list[np.ndarray]:
    """Five crops (four corners, centre) scaled back to full size, each with its mirror.

    44 of 48 px is a 9 % zoom with a shift of up to 2 px: inside what training augments with.
    """
    size, margin = images.shape[1], images.shape[1] - crop
    views = []
    for top, left in ((0, 0), (0, margin), (margin, 0), (margin, margin), (margin // 2, margin // 2)):
        crops = [cv2.resize(image[top:top + crop, left:left + crop], (size, size), interpolation=cv2.INTER_LINEAR)
                 for image in images]
        views += _flip(np.stack(crops) if crops else images)
    return views


TTA: dict[str, Callable[[np.ndarray], list[np.ndarray]]] = {"flip": _flip, "tencrop": _ten_crop}


def evaluate(probs: np.ndarray, actual: np.ndarray, labels: Sequence[str], *, model: str = "",
             split: str = "", tta: str | None = None) -> Evaluation:
    """Score predicted probabilities against the true classes.

    Args:
        probs: Probabilities [N, K]; the prediction is each row's argmax.
        actual: True class of each image [N], as an index into ``labels`` (map data classes to
            model columns by name first, with :func:`label_columns`).
        labels: The K class names, in column order.
        model: Name recorded in the result.
        split: Split name recorded in the result.
        tta: The test-time augmentation behind ``probs``, if any.

    Returns:
        The evaluation. ``confusion[i][j]`` counts images of actual class ``labels[i]``
        predicted as ``labels[j]`` (rows actual, columns predicted). ``macro_f1`` is the
        unweighted mean F1 over the classes with at least one image in ``actual``; a class
        the model predicts but the data lacks counts in its precision only.
    """
    k = len(labels)
    confusion = np.bincount(actual * k + probs.argmax(1), minlength=k * k).reshape(k, k)
    hits, support, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    precision = hits / np.maximum(predicted, 1)
    recall = hits / np.maximum(support, 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    per_class = {label: {"precision": float(precision[i]), "recall": float(recall[i]),
                         "f1": float(f1[i]), "support": int(support[i])}
                 for i, label in enumerate(labels)}
    return Evaluation(model, split, len(actual), tta, float(hits.sum() / max(len(actual), 1)),
                      float(f1[support > 0].mean()), tuple(labels), per_class, confusion.tolist())


def default_split(data: Dataset) -> str:
    """The split evaluated when none is named: validation, else the whole (split-less) folder."""
    return "valid" if "valid" in data.splits else next(iter(data.splits))


def run_evaluation(config: EvalConfig) -> list[Evaluation]:
    """Score every model of ``config`` on its data; write the JSON and the plots it asks for.

    Raises:
        ConfigError: the JSON file or the plots folder cannot be written (checked first).
    """
    if config.json:
        writable_file(config.json, "--json")
    if config.plots:
        writable_folder(config.plots, "--plots")
    data = load_dataset(config.data, dict(config.merge))
    split_name = config.split or default_split(data)
    split = data.split(split_name)
    models = config.models or (None,)
    results, scored = [], []
    for model in models:
        predictor = load_predictor(model, config.device)
        actual = label_columns(predictor.labels, data.classes)[split.labels]
        probs = score(predictor, split.images, config.tta)
        results.append(evaluate(probs, actual, predictor.labels, model=predictor.name, split=split_name,
                                tta=config.tta))
        scored.append((probs, actual))
    # Two runs' best.pth share a file name: such models go by the path they were given.
    names = [r.model for r in results]
    results = [replace(r, model=str(m)) if names.count(r.model) > 1 else r for r, m in zip(results, models)]
    if config.plots:
        for number, (result, (probs, actual)) in enumerate(zip(results, scored), 1):
            # Numbered when several, so that no two plots can share a file name.
            _plot(result, probs, actual, split, config, f"{number}-" if len(models) > 1 else "")
    if config.json:
        first, *others = (asdict(r) for r in results)
        config.json.parent.mkdir(parents=True, exist_ok=True)
        config.json.write_text(json.dumps({**first, "data": str(config.data), "layout": data.layout,
                                           **({"comparison": others} if others else {})}, indent=2))
    return results


def _plot(result: Evaluation, probs: np.ndarray, actual: np.ndarray, split: Split,
          config: EvalConfig, prefix: str) -> None:
    from moodloop.training.plots import confusion_png, image_grid

    stem = prefix + re.sub(r"[^\w.-]+", "_", result.model)
    present = [i for i, row in enumerate(result.confusion) if sum(row)]
    confusion = np.array(result.confusion)[present]
    confusion_png(confusion, [result.labels[i] for i in present], result.labels,
                  config.plots / f"{stem}-confusion.png",
                  title=f"{result.model} on {result.split}: accuracy {result.accuracy:.1%}")
    truth = probs[np.arange(len(actual)), actual]
    worst = np.argsort(truth)[:config.top_losses]  # highest cross-entropy = lowest p(truth)
    image_grid([split.images[i] for i in worst],
               [f"{result.labels[probs[i].argmax()]} {probs[i].max():.2f}\n"
                f"actual {result.labels[actual[i]]} loss {-np.log(max(truth[i], 1e-12)):.1f}"
                for i in worst],
               config.plots / f"{stem}-top_losses.png",
               title=f"{result.model}: top losses (predicted probability / actual / loss)")


def comparison_table(results: Sequence[Evaluation]) -> str:
    """Format evaluations as a plain-text table: accuracy, macro-F1 and per-class F1 per model."""
    labels = list(dict.fromkeys(label for r in results for label in r.labels))
    width = max(len(r.model) for r in results) + 2
    header = f"{'model':<{width}}{'accuracy':>9}{'macroF1':>9}" + "".join(f"{label[:8]:>9}" for label in labels)
    rows = [f"{r.model:<{width}}{r.accuracy:>9.2%}{r.macro_f1:>9.3f}"
            + "".join(_cell(r.per_class.get(label), "f1", 9) for label in labels)
            for r in results]
    return "\n".join([header, *rows])


def format_evaluation(result: Evaluation) -> str:
    """Format one evaluation: headline figures, then precision/recall/F1/support per class."""
    lines = [f"{result.model} on {result.split} ({result.images} images{f', {result.tta} TTA' if result.tta else ''}): "
             f"accuracy {result.accuracy:.2%}, macro-F1 {result.macro_f1:.3f}",
             f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    lines += [f"{label:<12}{''.join(_cell(m, key, 10) for key in ('precision', 'recall', 'f1'))}{m['support']:>10}"
              for label, m in result.per_class.items()]
    return "\n".join(lines)


def _cell(metrics: dict[str, float] | None, key: str, width: int) -> str:
    """One figure of a class, or "-" where it has no meaning: a class the model lacks, or the
    recall and F1 of a class the data lacks (0 in the JSON)."""
    undefined = metrics is None or (key != "precision" and metrics["support"] == 0)
    return f"{'-':>{width}}" if undefined else f"{metrics[key]:>{width}.3f}"
