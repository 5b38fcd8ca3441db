"""PNG figures for the training workflow, drawn headless (matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot's first import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["save_figure", "image_grid", "confusion_png", "curve_png"]


def save_figure(path: Path, figure: plt.Figure | None = None) -> Path:
    """Save ``figure`` (default: the current one) to ``path`` and close every figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (figure or plt.gcf()).savefig(path, dpi=120, bbox_inches="tight")
    plt.close("all")
    return path


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str], path: Path, *,
               columns: int = 8, title: str = "") -> Path:
    """Save gray images in a grid with a small caption under each one."""
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=6)
    if title:
        figure.suptitle(title)
    return save_figure(path, figure)


def confusion_png(confusion: np.ndarray, actual: Sequence[str], predicted: Sequence[str], path: Path,
                  title: str = "") -> Path:
    """Save a confusion matrix (rows: actual, columns: predicted), shaded by row share."""
    shares = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    figure, ax = plt.subplots(figsize=(1 + 0.8 * len(predicted), 1 + 0.7 * len(actual)))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=7,
                color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(predicted)), predicted, rotation=45, ha="right")
    ax.set_yticks(range(len(actual)), actual)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return save_figure(path, figure)


def curve_png(history: dict[int, dict[str, float]], path: Path, title: str = "") -> Path:
    """Save a training curve: train/valid loss (left axis) and accuracy (right) per epoch."""
    epochs = sorted(history)
    figure, loss_ax = plt.subplots(figsize=(7, 4))
    losses = {key: np.array([history[e].get(key, np.nan) for e in epochs]) for key in ("train_loss", "valid_loss")}
    for key, values in losses.items():
        loss_ax.plot(epochs, values, label=key)
    ceiling = _loss_ceiling(np.concatenate(list(losses.values())))
    if ceiling is not None:  # one diverged epoch would flatten every other point: mark it at the top instead
        loss_ax.set_ylim(0, ceiling)
        for values in losses.values():
            for epoch, value in zip(epochs, values):
                if value > ceiling:
                    loss_ax.annotate(f"{value:.3g}", (epoch, ceiling), xytext=(0, -10), textcoords="offset points",
                                     ha="center", fontsize=7, arrowprops={"arrowstyle": "->"})
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    accuracy_ax = loss_ax.twinx()
    accuracy_ax.plot(epochs, [history[e].get("accuracy", np.nan) for e in epochs], "g.-", label="accuracy")
    accuracy_ax.set_ylabel("validation accuracy")
    loss_ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    lines = loss_ax.get_lines() + accuracy_ax.get_lines()
    loss_ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    loss_ax.set_title(title)
    return save_figure(path, figure)


def _loss_ceiling(losses: np.ndarray) -> float | None:
    """Return a loss-axis top that leaves out outliers (over 5x the median), or None if there are none."""
    finite = losses[np.isfinite(losses)]
    if not finite.size:
        return None
    ceiling = 5 * float(np.median(finite))
    return ceiling if finite.max() > ceiling else None
