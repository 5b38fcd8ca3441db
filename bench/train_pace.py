"""Benchmark the pace of a training step, part by part, on this machine's CPU or a GPU.

On a GPU an epoch of FER2013 is bound by per-step overhead rather than the convolutions
(docs/model-sessions.md, sessions 4, 8 and 14), so this times the parts one process spends its step on:

* batches: cutting a batch of 256 from FER-sized data (28,709 images) kept on the device,
  against a torch DataLoader that stacks the images one by one and copies the batch over;
* optimizer: one SGD step and zero_grad over a ResNet34's parameters, moodloop's foreach step
  against fastai's per-parameter one, and the same over tensors of 8 values (dispatch alone:
  on a GPU each of fastai's per-parameter ops is a kernel launch);
* step: whole fastai training steps of the default recipe (augmentation, MixUp 0.2, bfloat16),
  and the epoch of 112 batches they add up to.

Usage:
    uv run python bench/train_pace.py                  # CPU (the step part takes about a minute)
    uv run python bench/train_pace.py --device cuda    # on a lent GPU, before planning runs
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch
from fastai.callback.progress import ProgressCallback  # noqa: F401  (registers Learner.no_bar)
from fastai.optimizer import SGD
from torch.utils.data import DataLoader, TensorDataset

from moodloop.training.data import Split
from moodloop.training.recipe import OPTIMIZERS, Normalization, Recipe, build_dataloaders, build_learner, build_model

FER_TRAIN, BATCH = 28_709, 256
NORM = Normalization(0.5, 0.25)


def timed(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Milliseconds per call of ``run`` after one warm-up call, the device's queue drained."""
    run()
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    sync()
    return (time.perf_counter() - start) / repeats * 1e3


def drain(batches: Iterable, device: torch.device) -> Callable[[], None]:
    """A call that takes every batch of an epoch to ``device``."""
    def run() -> None:
        for x, y in batches:
            x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return run


def bench_batches(split: Split, device: torch.device) -> None:
    ours = build_dataloaders(split, split, Recipe(batch_size=BATCH), NORM, device).train
    dataset = TensorDataset(torch.from_numpy(split.images), torch.from_numpy(split.labels))

    def collate(items: list) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([i for i, _ in items]).unsqueeze(1).float().div_(255)
        return (images - NORM.mean) / NORM.std, torch.stack([y for _, y in items])

    torch_loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True, collate_fn=collate)
    for name, loader in (("on the device", ours), ("torch DataLoader", torch_loader)):
        ms = timed(drain(loader, device), device, 2) / len(loader)
        print(f"batches   {name:<18} {ms:7.2f} ms a batch of {BATCH}")


def bench_optimizer(device: torch.device) -> None:
    real = list(build_model(Recipe(), 7).to(device).parameters())
    tiny = [torch.nn.Parameter(torch.zeros(8, device=device)) for _ in real]  # what dispatch alone costs
    makers = (("moodloop foreach", OPTIMIZERS["sgd"]), ("fastai SGD", lambda ps, lr: SGD(ps, lr, mom=0.9)))
    for what, params in (("ResNet34", real), (f"{len(real)} tensors of 8", tiny)):
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
        for name, make in makers:
            opt = make(params, lr=1e-3)
            opt.set_hypers(wd=5e-3)

            def step() -> None:
                opt.step()
                opt.zero_grad()

            print(f"optimizer {name:<18} {timed(step, device, 20):7.2f} ms a step and zero_grad, {what}")


def bench_step(split: Split, device: torch.device, batches: int) -> None:
    recipe = Recipe(batch_size=BATCH, lr=0.05, mixup=0.2, erase=0.5, bf16=True, epochs=1)
    cut = lambda n: Split(split.images[:n], split.labels[:n], split.names[:n])  # noqa: E731
    with TemporaryDirectory() as tmp:  # validation: one image, so the training batches are what is timed
        learn = build_learner(build_dataloaders(cut(BATCH * batches), cut(1), recipe, NORM, device), recipe, 7,
                              Path(tmp))
        with learn.no_bar(), learn.no_logging():
            ms = timed(lambda: learn.fit(1, recipe.lr), device, 1) / batches
    epoch = ms * (FER_TRAIN // BATCH) / 1e3
    print(f"step      {'fastai fit':<18} {ms:7.1f} ms a batch of {BATCH}: {epoch:.1f} s an epoch of FER2013's "
          "training images, validation and checkpoint aside")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--batches", type=int, default=8, help="training steps timed in the step part (default 8)")
    parser.add_argument("--skip-step", action="store_true", help="time batches and optimizer only")
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (FER_TRAIN, 48, 48), dtype=np.uint8),
                  rng.integers(0, 7, FER_TRAIN).astype(np.int64), ("",) * FER_TRAIN)
    print(f"{device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_batches(split, device)
    bench_optimizer(device)
    if not args.skip_step:
        bench_step(split, device, args.batches)


if __name__ == "__main__":
    main()
