"""Labelled face datasets: find the layout a user downloaded and load it as arrays.

Supported, as a folder or a .zip:

* ``train|validation/<class>/`` (moodloop's shared copy of FER2013),
* ``train|test/<class>/`` (the Kaggle "FER-2013" image download),
* ``images/train|validation/<class>/`` (the Kaggle face-expression-recognition-dataset),
* ``<class>/`` alone (any labelled folder; evaluation only),
* ``fer2013.csv`` (emotion, pixels, Usage), alone or inside a folder or zip.

Everything is decoded once into a uint8 array of 48x48 gray images: FER-sized data fits in
memory easily (28,709 images are 66 MB), and batch augmentation on tensors is much cheaper
than per-image file decoding on a 2-core CPU.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from moodloop.engine.errors import DataError
from moodloop.engine.protocol import LABELS

log = logging.getLogger(__name__)
__all__ = ["Split", "Dataset", "load_dataset", "parse_merge", "read_exclusions", "in_fold", "FER_LABELS",
           "CSV_EMOTIONS", "IMAGE_SIZE"]

FER_LABELS = LABELS
"""The protocol's seven classes, in the order moodloop's models report them (alphabetical)."""
CSV_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""fer2013.csv's ``emotion`` codes 0-6 (0=Angry ... 4=Sad, 5=Surprise, 6=Neutral): not FER_LABELS."""
IMAGE_SIZE = 48
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp"}
# Split folder names, most preferred first. With both validation/ and test/, test/ is left out:
# in FER's own exports it is PrivateTest, which must never steer training.
_SPLIT_NAMES = {"train": ("train", "training"), "valid": ("validation", "valid", "val", "publictest", "test")}
_SPLIT_OF = {folder: split for split, folders in _SPLIT_NAMES.items() for folder in folders}
_CSV_USAGE = {"Training": "train", "PublicTest": "valid"}  # PrivateTest is never loaded.
_EXPECTED = ("expected one of: train/ and validation/ (or test/) folders of class subfolders, "
             "optionally under images/; a folder of class subfolders (evaluation only); or fer2013.csv")
_SPLITS_NEEDED = ("Training needs train/ and validation/ (or test/) folders of class subfolders, optionally "
                  "under images/, or fer2013.csv; a plain folder of class subfolders is one split, 'all', "
                  "which only `moodloop evaluate` scores")
_CSV_SPLITS = ("A FER2013 CSV's rows are split by its Usage column: Training rows train, PublicTest rows "
               "validate (PrivateTest rows are never used); rows without Usage count as Training")


@dataclass(frozen=True)
class Split:
    """One split of a dataset, decoded.

    Attributes:
        images: uint8 array [N, 48, 48] of gray faces.
        labels: int64 array [N] of indices into the dataset's classes.
        names: a stable id per image (its path inside the dataset, or ``csv:ROW``).
        unreadable: names of the files that could not be decoded; they are kept as blank
            images so indices stay aligned, and the cleaning step reports them.
    """

    images: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    unreadable: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def without(self, excluded: Iterable[str]) -> Split:
        """Return this split minus the images whose names are in ``excluded``."""
        drop = set(excluded)
        keep = np.array([n not in drop for n in self.names], dtype=bool)
        return Split(self.images[keep], self.labels[keep],
                     tuple(n for n, k in zip(self.names, keep) if k),
                     tuple(n for n in self.unreadable if n not in drop))


@dataclass(frozen=True)
class Dataset:
    """A labelled dataset: class names and the splits that were found."""

    classes: tuple[str, ...]
    splits: Mapping[str, Split] = field(default_factory=dict)
    layout: str = ""

    def split(self, name: str) -> Split:
        """Return split ``name`` ("train", "valid" or "all") or raise a DataError saying what exists."""
        if name not in self.splits:
            needed = (_CSV_SPLITS if self.layout == "fer2013.csv" else _SPLITS_NEEDED)
            raise DataError(f"This dataset ({self.layout}) has no {name!r} split; "
                            f"it has {sorted(self.splits) or 'none'}. {needed}.")
        return self.splits[name]

    def without(self, excluded: Iterable[str]) -> Dataset:
        """Return this dataset minus the named images, in whichever split they are.

        Raises:
            DataError: when none of the names is in the dataset (a list made for another copy).
        """
        drop = set(excluded)
        unknown = drop.difference(*(s.names for s in self.splits.values()))
        if drop and unknown == drop:
            example = next(iter(self.splits.values())).names[:1]
            raise DataError(f"None of the {len(drop)} images on the exclusion list is in this dataset (the list "
                            f"names e.g. {min(drop)!r}, the dataset has e.g. {example}): was the list written for "
                            "another copy of the data? Run `moodloop clean` on this one.")
        if unknown:
            log.warning("%d images on the exclusion list are not in this dataset, e.g. %s",
                        len(unknown), min(unknown))
        return replace(self, splits={k: s.without(drop) for k, s in self.splits.items()})


def in_fold(names: Sequence[str], fold: int, folds: int) -> np.ndarray:
    """Return a bool mask of the images that fall in fold ``fold`` of ``folds``.

    The fold follows from the image's name alone (its CRC-32), so every run, machine and
    exclusion list agrees on it: the runs of an out-of-fold set need not share anything else.
    """
    return np.array([zlib.crc32(name.encode()) % folds == fold for name in names], dtype=bool)


def read_exclusions(path: str | Path) -> set[str]:
    """Read an exclusion list: one image name per line; blank lines and ``#`` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Exclusion list not found: {path}. `moodloop clean` writes one (exclude.txt).")
    try:
        lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text exclusion list (one image name per line): give the "
                        "exclude.txt `moodloop clean` wrote.") from None
    return {line for line in lines if line and not line.startswith("#")}


def parse_merge(specs: Sequence[str]) -> dict[str, str]:
    """Parse ``--merge disgust=angry`` style options into a {source: target} mapping."""
    merge = {}
    for spec in specs:
        source, sep, target = spec.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise DataError(f"Bad --merge {spec!r}: write SOURCE=TARGET, e.g. --merge disgust=angry.")
        merge[source.strip().lower()] = target.strip().lower()
    return merge


def load_dataset(path: str | Path, merge: Mapping[str, str] | None = None) -> Dataset:
    """Detect the layout at ``path`` (folder, .zip or .csv) and decode every image.

    Args:
        path: a dataset folder, a .zip of one, or a fer2013.csv file.
        merge: optional {class: into_class} renames applied before indexing, e.g. disgust=angry.

    Raises:
        DataError: the path is missing or its layout is not one moodloop knows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"Dataset not found: {path}. Point --data at a folder, a .zip or fer2013.csv.")
    if path.is_file() and path.suffix.lower() == ".csv":
        return _from_csv(path.read_bytes(), str(path), merge or {})
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                files = [PurePosixPath(n) for n in archive.namelist() if not n.endswith("/")]
                return _from_files(files, str(path), merge or {}, lambda f: archive.read(str(f)))
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise DataError(f"{path} is damaged ({exc}): download it again, or unpack what you can and "
                            "point --data at the folder.") from None
    if path.is_file() and path.suffix.lower() == ".zip":
        raise DataError(f"{path} is not a readable zip (cut short while downloading?): download it again.")
    if path.is_dir():
        files = [PurePosixPath(p.relative_to(path).as_posix()) for p in path.rglob("*") if p.is_file()]
        return _from_files(files, str(path), merge or {}, lambda f: (path / f).read_bytes())
    raise DataError(f"{path} is neither a folder, a .zip nor a .csv file. {_EXPECTED}.")


def _from_files(files: list[PurePosixPath], where: str, merge: Mapping[str, str],
                read: Callable[[PurePosixPath], bytes]) -> Dataset:
    """Build a dataset from the file names of a folder or zip and a reader of their bytes."""
    csvs = [f for f in files if f.name.lower() == "fer2013.csv"]
    if csvs:
        return _from_csv(read(csvs[0]), f"{where}/{csvs[0]}", merge)
    images = [f for f in files if f.suffix.lower() in _IMAGE_SUFFIXES
              and not any(part.startswith((".", "__MACOSX")) for part in f.parts)]
    root, by_split = _find_splits(images)
    if not by_split:
        top = sorted({f.parts[0] for f in files})[:10]
        raise DataError(f"No labelled images found in {where} (top-level entries: {top}); {_EXPECTED}.")
    layout = "<class>/" if set(by_split) == {"all"} else "<split>/<class>/"
    layout = f"{root}/{layout}" if root else layout
    used = {f for members in by_split.values() for f in members}
    # e.g. train/happy/batch1/x.png: a class folder must hold its images (a split folder that was
    # not chosen, test/ beside validation/, has had its own warning)
    left = sorted(f for f in images if f not in used and not (
        len(f.parts) >= 3 and f.parts[-3].lower() in _SPLIT_OF and "/".join(f.parts[:-3]) == root))
    if left:
        log.warning("%d images in %s are not directly in a class folder of the %s layout and are left out, "
                    "e.g. %s", len(left), where, layout, left[0])
    classes = _class_list({f.parent.name.lower() for fs in by_split.values() for f in fs}, merge)
    splits = {}
    for split, members in by_split.items():
        members = sorted(members)
        labels = np.array([classes.index(merge.get(f.parent.name.lower(), f.parent.name.lower()))
                           for f in members], dtype=np.int64)
        decoded = [_decode(read(f)) for f in members]
        unreadable = tuple(str(f) for f, image in zip(members, decoded) if image is None)
        if unreadable:
            log.warning("%d unreadable images in %s (kept blank; `moodloop clean` lists them), "
                        "e.g. %s", len(unreadable), where, unreadable[0])
        blank = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        splits[split] = Split(np.stack([blank if i is None else i for i in decoded]), labels,
                              tuple(str(f) for f in members), unreadable)
    return Dataset(tuple(classes), splits, layout)


def _find_splits(images: list[PurePosixPath]) -> tuple[str, dict[str, list[PurePosixPath]]]:
    """Group image paths by split: ``[root/]split/class/img`` or else ``[root/]class/img``."""
    folders: dict[tuple[str, str], list[PurePosixPath]] = {}  # (root, split folder) -> images
    for f in images:
        if len(f.parts) >= 3 and f.parts[-3].lower() in _SPLIT_OF:
            folders.setdefault(("/".join(f.parts[:-3]), f.parts[-3].lower()), []).append(f)
    roots = {root for root, _ in folders}
    if len(roots) > 1:
        raise DataError(f"Split folders in several places: {sorted(r or '.' for r in roots)}; "
                        "point --data at one of them.")
    root = roots.pop() if roots else ""
    by_split: dict[str, list[PurePosixPath]] = {}
    for split, names in _SPLIT_NAMES.items():
        found = [name for name in names if (root, name) in folders]
        if found:
            by_split[split] = folders[root, found[0]]
        if len(found) > 1:
            log.warning("Using %s/ as the %s split; left out: %s", found[0], split,
                        ", ".join(f"{name}/" for name in found[1:]))
    if by_split:
        return root, by_split
    roots = {"/".join(f.parts[:-2]) for f in images if len(f.parts) >= 2}
    if len(roots) != 1:  # class folders at different depths: not a layout we understand
        return "", {}
    return roots.pop(), {"all": [f for f in images if len(f.parts) >= 2]}


def _class_list(names: set[str], merge: Mapping[str, str]) -> list[str]:
    unknown = set(merge) - names
    if unknown:
        raise DataError(f"--merge names classes that are not in the data: {sorted(unknown)}; "
                        f"the data has {sorted(names)}.")
    merged = {merge.get(n, n) for n in names}
    # A name outside the data and FER's classes is a rename, or a typo of an existing class.
    if created := sorted(set(merge.values()) - names - set(FER_LABELS)):
        log.warning("--merge makes new classes %s; the data's classes are %s (check the spelling if you "
                    "meant to merge into one of them).", created, sorted(names))
    # FER's canonical order first, so a FER-derived model always reports classes the same way.
    return [n for n in FER_LABELS if n in merged] + sorted(merged - set(FER_LABELS))


def _decode(data: bytes) -> np.ndarray | None:
    """Decode one image file to 48x48 gray, or None when it is not a readable image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def _from_csv(data: bytes, where: str, merge: Mapping[str, str]) -> Dataset:
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))  # -sig: a spreadsheet's byte-order mark
    except UnicodeDecodeError:
        raise DataError(f"{where} is not a text CSV file; a FER2013 CSV holds the columns emotion, pixels "
                        "and (optionally) Usage.") from None
    if not {"emotion", "pixels"} <= set(reader.fieldnames or ()):
        raise DataError(f"{where} has columns {reader.fieldnames}; a FER2013 CSV needs "
                        "emotion, pixels and (optionally) Usage.")
    classes = _class_list(set(FER_LABELS), merge)
    rows: dict[str, tuple[list, list, list]] = {}
    for i, row in enumerate(reader):
        split = _CSV_USAGE.get(row.get("Usage") or "Training")
        if split is None:
            continue
        try:
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            code = int(row["emotion"])
            if not 0 <= code < len(CSV_EMOTIONS):
                raise ValueError(code)
        except (ValueError, OverflowError, TypeError, AttributeError):  # the last two: a row cut short
            raise DataError(f"{where} row {i + 2}: emotion must be 0-6 and pixels 2304 numbers "
                            "0-255; fix or delete that row.") from None
        if pixels.size != IMAGE_SIZE * IMAGE_SIZE:
            raise DataError(f"{where} row {i + 2}: {pixels.size} pixels, expected 48x48 = 2304.")
        label = CSV_EMOTIONS[code]
        images, labels, names = rows.setdefault(split, ([], [], []))
        images.append(pixels.reshape(IMAGE_SIZE, IMAGE_SIZE))
        labels.append(classes.index(merge.get(label, label)))
        names.append(f"csv:{i}")
    if not rows:
        raise DataError(f"{where} has no Training or PublicTest rows (PrivateTest rows are never used); "
                        f"{_EXPECTED}.")
    splits = {k: Split(np.stack(v[0]), np.array(v[1], dtype=np.int64), tuple(v[2]))
              for k, v in rows.items()}
    return Dataset(tuple(classes), splits, "fer2013.csv")
