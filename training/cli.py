"""The training commands: `moodloop clean`, `train`, `evaluate`, `export` and `quantize`.

Only argparse lives here; torch and fastai are imported inside the command functions, so
`moodloop --help` stays instant and players never need the training extra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["register"]

_DEFAULT_DISTILL = 0.5
"""The teachers' share of the training targets when --teacher is given without --distill."""

_CLEAN_EXAMPLES = """examples:
  moodloop clean --data ../shared/data/fer2013/fer2013-trainval.zip --out clean/
  moodloop clean --data faces.zip --out clean/ --model runs/fer34      # also flag likely mislabels
  moodloop train --data faces.zip --out runs/mine --exclude clean/exclude.txt
"""

_TRAIN_EXAMPLES = """examples:
  moodloop train --data ../shared/data/fer2013/fer2013-trainval.zip --out runs/fer34
  moodloop train --data fer2013-trainval.zip --out runs/C --exclude clean/exclude.txt --bf16 \\
                 --epochs 140 --batch-size 256 --lr 0.1 --mixup 0.2 --erase 0.5   # a GPU run
  moodloop train --data fer2013.csv --out runs/r18 --arch resnet18 --epochs 10 --merge disgust=angry
  moodloop train --data faces.zip --out runs/mine --exclude clean/exclude.txt --resume
                 # continue after an interruption: the same --data, --merge and --exclude
  moodloop train --data fer2013-trainval.zip --out runs/kd --init float.onnx \\
                 --teacher big.onnx --teacher other.onnx --distill 0.5   # distil slower models
  moodloop train --data fer2013-trainval.zip --out runs/f0 --holdout 0/5 ...   # then 1/5 .. 4/5:
                 # out-of-fold teachers, each answering only for the images it never saw
  moodloop train --data fer2013-trainval.zip --out runs/C --epochs 140 --minutes 20 ...
                 # at most 140 epochs, fewer if they would not end within 20 minutes

A run folder holds run.json, history.csv (metrics per epoch), curve.png (their plot), last.pth
(resume point), best.pth (best validation epoch), lr_find.png and, when distilling, teacher.npz.
Without --lr, fastai's lr_find picks the rate. An existing run is never overwritten.
"""

_EVALUATE_EXAMPLES = """examples:
  moodloop evaluate --data ../shared/data/fer2013/fer2013-trainval.zip --json out.json
  moodloop evaluate --model runs/fer34 --model sensor/models/fer_resnet34.onnx --data faces.zip
  moodloop evaluate --model mine.onnx --data my_faces/ --plots plots/ --tta tencrop

MODEL is an exported .onnx file, a training run folder (its best.pth) or a .pth in one;
without --model the shipped sensor/models/fer_resnet34.onnx is scored. A dataset with a
validation split is scored on it; a plain folder of class subfolders is scored whole.
"""

_EXPORT_EXAMPLES = """examples:
  moodloop export --run runs/fer34 --out sensor/models/fer_resnet34.onnx --verify faces.zip
  moodloop export --run runs/fer34 --fp32 --out fer34_fp32.onnx

Writes ONNX (input "input" [N,1,48,48], output "probs") with the labels, input format and
provenance in its "moodloop" metadata; weights stored as float16 unless --fp32.
"""

_QUANTIZE_EXAMPLES = """examples:
  moodloop quantize --model runs/fer34/fer34.onnx --data fer2013-trainval.zip --out int8.onnx
  moodloop quantize --model float.onnx --data fer2013-trainval.zip --out sensor/models/fer_resnet34.onnx --flip

Calibration uses a fixed sample of the training split (of the whole folder when it has no
splits); the result is then scored beside its source on the validation split. Keep the float
model: int8 files cannot be trained further (--init) or quantized again.
"""

_CALIBRATION_IMAGES = 512


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `clean`, `train`, `evaluate`, `export` and `quantize` subcommands."""
    clean = _command(subparsers, "clean", run_clean, _CLEAN_EXAMPLES,
                     "find unreadable, blank, duplicate and likely mislabeled training images",
                     "Check a dataset and write a report (clean.json, clean.md), an example grid "
                     "(clean.png; it shows dataset faces: do not commit it) and exclude.txt for "
                     "`moodloop train --exclude`. Nothing is deleted.")
    _add_data(clean)
    clean.add_argument("--out", type=Path, required=True, metavar="DIR", help="report folder")
    clean.add_argument("--model", metavar="MODEL", help="score the images with MODEL to flag likely mislabels")
    clean.add_argument("--blank-std", type=float, metavar="X",
                       help="pixel std (0-255) under which an image is blank (default 3)")
    _add_device(clean)

    train = _command(subparsers, "train", run_train, _TRAIN_EXAMPLES,
                     "train an emotion classifier (fastai ResNet, one-cycle, resumable)",
                     "Train a ResNet from scratch on a labelled face dataset (Kaggle layouts as a "
                     "folder or zip, or fer2013.csv), checkpointing every epoch.")
    _add_data(train)
    train.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder")
    train.add_argument("--arch", choices=("resnet18", "resnet34", "resnet50"), help="architecture (default resnet34)")
    train.add_argument("--epochs", type=int, help="one-cycle length in epochs (default 30)")
    train.add_argument("--lr", type=float, help="peak learning rate (default: lr_find's suggestion)")
    train.add_argument("--batch-size", type=int, help="images per step (default 128)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), help="sgd with momentum (default) or adam")
    train.add_argument("--wd", type=float, help="decoupled weight decay (default 5e-3; around 0.05 suits adam)")
    train.add_argument("--erase", type=float, metavar="P", help="probability of random erasing (default 0.25)")
    train.add_argument("--maxpool", action="store_true", default=None,
                       help="keep the stem's max-pool (faster, usually less accurate at 48 px)")
    train.add_argument("--stem-stride", type=int, choices=(1, 2),
                       help="stride of the first convolution (default 2; 1 is about 4x slower, finer)")
    train.add_argument("--mixup", type=float, metavar="ALPHA",
                       help="blend pairs of training images and labels, fastai MixUp (default 0: off; 0.2-0.4 typical)")
    train.add_argument("--teacher", action="append", default=[], type=Path, metavar="MODEL",
                       help="distil MODEL (.onnx, run folder or .pth; repeatable): blend its answers for the "
                            "training images into the targets, e.g. a slower, more accurate model")
    train.add_argument("--distill", type=float, metavar="SHARE",
                       help=f"the teachers' share of each target, 0-1 (default {_DEFAULT_DISTILL} with --teacher)")
    train.add_argument("--bf16", action="store_true", default=None,
                       help="train under bfloat16 autocast: about 2x faster on AMX CPUs and recent GPUs")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--holdout", type=_fold, metavar="K/N",
                       help="train without fold K of N of the training images (fixed by image name) to make "
                            "an out-of-fold teacher: as --teacher it answers only for the images it never "
                            "saw; N runs, K = 0 .. N-1, cover them all")
    train.add_argument("--exclude", type=Path, metavar="FILE", help="skip the images listed in FILE (from `moodloop clean`)")
    train.add_argument("--init", type=Path, metavar="WEIGHTS",
                       help="start from local weights instead of random ones: a run folder, a .pth or an "
                            "exported .onnx (e.g. the shipped model) of the same --arch and classes")
    train.add_argument("--minutes", type=float, metavar="M",
                       help="finish within about M minutes: once two epochs have shown the pace, the one-cycle "
                            "schedule is shortened to the epochs that fit, so the run still anneals "
                            "(--epochs stays the most it runs)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch, "
                       "with its stored recipe (recipe options are ignored, except --epochs: a new length, "
                       "for which the one-cycle schedule is recomputed)")
    _add_device(train)

    evaluate = _command(subparsers, "evaluate", run_evaluate, _EVALUATE_EXAMPLES,
                        "score models on a labelled dataset (accuracy, F1, confusion matrix)",
                        "Score one or more models; several print a side-by-side table.")
    evaluate.add_argument("--model", action="append", default=[], metavar="MODEL",
                          help="model to score (repeatable; default: the shipped model)")
    _add_data(evaluate)
    evaluate.add_argument("--split", choices=("valid", "train", "all"),
                          help="split to score: valid, train, or all for a plain folder of class subfolders "
                               "(default: valid if present, else all)")
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="write all figures to FILE")
    evaluate.add_argument("--plots", type=Path, metavar="DIR",
                          help="write confusion-matrix and top-losses PNGs (the latter shows faces)")
    evaluate.add_argument("--tta", nargs="?", const="flip", choices=("flip", "tencrop"),
                          help="test-time augmentation: 'flip' (the default when given alone) averages the "
                               "image and its mirror; 'tencrop' five 44 px crops and their mirrors")
    _add_device(evaluate)

    export = _command(subparsers, "export", run_export, _EXPORT_EXAMPLES,
                      "export a training run as the ONNX model the sensor loads",
                      "Export a run's best checkpoint to ONNX with moodloop metadata.")
    export.add_argument("--run", type=Path, required=True, metavar="RUN_DIR", help="the training run folder")
    export.add_argument("--out", type=Path, metavar="FILE", help="output .onnx (default RUN_DIR/<run>.onnx)")
    precision = export.add_mutually_exclusive_group()
    precision.add_argument("--fp16", dest="fp16", action="store_true", default=True,
                           help="store weights as float16, compute in float32 (default)")
    precision.add_argument("--fp32", dest="fp16", action="store_false", help="store weights as float32")
    export.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint (default best)")
    export.add_argument("--verify", metavar="DATA",
                        help="check parity with the fastai learner on DATA's validation split")
    export.add_argument("--merge", action="append", default=[], metavar="SRC=DST", help="as for train, for --verify")

    quantize = _command(subparsers, "quantize", run_quantize, _QUANTIZE_EXAMPLES,
                        "make an exported model int8: about 4x faster in the sensor",
                        "Quantize a float moodloop model to int8 (onnxruntime static QDQ), calibrated "
                        "on training faces, and compare it with its source on the validation split (data with one "
                        "split: calibrated on part of it, compared on the rest).")
    quantize.add_argument("--model", type=Path, required=True, metavar="FILE",
                          help="the float .onnx model (`moodloop export` writes one)")
    _add_data(quantize)
    quantize.add_argument("--out", type=Path, required=True, metavar="FILE", help="the int8 .onnx to write")
    quantize.add_argument("--flip", action="store_true",
                          help="average each face with its mirror inside the graph (flip test-time "
                               "augmentation: twice the int8 cost, still half the float model's)")
    quantize.add_argument("--images", type=int, default=_CALIBRATION_IMAGES, metavar="N",
                          help=f"training faces that calibrate the activation ranges (default {_CALIBRATION_IMAGES})")


def _command(subparsers: argparse._SubParsersAction, name: str,
             run: Callable[[argparse.Namespace], int], epilog: str, summary: str,
             description: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=summary, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=run)
    return parser


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR_OR_ZIP_OR_CSV",
                        help="dataset folder, .zip or fer2013.csv")
    parser.add_argument("--merge", action="append", default=[], metavar="SRC=DST",
                        help="merge class SRC into DST, e.g. disgust=angry (repeatable)")


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")


def _fold(text: str) -> tuple[int, int]:
    """Parse ``--holdout K/N`` into (K, N); Recipe checks the range."""
    try:
        fold, folds = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (fold K of N), e.g. 0/5") from None
    return fold, folds


def run_clean(args: argparse.Namespace) -> int:
    """Run `moodloop clean`."""
    from moodloop.training.clean import CleanConfig, find_issues, write_report
    from moodloop.training.data import load_dataset, parse_merge
    from moodloop.engine.outputs import writable_folder
    from moodloop.training.predict import label_columns, load_predictor

    config = CleanConfig() if args.blank_std is None else CleanConfig(blank_std=args.blank_std)
    writable_folder(args.out, "--out")
    data = load_dataset(args.data, parse_merge(args.merge))
    probs = None
    if args.model:
        predictor = load_predictor(args.model, args.device)
        columns = label_columns(predictor.labels, data.classes)
        probs = {name: predictor.predict(split.images)[:, columns] for name, split in data.splits.items()}
    report = write_report(data, find_issues(data, probs, config), args.out, str(args.data), config,
                          args.model)
    print(f"{sum(report['images'].values())} images: "
          + ", ".join(f"{n} {kind}" for kind, n in report["counts"].items())
          + f"; {report['excluded']} training images listed in {args.out / report['exclusion_list']['file']}"
          + f" (report: {args.out / 'clean.md'})")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Run `moodloop train`."""
    import math
    import time

    from moodloop.engine.errors import ConfigError
    from moodloop.training.data import load_dataset, parse_merge, read_exclusions
    from moodloop.engine.outputs import writable_folder
    from moodloop.training.recipe import Recipe
    from moodloop.training.train import train

    started = time.monotonic()  # --minutes counts the data's loading too
    if args.minutes is not None and not (args.minutes > 0 and math.isfinite(args.minutes)):
        raise ConfigError(f"--minutes must be a finite number above 0, not {args.minutes}.")
    fold, folds = args.holdout or (None, None)
    given = {"arch": args.arch, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
             "optimizer": args.optimizer, "weight_decay": args.wd, "erase": args.erase,
             "maxpool": args.maxpool, "stem_stride": args.stem_stride, "mixup": args.mixup,
             "bf16": args.bf16, "seed": args.seed, "fold": fold, "folds": folds,
             "distill": _DEFAULT_DISTILL if args.teacher and args.distill is None else args.distill}
    recipe = Recipe(**{k: v for k, v in given.items() if v is not None})  # defaults live in Recipe
    writable_folder(args.out, "--out")  # train() checks it too, but only after the data has loaded
    data = load_dataset(args.data, parse_merge(args.merge))
    if args.exclude:
        data = data.without(read_exclusions(args.exclude))
    before = _epochs_done(args.out)
    try:
        run = train(data, args.out, recipe, resume=args.resume, device=args.device, init=args.init,
                    teachers=args.teacher, epochs=args.epochs if args.resume else None,
                    budget=None if args.minutes is None else args.minutes * 60 - (time.monotonic() - started))
    except KeyboardInterrupt:
        done = _epochs_done(args.out)
        print(f"moodloop train: stopped; {args.out} holds {done} finished epochs: the same command with --resume "
              "continues from there." if done else "moodloop train: stopped before the first epoch finished; "
              "run the same command again to start over.", file=sys.stderr)
        raise
    finished = (" (it had finished already: --resume --epochs N trains it longer)"
                if run["epochs_done"] == before else "")
    print(f"{args.out}: {run['epochs_done']}/{run['recipe']['epochs']} epochs, best validation "
          f"accuracy {run.get('best_accuracy', float('nan')):.2%} (epoch {run.get('best_epoch')}){finished}")
    return 0


def _epochs_done(out: Path) -> int:
    """The epochs a run folder has finished (0 when it holds no readable run)."""
    from moodloop.engine.errors import ModelError
    from moodloop.training.train import read_run

    try:
        return read_run(out)["epochs_done"]
    except ModelError:
        return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `moodloop evaluate`."""
    from moodloop.training.data import parse_merge
    from moodloop.training.evaluate import EvalConfig, comparison_table, format_evaluation, run_evaluation

    config = EvalConfig(models=tuple(args.model), data=Path(args.data), split=args.split,
                        merge=tuple(parse_merge(args.merge).items()), tta=args.tta, json=args.json,
                        plots=args.plots, device=args.device)
    results = run_evaluation(config)
    print("\n\n".join(format_evaluation(r) for r in results))
    if len(results) > 1:
        print("\n" + comparison_table(results))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Run `moodloop export`."""
    from moodloop.training.data import load_dataset, parse_merge
    from moodloop.training.evaluate import default_split
    from moodloop.training.export import ExportConfig, export, parity
    from moodloop.training.predict import label_columns
    from moodloop.training.train import read_run

    config = ExportConfig(run=args.run, out=args.out, fp16=args.fp16, checkpoint=args.checkpoint)
    data = load_dataset(args.verify, parse_merge(args.merge)) if args.verify else None
    if data is not None:  # a --verify that cannot work fails before anything is written
        label_columns(read_run(config.run)["classes"], data.classes)
    out = export(config)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if data is not None:
        name = default_split(data)
        check = parity(config.run, out, data.split(name), data.classes, config.checkpoint)
        print(f"parity on {name} ({check.images} images): {check.agreement:.3%} same predictions, "
              f"max probability difference {check.max_prob_diff:.2e}; accuracy learner (fp32) "
              f"{check.reference_accuracy:.2%}, exported {check.model_accuracy:.2%}")
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    """Run `moodloop quantize`."""
    import numpy as np

    from moodloop.engine.errors import ConfigError
    from moodloop.engine.outputs import writable_file
    from moodloop.training.data import load_dataset, parse_merge
    from moodloop.training.evaluate import default_split
    from moodloop.training.export import compare
    from moodloop.training.predict import OnnxPredictor, label_columns
    from moodloop.training.quantize import QuantizeConfig, quantize

    if args.images < 1:
        raise ConfigError(f"--images {args.images}: calibration needs at least one face (default {_CALIBRATION_IMAGES}).")
    source = OnnxPredictor(args.model)  # a wrong --model or --out fails before the data loads
    writable_file(args.out, "--out")
    if args.out.resolve() == args.model.resolve():
        raise ConfigError(f"--out {args.out} is the --model itself: keep the float model (int8 cannot be "
                          "retrained or quantized again) and write the int8 one to another file.")
    data = load_dataset(args.data, parse_merge(args.merge))
    label_columns(source.labels, data.classes)  # classes the model lacks fail before anything is written
    name = default_split(data)
    calibration = "train" if "train" in data.splits else name
    pool = data.split(calibration)
    chosen = np.sort(np.random.default_rng(0).permutation(len(pool))[:args.images])  # the same on every run
    scored, unseen = data.split(name), ""
    if calibration == name:  # one split: check the int8 model only on faces its calibration did not see
        scored, unseen = scored.without(pool.names[i] for i in chosen), " not used for calibration"
        if not len(scored):
            raise ConfigError(f"--images {args.images} takes all {len(pool)} faces of {args.data} for calibration, "
                              "leaving none to check the int8 model on: pass fewer --images, or data with a "
                              "train split.")
    out = quantize(QuantizeConfig(args.model, args.out, args.flip), pool.images[chosen])
    result = OnnxPredictor(out)
    check = compare(source, result, scored, data.classes)
    used = result.info.provenance["int8"]["calibration_images"]  # blank faces are skipped
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), calibrated on {used} faces; on {name} "
          f"({check.images} images{unseen}): {check.agreement:.2%} same predictions, accuracy float "
          f"{check.reference_accuracy:.2%}, int8{' with flip' if args.flip else ''} {check.model_accuracy:.2%}")
    return 0
