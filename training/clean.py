"""Find the images a dataset would be better without, and write an exclusion list.

Four kinds of finding, in every split:

* ``unreadable``: files that do not decode as images;
* ``blank``: (nearly) constant images, pixel standard deviation below a threshold;
* ``duplicate`` / ``near_duplicate``: the same pixels, or the same 64-bit difference hash
  (dHash of a 9x8 thumbnail: robust to re-encoding, brightness and small resizes), including
  across train and validation;
* ``mislabeled``: with a model, images whose given label gets a very low probability while
  another class gets a high one (top-loss evidence; a model that never saw the image, e.g.
  one trained on another fold, gives the strongest evidence).

Only training images go into the exclusion list: validation is never edited, so scores stay
comparable with published ones. When a duplicate group reaches into validation, every
training copy is excluded (it would leak the answer); otherwise the first copy is kept.
Nothing is deleted: the list is a text file that ``moodloop train --exclude`` reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from moodloop.engine.errors import ConfigError
from moodloop.training.data import Dataset

log = logging.getLogger(__name__)
__all__ = ["CleanConfig", "Finding", "KINDS", "find_issues", "pixel_std", "dhash", "write_report"]

KINDS = ("unreadable", "blank", "duplicate", "near_duplicate", "mislabeled")


def pixel_std(images: np.ndarray) -> np.ndarray:
    """Return each image's pixel standard deviation (0-255 scale): below ``blank_std``, it is blank."""
    return images.reshape(len(images), -1).std(axis=1)


@dataclass(frozen=True)
class CleanConfig:
    """Thresholds of the cleaning checks.

    Attributes:
        blank_std: images whose pixel standard deviation (0-255 scale) is below this are blank.
        mislabel_prob: a model probability of the given label below this...
        mislabel_confidence: ...while another class gets at least this marks a likely mislabel.
        grid_examples: example images per kind in the report grid.
    """

    blank_std: float = 3.0
    mislabel_prob: float = 0.05
    mislabel_confidence: float = 0.8
    grid_examples: int = 8

    def __post_init__(self) -> None:
        if not 0 <= self.blank_std < math.inf:  # never negative (nor NaN): no image could be blank
            raise ConfigError(f"--blank-std {self.blank_std}: give a pixel standard deviation of 0 or more "
                              "(0-255 scale; 0 flags no image as blank; default 3).")


@dataclass(frozen=True)
class Finding:
    """One flagged image.

    Attributes:
        kind: one of KINDS.
        split: the split it is in ("train", "valid" or "all").
        name: its name (as in Split.names; what the exclusion list holds).
        detail: why it was flagged, in words.
        excluded: whether it is on the exclusion list.
    """

    kind: str
    split: str
    name: str
    detail: str
    excluded: bool


def dhash(images: np.ndarray) -> np.ndarray:
    """Return the 64-bit difference hash of each uint8 image [N, H, W] as uint64 [N]."""
    thumbs = np.stack([cv2.resize(i, (9, 8), interpolation=cv2.INTER_AREA) for i in images])
    bits = (thumbs[:, :, 1:] > thumbs[:, :, :-1]).reshape(len(images), 64)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def find_issues(data: Dataset, probs: Mapping[str, np.ndarray] | None = None,
                config: CleanConfig = CleanConfig()) -> list[Finding]:
    """Check every split of ``data`` and return the findings, in KINDS order.

    Args:
        data: the dataset, as loaded (with its unreadable list).
        probs: optional {split: probabilities [N, len(data.classes)]} from a model, columns in
            the dataset's class order; enables the mislabel check.
        config: thresholds.
    """
    items = [(split, i) for split, s in data.splits.items() for i in range(len(s))]
    splits = data.splits

    def finding(kind: str, split: str, i: int, detail: str) -> Finding:
        return Finding(kind, split, splits[split].names[i], detail, split == "train")

    findings = []
    bad = set()  # unreadable and blank images are not compared for duplicates
    for split, s in splits.items():
        unreadable = set(s.unreadable)
        std = pixel_std(s.images)
        for i, name in enumerate(s.names):
            if name in unreadable:
                findings.append(finding("unreadable", split, i, "could not be decoded"))
                bad.add((split, i))
        for i in np.flatnonzero(std < config.blank_std):
            if (split, i) not in bad:
                findings.append(finding("blank", split, int(i), f"pixel std {std[i]:.1f}"))
                bad.add((split, int(i)))
    items = [item for item in items if item not in bad]

    def describe(item: tuple[str, int]) -> str:
        split, i = item
        return f"{splits[split].names[i]} ({data.classes[splits[split].labels[i]]})"

    def groups(keys: dict) -> Iterator[list[tuple[str, int]]]:
        by_key = defaultdict(list)
        for item in items:
            by_key[keys[item]].append(item)
        # Keep a validation copy when there is one: training copies of it would leak the answer.
        return (sorted(g, key=lambda it: it[0] != "valid") for g in by_key.values() if len(g) > 1)

    exact = {(split, i): hashlib.sha1(splits[split].images[i].tobytes()).digest() for split, i in items}
    for kind, keys in (("duplicate", exact), ("near_duplicate", None)):
        if keys is None:
            hashes = {split: dhash(s.images) for split, s in splits.items()}
            keys = {(split, i): hashes[split][i] for split, i in items}
        dropped = set()
        for keeper, *copies in groups(keys):
            for split, i in copies:
                same = splits[split].labels[i] == splits[keeper[0]].labels[keeper[1]]
                findings.append(finding(kind, split, i, f"same as {describe(keeper)}"
                                        + ("" if same else "; labels differ")))
                dropped.add((split, i))
        items = [item for item in items if item not in dropped]

    remaining = set(items)  # an image already reported (blank, a copy) is not reported twice
    for split, p in (probs or {}).items():
        labels = splits[split].labels
        given = p[np.arange(len(labels)), labels]
        top = p.argmax(1)
        suspects = np.flatnonzero((given < config.mislabel_prob) & (p.max(1) >= config.mislabel_confidence))
        for i in suspects[np.argsort(given[suspects])]:
            if (split, int(i)) not in remaining:
                continue
            findings.append(finding("mislabeled", split, int(i),
                                    f"p({data.classes[labels[i]]})={given[i]:.3f}, model says "
                                    f"{data.classes[top[i]]} {p[i, top[i]]:.2f}"))
    return sorted(findings, key=lambda f: KINDS.index(f.kind))


def write_report(data: Dataset, findings: list[Finding], out: Path, source: str,
                 config: CleanConfig = CleanConfig(), model: str | None = None) -> dict:
    """Write clean.json, clean.md, clean.png (example grid) and exclude.txt into ``out``.

    An exclude.txt that differs from the one the last run wrote there (edited by hand) is kept,
    and the new list goes to exclude.new.txt beside it.

    Args:
        data, findings, config: what find_issues was given and found.
        out: the report folder.
        source: the dataset as the user named it.
        model: the model behind the mislabel evidence, None when there was none.

    Returns:
        The JSON report as a dict.
    """
    from moodloop.training.plots import image_grid

    out.mkdir(parents=True, exist_ok=True)
    counts = {kind: sum(f.kind == kind for f in findings) for kind in KINDS}
    excluded = [f for f in findings if f.excluded]
    report = {"data": source, "layout": data.layout, "classes": list(data.classes),
              "images": {k: len(s) for k, s in data.splits.items()}, "counts": counts,
              "excluded": len(excluded), "config": asdict(config), "model": model,
              "findings": [asdict(f) for f in findings]}
    text = (f"# moodloop clean exclusion list for {source}\n"
            "# one image name per line; delete lines or sections to keep those images\n")
    for kind in KINDS:
        names = [f.name for f in excluded if f.kind == kind]
        if names:
            text += f"# {kind} ({len(names)})\n" + "".join(f"{n}\n" for n in names)
    exclusions = out / "exclude.txt"
    if exclusions.is_file() and not _ours(exclusions):
        exclusions = out / "exclude.new.txt"  # someone edited (or wrote) exclude.txt: it is theirs
        log.warning("%s differs from the list `moodloop clean` wrote there, so it is kept as it is; the new "
                    "list is %s.", out / "exclude.txt", exclusions)
    exclusions.write_bytes(text.encode())  # bytes: the checksum below is of exactly what is on disk
    report["exclusion_list"] = {"file": exclusions.name, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    (out / "clean.json").write_text(json.dumps(report, indent=2))

    lines = [f"# moodloop clean: {source}", "",
             f"Layout `{data.layout}`, images {report['images']}, "
             f"{len(excluded)} training images on the exclusion list (validation is never edited). "
             + (f"Mislabel evidence from `{model}`." if model else "No mislabel check (it needs --model)."),
             "", "| kind | found | excluded |", "|---|---:|---:|"]
    lines += [f"| {kind} | {counts[kind]} | {sum(f.kind == kind for f in excluded)} |" for kind in KINDS]
    for kind in KINDS:
        examples = [f for f in findings if f.kind == kind][:10]
        if examples:
            lines += ["", f"## {kind}", ""] + [f"- `{f.name}` ({f.split}): {f.detail}" for f in examples]
    (out / "clean.md").write_text("\n".join(lines) + "\n")

    shown = [f for kind in KINDS for f in [f for f in findings if f.kind == kind][:config.grid_examples]]
    if shown:
        index = {(split, n): i for split, s in data.splits.items() for i, n in enumerate(s.names)}
        image_grid([data.splits[f.split].images[index[f.split, f.name]] for f in shown],
                   [f"{f.kind}\n{Path(f.name).name}" for f in shown], out / "clean.png",
                   columns=config.grid_examples, title=f"moodloop clean: {source}")
    return report


def _ours(exclusions: Path) -> bool:
    """Whether ``exclusions`` is, unchanged, the list the last `moodloop clean` in its folder wrote.

    The checksum in clean.json decides, whatever the list's name then (a user may adopt
    exclude.new.txt by renaming it). A folder cleaned by a moodloop that kept no checksum counts
    as ours, as that version always rewrote the list; a list without clean.json is someone else's.
    """
    try:
        report = json.loads((exclusions.parent / "clean.json").read_text())
    except (OSError, ValueError):
        return False
    written = report.get("exclusion_list") if isinstance(report, dict) else None
    if not isinstance(written, dict):
        return isinstance(report, dict)
    return hashlib.sha256(exclusions.read_bytes()).hexdigest() == written.get("sha256")
