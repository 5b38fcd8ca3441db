"""Benchmark the training process's memory: resident size after each epoch of `moodloop train`.

Trains the default recipe (ResNet34, bfloat16 autocast, batch 128) on a synthetic 48 px dataset
in a temporary folder and prints the process's resident memory (VmRSS, Linux) after every epoch
and at its peak. A run whose memory grows epoch after epoch cannot train for long on a small
machine; `--keep-heap` skips the per-epoch release of the C heap, to show what it saves.

Usage:
    uv run python bench/train_memory.py                  # 6 epochs of 2,100 images
    uv run python bench/train_memory.py --keep-heap      # the same without the release
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import threading
import time
from pathlib import Path

from moodloop.training import train as train_module
from moodloop.training.data import load_dataset
from moodloop.training.recipe import Recipe
from moodloop.training.synthetic import write_dataset


def rss_mib() -> int:
    """This process's resident memory in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def watch(run: Path, stop: threading.Event, rows: list[tuple[int, int]]) -> None:
    """Record (epoch, MiB) whenever the run's record counts one more epoch."""
    done = 0
    while not stop.wait(0.2):
        try:
            epochs = json.loads((run / "run.json").read_text())["epochs_done"]
        except (OSError, ValueError, KeyError):
            continue  # not written yet, or caught mid-write
        if epochs > done:
            done = epochs
            rows.append((done, rss_mib()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs to train (default 6)")
    parser.add_argument("--per-class", type=int, default=300, help="training images per class (default 300)")
    parser.add_argument("--keep-heap", action="store_true", help="do not release the C heap after each epoch")
    args = parser.parse_args()
    if args.keep_heap:
        train_module._ReleaseMemory.after_epoch = lambda self: None

    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(write_dataset(Path(tmp) / "data", train_per_class=args.per_class, valid_per_class=40))
        run, stop, rows = Path(tmp) / "run", threading.Event(), []
        print(f"start: {rss_mib()} MiB; {len(data.split('train'))} training images, {args.epochs} epochs, "
              f"heap {'kept' if args.keep_heap else 'released'} after each epoch")
        watcher = threading.Thread(target=watch, args=(run, stop, rows), daemon=True)
        watcher.start()
        start = time.perf_counter()
        train_module.train(data, run, Recipe(epochs=args.epochs, lr=0.05, bf16=True), device="cpu")
        time.sleep(0.5)  # let the watcher see the last epoch
        stop.set()
        watcher.join()
    for epoch, mib in rows:
        print(f"after epoch {epoch}: {mib} MiB")
    growth = (rows[-1][1] - rows[0][1]) / max(len(rows) - 1, 1) if rows else float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # the kernel's high-water mark, in KiB
    print(f"peak {peak} MiB; growth {growth:.0f} MiB an epoch after the first; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
