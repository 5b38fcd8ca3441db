"""Tiny synthetic face-like datasets in every layout moodloop reads, for tests and demos.

Each class is a horizontal stripe pattern of its own frequency with a random phase and noise:
trivially learnable in a couple of epochs, invariant to horizontal flips (so augmentation
keeps labels), and never two identical images.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from moodloop.training.data import CSV_EMOTIONS, FER_LABELS, IMAGE_SIZE

__all__ = ["LAYOUTS", "make_images", "write_dataset"]

# Layout name -> (train folder, validation folder) relative to the dataset root.
LAYOUTS = {
    "train|validation": ("train", "validation"),
    "train|test": ("train", "test"),
    "images/train|validation": ("images/train", "images/validation"),
    "<class>": ("", None),
    "fer2013.csv": (None, None),
}


def make_images(n_per_class: int, n_classes: int = len(FER_LABELS), seed: int = 0,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n_per_class`` images per class: uint8 [N, 48, 48] and int64 labels [N]."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    rows = np.arange(IMAGE_SIZE, dtype=np.float32)[None, :, None]
    phase = rng.uniform(0, 2 * np.pi, (len(labels), 1, 1))
    frequency = (labels[:, None, None] + 1) / IMAGE_SIZE * 2 * np.pi
    images = 128 + 70 * np.sin(rows * frequency + phase) + rng.normal(0, 12, (len(labels), IMAGE_SIZE, IMAGE_SIZE))
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_dataset(root: str | Path, layout: str = "train|validation", *, train_per_class: int = 8,
                  valid_per_class: int = 4, classes: Sequence[str] = FER_LABELS, seed: int = 0,
                  zip_it: bool = False) -> Path:
    """Write a synthetic dataset in one of ``LAYOUTS`` under ``root`` and return its path.

    Args:
        root: folder to create the dataset in (it becomes the dataset root).
        layout: a key of ``LAYOUTS``; "<class>" writes class folders only (train images).
        train_per_class: training images per class.
        valid_per_class: validation images per class.
        classes: class names, one folder each (the CSV layout always uses FER's 7).
        seed: random seed.
        zip_it: also pack the folder as ``root.zip`` and return that instead.
    """
    root = Path(root)
    train_dir, valid_dir = LAYOUTS[layout]
    splits = [(train_dir, make_images(train_per_class, len(classes), seed)),
              (valid_dir, make_images(valid_per_class, len(classes), seed + 1))]
    root.mkdir(parents=True, exist_ok=True)
    if layout == "fer2013.csv":
        lines = ["emotion,pixels,Usage"]
        for usage, (_, (images, labels)) in zip(("Training", "PublicTest"), splits):
            lines += [f"{CSV_EMOTIONS.index(FER_LABELS[y])},{' '.join(map(str, x.ravel()))},{usage}"
                      for x, y in zip(images, labels)]
        (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    for folder, (images, labels) in splits:
        if folder is None:
            continue
        for i, (image, label) in enumerate(zip(images, labels)):
            path = root / folder / classes[label] / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image)
    if zip_it:
        return Path(shutil.make_archive(str(root), "zip", root))
    return root
