"""Train a model: lr_find, a one-cycle fit with a checkpoint every epoch, and resume.

A run lives in one folder (``--out``)::

    run.json       recipe, classes, normalisation, lr, epochs done, best accuracy
    history.csv    fastai's per-epoch metrics log
    curve.png      the training curve (losses and accuracy per epoch)
    last.pth       weights + optimizer after the latest epoch (what --resume continues from)
    best.pth       weights of the best validation epoch (what export uses)
    lr_find.png    the learning-rate finder's plot
    teacher.npz    the teachers' answers for the training images (distillation only)
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fastai.callback.core import Callback, CancelFitException
from fastai.callback.progress import CSVLogger
from fastai.learner import Learner, load_model
from fastai.torch_core import apply
from fastai.callback.schedule import valley  # noqa: F401  (registers Learner.lr_find)

from moodloop.engine.errors import ConfigError, DataError, ModelError
from moodloop.engine.outputs import writable_folder
from moodloop.training.data import Dataset, Split, in_fold
from moodloop.training.distill import TEACHER_FILE, soft_targets, teacher_probs
from moodloop.training.plots import curve_png, save_figure
from moodloop.training.predict import RUN_FILE, reading_model, weights_file, written_whole
from moodloop.training.recipe import (Normalization, Recipe, build_dataloaders, build_learner, build_model,
                                      pick_device)

__all__ = ["train", "read_run", "read_history", "RUN_FILE"]

log = logging.getLogger(__name__)


class _Checkpoint(Callback):
    """Save last.pth (with optimizer) every epoch and best.pth when validation improves.

    The epoch's weights are copied at once and written by a thread while the next epoch trains:
    on a GPU an epoch takes a few seconds, and writing a ResNet34's 250 MB took half a second of
    each. One write at most is pending, and run.json is written after the files it counts.
    """

    order = 90  # after the Recorder has the epoch's metrics

    def __init__(self, folder: Path, run: dict) -> None:
        self.folder, self.run = folder, run
        self.failure: Exception | None = None
        self.diverged: str | None = None  # why the run stopped on a NaN loss
        self.writer: threading.Thread | None = None

    def after_epoch(self) -> None:
        if self.epoch < self.run["epochs_done"]:
            return  # an epoch fastai skipped on resume: it has no metrics and nothing changed
        self.wait()
        if self.failure:  # a full disk: stop, as fastai would bury the message in its own
            raise CancelFitException from self.failure
        train_loss, valid_loss, accuracy = map(float, self.recorder.values[-1][:3])
        if not math.isfinite(train_loss + valid_loss):  # NaN weights never recover: keep the last good epoch
            self.diverged = (f"Epoch {self.epoch + 1} diverged (training loss {train_loss}, validation loss "
                             f"{valid_loss}), so it was not saved. Start a new run (another --out) with a lower "
                             f"--lr than {self.run['recipe']['lr']:g}: --resume would repeat the same schedule.")
            raise CancelFitException
        copy = lambda t: t.detach().to("cpu", copy=True) if isinstance(t, torch.Tensor) else t  # noqa: E731
        last = apply(copy, {"model": self.learn.model.state_dict(), "opt": self.learn.opt.state_dict()})
        files = {"last": last}  # fastai's own layout (learn.save), so learn.load reads it
        self.run["epochs_done"] = self.epoch + 1
        if accuracy > self.run.get("best_accuracy", -1.0):
            files["best"] = last["model"]
            self.run.update(best_accuracy=accuracy, best_epoch=self.epoch + 1)
        self.writer = threading.Thread(target=self._write, args=(files, json.dumps(self.run, indent=2)),
                                       name="checkpoint")
        self.writer.start()
        _plot_history(self.folder)

    def _write(self, files: dict[str, dict], record: str) -> None:
        try:
            for name, state in files.items():
                with written_whole(self.folder / f"{name}.pth") as partial:
                    torch.save(state, partial)
            _write_run(self.folder, record)
        except Exception as exc:  # noqa: BLE001  (handed to the training thread by wait())
            self.failure = exc

    def wait(self) -> None:
        """Return once the pending write, if any, has finished; ``failure`` holds a write that
        failed (a full disk), and anything else the write raised is raised here."""
        if self.writer is not None:
            self.writer.join()
            self.writer = None
        if self.failure is not None and not isinstance(self.failure, (ConfigError, OSError)):
            raise self.failure


class _Deadline(Callback):
    """Shorten the one-cycle schedule so that the run ends by a deadline, annealed (``--minutes``).

    A run stopped at the deadline would stop at a high learning rate, its best weights unready.
    Instead, once the pace is known, the schedule is recomputed for the epochs that still fit,
    as ``--resume --epochs N`` would do. The pace leaves out the fit's first epoch (cuDNN
    times its kernels then, and it can take three times as long). The plan is only ever shortened.
    """

    order = 85  # before _Checkpoint, which then writes the new plan into run.json with the epoch

    def __init__(self, deadline: float, run: dict, clock: Callable[[], float]) -> None:
        self.deadline, self.run, self.clock = deadline, run, clock

    def before_fit(self) -> None:
        self.first, self.ends = self.run["epochs_done"], []

    def before_epoch(self) -> None:
        if self.epoch >= self.n_epoch:
            raise CancelFitException  # the plan was shortened; fastai's epoch loop was set up for the longer one

    def after_epoch(self) -> None:
        if self.epoch < self.first:
            return  # an epoch fastai skipped on resume
        self.ends.append(self.clock())
        if len(self.ends) > 1:
            done = self.epoch + 1
            pace = (self.ends[-1] - self.ends[0]) / (len(self.ends) - 1)
            fits = done + int((self.deadline - self.ends[-1]) / pace)
            if fits < self.n_epoch:
                self._replan(done, max(done, fits))

    def _replan(self, done: int, epochs: int) -> None:
        log.info("--minutes: %d epochs fit, not %d; the schedule now ends there", epochs, self.n_epoch)
        self.run.setdefault("replanned", []).append(
            {"at_epoch": done, "from": self.n_epoch, "to": epochs, "by": "--minutes"})
        self.run["recipe"]["epochs"] = self.learn.n_epoch = epochs


def _write_run(folder: Path, run: dict | str) -> None:
    """Write run.json (a record, or its JSON text) whole or not at all: a kill mid-write must not
    destroy the resume point."""
    with written_whole(folder / RUN_FILE) as partial:
        partial.write_text(run if isinstance(run, str) else json.dumps(run, indent=2))


class _ReleaseMemory(Callback):
    """Hand the C heap's free pages back to the system after each epoch (glibc only).

    Each batch's tensors are freed, but glibc keeps the pages, fragmented across arenas: without
    this a CPU run grew about 0.5 GB an epoch and a 45-epoch run would not fit 23 GB.
    """

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        self.trim = getattr(libc, "malloc_trim", None)  # absent on macOS, Windows and musl

    def after_epoch(self) -> None:
        if self.trim is not None:
            self.trim(0)


def train(data: Dataset, out: Path, recipe: Recipe, *, resume: bool = False,
          device: str | None = None, lr_find_iters: int = 100, init: Path | None = None,
          teachers: Sequence[Path] = (), epochs: int | None = None, budget: float | None = None,
          clock: Callable[[], float] = time.monotonic) -> dict:
    """Train (or resume) a run in ``out`` and return its run record.

    Args:
        data: a dataset with "train" and "valid" splits and at least two classes (exclusions
            already applied).
        out: the run folder; created once the data, recipe and ``init`` have passed their checks.
        recipe: the hyper-parameters. With ``resume`` the stored recipe is used instead.
        resume: continue an interrupted run from its last completed epoch.
        device: "cpu", "cuda" or None for CUDA when available.
        lr_find_iters: mini-batches the learning-rate finder tries (fastai's ``num_it``).
        init: start from these weights instead of random ones: a run folder (its best.pth), a
            .pth checkpoint or an exported .onnx of the same architecture and classes (no
            ImageNet download here; the shipped model continues training this way).
        teachers: models whose answers make up ``recipe.distill`` of the training targets
            (distill.py). With ``resume`` the stored teachers are used instead.
        epochs: with ``resume``, a new length for the run. The one-cycle schedule is recomputed
            for it, so the learning rate steps to where the new schedule stands; run.json
            records the change under "replanned".
        budget: seconds the run may take from this call on (None: no limit). From the second
            epoch on, the schedule is shortened to the epochs that fit, so the run ends annealed
            (recorded under "replanned"); at least two epochs run.
        clock: the monotonic clock ``budget`` is measured with (tests pass a fake one).

    Raises:
        ConfigError: ``out`` cannot be a run folder, or holds a run that does not fit the request.
        DataError: the data lacks a split or has fewer than two classes.
        ModelError: ``init`` or the checkpoint to resume is not a readable model.
    """
    deadline = None if budget is None else clock() + budget
    writable_folder(out, "--out")
    if len(data.classes) < 2:  # one class would train to a meaningless 100 % accuracy
        raise DataError(f"Training needs at least two classes, and this dataset ({data.layout}) has only "
                        f"{list(data.classes)}: add a folder of images for each other class (or merge fewer "
                        "with --merge).")
    device = pick_device(device)
    torch.backends.cudnn.benchmark = True  # fixed 48 px batches: let cuDNN time and keep its fastest kernels
    if resume:
        run, recipe = _resumed_run(out, data, epochs)
        teachers = [Path(t) for t in run.get("teachers", [])]
    else:
        run = _new_run(out, data, recipe, teachers)
    if bool(teachers) != (recipe.distill > 0):
        raise ConfigError("Distillation needs both --teacher MODEL and a --distill share above 0; "
                          f"got {len(teachers)} teacher(s) and --distill {recipe.distill}.")
    train_split, valid_split = _training_images(data, recipe), data.split("valid")
    _check_classes(train_split, valid_split, data.classes)
    if len(train_split) < recipe.batch_size:  # fastai drops the last partial batch: none would be left
        raise ConfigError(f"--batch-size {recipe.batch_size} is more than the {len(train_split)} training "
                          "images: give a smaller --batch-size.")
    weights = _init_weights(init, recipe, data.classes) if init is not None and not resume else None
    new_folder = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    targets = None
    if teachers:
        try:
            probs = teacher_probs(teachers, train_split, data.classes, out / TEACHER_FILE, device)
        except (ConfigError, DataError, ModelError):
            if new_folder:  # a teacher that cannot answer leaves no empty run folder behind
                out.rmdir()
            raise
        targets = soft_targets(train_split.labels, probs, recipe.distill, recipe.label_smoothing)
    norm = Normalization(**run["normalization"])
    learn = build_learner(build_dataloaders(train_split, valid_split, recipe, norm, device, targets), recipe,
                          len(data.classes), out)
    if resume:
        with reading_model(out / "last.pth"):
            learn.load("last", with_opt=True, device=device, weights_only=True)  # never unpickles code
    elif weights is not None:
        learn.model.load_state_dict(weights)
        run["init"] = str(init)
    if not resume and recipe.lr is None:
        suggestion = learn.lr_find(num_it=lr_find_iters, show_plot=True)
        save_figure(out / "lr_find.png")  # the plot lr_find just drew, with its suggestion
        recipe = replace(recipe, lr=float(suggestion.valley))
        log.info("lr_find suggests %.2e", recipe.lr)
    run["recipe"] = recipe.to_dict()
    _write_run(out, run)
    _fit(learn, out, run, recipe, [] if deadline is None else [_Deadline(deadline, run, clock)])
    return run


def _resumed_run(out: Path, data: Dataset, epochs: int | None) -> tuple[dict, Recipe]:
    """Read the run to continue and its recipe (with a new length, given ``epochs``), checking it fits ``data``."""
    if not (out / RUN_FILE).exists():
        raise ConfigError(f"Nothing to resume in {out}: {RUN_FILE} is missing. Start without --resume.")
    run = read_run(out)
    recipe = Recipe.from_dict(run["recipe"])
    if not (out / "last.pth").is_file():
        raise ConfigError(f"Nothing to resume in {out}: no epoch has finished yet. Start again without --resume.")
    if tuple(run["classes"]) != data.classes:
        raise ConfigError(f"The run in {out} was trained on classes {run['classes']}, "
                          f"this data has {list(data.classes)}: use the same data and --merge.")
    counts = len(_training_images(data, recipe)), len(data.split("valid"))
    if counts != (run["train_images"], run["valid_images"]):
        raise ConfigError(f"The run in {out} was trained on {run['train_images']:,} training and "
                          f"{run['valid_images']:,} validation images, this data has {counts[0]:,} and "
                          f"{counts[1]:,}: resume with the same --data, --merge and --exclude as the first run.")
    if epochs is not None and epochs != recipe.epochs:
        if epochs < run["epochs_done"]:
            raise ConfigError(f"--epochs {epochs}: the run in {out} has done {run['epochs_done']} "
                              "epochs already; give at least that many.")
        run.setdefault("replanned", []).append({"at_epoch": run["epochs_done"], "from": recipe.epochs, "to": epochs})
        recipe = replace(recipe, epochs=epochs)
    return run, recipe


def _new_run(out: Path, data: Dataset, recipe: Recipe, teachers: Sequence[Path]) -> dict:
    """Start the record of a new run, refusing to overwrite one that has trained."""
    if (out / RUN_FILE).exists() and (done := read_run(out)["epochs_done"]):
        raise ConfigError(f"{out} already holds a run ({done} epochs done): add --resume to continue it, "
                          "or give another --out.")
    train_split = _training_images(data, recipe)
    run = {"classes": list(data.classes), "normalization": vars(Normalization.of(train_split)),
           "layout": data.layout, "train_images": len(train_split), "valid_images": len(data.split("valid")),
           "epochs_done": 0}
    if teachers:
        run["teachers"] = [str(t) for t in teachers]
    return run


def _fit(learn: Learner, out: Path, run: dict, recipe: Recipe, cbs: list[Callback]) -> None:
    """Run the one-cycle schedule from the run's next epoch, checkpointing each epoch into ``out``."""
    start = run["epochs_done"]
    if start >= recipe.epochs:
        return
    checkpoint = _Checkpoint(out, run)
    try:
        learn.fit_one_cycle(recipe.epochs, recipe.lr, start_epoch=start,
                            cbs=[CSVLogger(fname="history.csv", append=start > 0), checkpoint, _ReleaseMemory(),
                                 *cbs])
    finally:  # Ctrl-C included: the last epoch's files are written whole before the process ends
        checkpoint.wait()
    if checkpoint.diverged:
        raise ConfigError(f"Training stopped. {checkpoint.diverged}")
    if checkpoint.failure:
        done = read_run(out)["epochs_done"]
        then = (f"Then `moodloop train --resume` continues after epoch {done}, the last one saved whole."
                if done else "Then run the same command again (no epoch was saved).")
        raise ConfigError(f"Training stopped. {checkpoint.failure} {then}")


def _check_classes(train: Split, valid: Split, classes: Sequence[str]) -> None:
    """Refuse splits a run cannot learn or be chosen on; warn of a class validation cannot score."""
    if not len(valid):
        raise DataError("The validation split is empty (every image excluded?): training picks its best "
                        "epoch on it. Give validation images, or a shorter --exclude list.")
    counts = np.bincount(train.labels, minlength=len(classes))
    if missing := [c for c, n in zip(classes, counts) if not n]:
        raise DataError(f"No training images for {missing}: the model could never predict them. Add images "
                        f"to those class folders, or --merge them into another class (e.g. --merge {missing[0]}=X).")
    if unscored := [c for c, n in zip(classes, np.bincount(valid.labels, minlength=len(classes))) if not n]:
        log.warning("No validation images for %s: their accuracy is not measured.", unscored)


def _training_images(data: Dataset, recipe: Recipe) -> Split:
    """Return the training split, without the fold the recipe leaves out (if any)."""
    split = data.split("train")
    if recipe.folds == 1:
        return split
    return split.without(np.array(split.names)[in_fold(split.names, recipe.fold, recipe.folds)])


def _init_weights(init: Path, recipe: Recipe, classes: Sequence[str]) -> dict[str, torch.Tensor]:
    """Read model weights (not the optimizer) from a run folder, a .pth checkpoint or an export.

    They are tried on a fresh model of the recipe, so weights that cannot be used fail before
    the run folder is made.

    Raises:
        ConfigError: there is no weights file, or its weights fit another architecture or class set.
        ModelError: the file is not a checkpoint or an exported model (damaged, or something else).
    """
    path = weights_file(init)
    if not path.is_file():
        raise ConfigError(f"--init {init}: no such weights file; give a run folder, a .pth checkpoint "
                          "or a model exported by `moodloop export`.")
    if path.suffix == ".onnx":
        from moodloop.training.export import exported_weights

        state = exported_weights(path)
    else:
        with reading_model(path):  # fastai's loader: weights_only, with the types last.pth's optimizer holds
            holder = _WeightsOnly()
            load_model(path, holder, None, with_opt=False, device="cpu")
            state = holder.state
    model = build_model(recipe, len(classes))
    # BatchNorm's step counters are bookkeeping, not weights: exports do not carry them.
    state.update({k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")})
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ConfigError(f"--init {path} does not fit this model: use weights trained with the same "
                          f"--arch, --maxpool and classes. ({str(exc)[:200]})") from exc
    # Same shapes are not the same classes: each output must go on meaning what it meant.
    if (trained := _trained_classes(path)) is not None and trained != list(classes):
        raise ConfigError(f"--init {path} was trained on classes {trained}, and this data has {list(classes)}: "
                          "start from weights trained on the same classes (and --merge), or from scratch.")
    return model.state_dict()


class _WeightsOnly:
    """Takes the model weights fastai's ``load_model`` reads, to be checked before they are used."""

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        self.state = dict(state)


def _trained_classes(weights: Path) -> list[str] | None:
    """The classes a weights file was trained on, from its export's metadata or its run folder."""
    if weights.suffix == ".onnx":
        from moodloop.training.predict import OnnxPredictor

        return list(OnnxPredictor(weights).labels)
    return read_run(weights.parent)["classes"] if (weights.parent / RUN_FILE).is_file() else None


def read_run(folder: Path) -> dict:
    """Read a run folder's run record, or raise a ModelError saying what a run folder holds."""
    path = folder / RUN_FILE
    if not path.is_file():
        raise ModelError(f"{folder} is not a training run: {RUN_FILE} is missing. Pass the --out "
                         "folder of `moodloop train`, a .pth checkpoint in one, or an .onnx file.")
    try:
        run = json.loads(path.read_text())
        readable = isinstance(run, dict) and isinstance(run.get("epochs_done"), int)
    except (ValueError, OSError):  # edited by hand, cut short, or not ours
        readable = False
    if not readable:
        raise ModelError(f"{path} is damaged or was not written by `moodloop train`: restore it from a "
                         "backup, or start a new run with another --out.")
    return run


def read_history(run: Path) -> dict[int, dict[str, float]]:
    """Read a run's history.csv as {epoch (1-based): {metric: value}}.

    A resumed run appends fastai's header again and a short line per skipped epoch; both are
    ignored, and a repeated epoch keeps its latest line.
    """
    path = run / "history.csv"
    rows = [row for row in csv.reader(path.read_text().splitlines()) if row] if path.is_file() else []
    if not rows:
        return {}
    header, *rows = rows
    return {int(row[0]) + 1: {k: float(v) for k, v in zip(header[1:], row[1:]) if k != "time"}
            for row in rows if row[0].isdigit() and len(row) == len(header)}


def _plot_history(run: Path) -> Path | None:
    """Draw the run's training curve into curve.png; None while no epoch is logged."""
    history = read_history(run)
    return curve_png(history, run / "curve.png", title=run.name) if history else None
