"""The training recipe: the model, the batch augmentation and the fastai Learner.

Choices, and why (FER2013 is 48x48 gray, so resolution is precious):

* ResNet34 from scratch (no ImageNet download is possible), one input channel, and by default
  no max-pool after the stem: the feature maps stay 24x24 into layer1 instead of 12x12, the
  change the 48 px literature credits for most of a ResNet's accuracy on FER.
* Augmentation on whole batches of tensors on the training device (one affine warp with flip,
  rotation, scale and shift, then random erasing): per-image PIL transforms dominate a 2-core
  CPU epoch, and CPU-side work starves a GPU.
* A plain linear head (fastai's default head kept a from-scratch model near chance) and SGD
  with momentum, as in the FER papers; Adam stays available (docs/model.md has the runs).
* Label smoothing against FER's noisy labels, or soft targets from teacher models
  (distillation, see distill.py); one-cycle schedule. bfloat16 autocast (``bf16``)
  trains about 2x faster on a CPU with AMX; float32 stays the default.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.callback.hook import num_features_model
from fastai.callback.mixup import MixUp, reduce_loss
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import LabelSmoothingCrossEntropyFlat
from fastai.metrics import accuracy
from fastai.optimizer import Adam, Optimizer, average_grad, momentum_step, weight_decay
from fastai.vision.learner import create_body
from torch import nn
from torchvision import models

from moodloop.engine.errors import ConfigError
from moodloop.training.data import Split

__all__ = ["Recipe", "Normalization", "build_model", "build_dataloaders", "build_learner",
           "ARCHS", "OPTIMIZERS", "Autocast", "pick_device"]

ARCHS = {"resnet18": models.resnet18, "resnet34": models.resnet34, "resnet50": models.resnet50}


class _ForeachSGD(Optimizer):
    """fastai's SGD (momentum, decoupled weight decay) with each step done as a few foreach ops.

    fastai's own step runs Python callbacks parameter by parameter: for a ResNet34's 110 tensors
    about 550 small kernel launches a step with zero_grad, overhead that leaves a GPU waiting
    (docs/model-sessions.md, session 15). This is the same update in five ops on whole parameter
    lists, and it keeps fastai's state (``grad_avg``, ``do_wd`` per parameter), so checkpoints load in either.
    """

    def __init__(self, params: list, lr: float, mom: float = 0.9, wd: float = 0.0) -> None:
        super().__init__(params, [weight_decay, average_grad, momentum_step], lr=lr, mom=mom, wd=wd)

    def zero_grad(self) -> None:
        """Zero every gradient in one op."""
        grads = [p.grad for params in self.param_lists for p in params if p.grad is not None]
        if grads:
            torch._foreach_zero_(grads)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        """Decay, average and step every parameter that has a gradient: p = p(1 - lr wd) - lr m."""
        for params, hyper in zip(self.param_lists, self.hypers):
            params = [p for p in params if p.grad is not None]
            states = [self.state[p] for p in params]
            for p, state in zip(params, states):
                if "grad_avg" not in state:
                    state["grad_avg"] = torch.zeros_like(p)
            decayed = [p for p, state in zip(params, states) if state.get("do_wd", True)]
            if hyper["wd"] and decayed:
                torch._foreach_mul_(decayed, 1 - hyper["lr"] * hyper["wd"])
            averages = [state["grad_avg"] for state in states]
            torch._foreach_mul_(averages, hyper["mom"])
            torch._foreach_add_(averages, [p.grad for p in params])
            torch._foreach_add_(params, averages, alpha=-hyper["lr"])


OPTIMIZERS = {"sgd": partial(_ForeachSGD, mom=0.9), "adam": Adam}  # fit_one_cycle then cycles mom 0.95-0.85


@dataclass(frozen=True)
class Recipe:
    """Every knob of a training run; stored with checkpoints and in the exported model.

    Attributes:
        arch: torchvision ResNet name (see ARCHS).
        maxpool: keep the stem's max-pool (faster, coarser) or drop it (the default).
        stem_stride: stride of the stem's first convolution: 2 as in ImageNet ResNets, or 1 to
            keep all 48 px into layer1 (about 4x the compute, finer features).
        epochs: length of the one-cycle schedule.
        batch_size: images per step.
        lr: peak learning rate; None means "use lr_find's suggestion".
        optimizer: "sgd" (momentum, fastai's one-cycle momentum schedule) or "adam".
        weight_decay: decoupled weight decay (fastai applies it apart from the momentum, so 5e-3
            here shrinks weights about as much as the usual L2 5e-4 of SGD with momentum 0.9).
        label_smoothing: epsilon of the label-smoothing loss.
        rotate: maximum rotation in degrees.
        scale: maximum relative zoom in or out.
        shift: maximum shift as a fraction of the image side.
        erase: probability of erasing one random rectangle.
        mixup: alpha of fastai's MixUp (blends pairs of images and their labels); 0 is off.
        distill: the teacher models' share of each training target (0-1); 0 trains on the labels
            alone, and anything above needs teachers (see distill.py).
        bf16: train under bfloat16 autocast.
        seed: random seed for weights, shuffling and augmentation.
        folds: split the training images into this many fixed folds (``data.in_fold``) and
            train without fold ``fold``, to make an out-of-fold teacher (see distill.py);
            1 trains on all of them.
        fold: the fold left out when ``folds`` is above 1.
    """

    arch: str = "resnet34"
    maxpool: bool = False
    stem_stride: int = 2
    epochs: int = 30
    batch_size: int = 128
    lr: float | None = None
    optimizer: str = "sgd"
    weight_decay: float = 5e-3
    label_smoothing: float = 0.1
    rotate: float = 10.0
    scale: float = 0.1
    shift: float = 0.1
    erase: float = 0.25
    mixup: float = 0.0
    distill: float = 0.0
    bf16: bool = False
    seed: int = 0
    folds: int = 1
    fold: int = 0

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"Unknown --arch {self.arch!r}; choose one of {', '.join(ARCHS)}.")
        for option, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size)):
            if value < 1:
                raise ConfigError(f"{option} must be at least 1, not {value}.")
        if self.stem_stride not in (1, 2):
            raise ConfigError(f"--stem-stride must be 1 or 2, not {self.stem_stride}.")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be above 0 (or left out for lr_find's suggestion), not {self.lr}.")
        if not (math.isfinite(self.mixup) and self.mixup >= 0):
            raise ConfigError(f"--mixup must be 0 (off) or a positive alpha, not {self.mixup}.")
        for option, value, high in (("--wd", self.weight_decay, math.inf), ("--erase", self.erase, 1),
                                    ("label_smoothing", self.label_smoothing, 1), ("rotate", self.rotate, 180),
                                    ("scale", self.scale, 1), ("shift", self.shift, 1)):
            if not (math.isfinite(value) and 0 <= value <= high):  # NaN fails every comparison
                raise ConfigError(f"{option} must be a number from 0 to {high}, not {value}."
                                  if high < math.inf else f"{option} must be 0 or more, not {value}.")
        if not 0 <= self.distill <= 1:
            raise ConfigError(f"--distill is the teachers' share of the targets, 0 to 1, not {self.distill}.")
        if self.folds < 1 or not 0 <= self.fold < self.folds:
            raise ConfigError(f"--holdout {self.fold}/{self.folds}: leave out fold K of N with 0 <= K < N, "
                              "e.g. --holdout 0/5 (then 1/5 ... 4/5 for the other runs of the set).")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"Unknown --optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")

    def to_dict(self) -> dict:
        """Return the recipe as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Recipe:
        """Rebuild a recipe stored by ``to_dict``.

        Raises:
            ConfigError: the stored recipe has settings this version does not know.
        """
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"The stored recipe has settings this moodloop does not know: {unknown}. "
                              "Update moodloop, or start a new run.")
        return cls(**values)


def pick_device(device: str | None) -> str:
    """Return ``device``, checked, or "cuda" when available and "cpu" otherwise for None."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} asked for, but torch sees no CUDA GPU here; use --device cpu.")
    return device


@dataclass(frozen=True)
class Normalization:
    """Pixel normalisation: x = (pixel / 255 - mean) / std, measured on the training split."""

    mean: float
    std: float

    @classmethod
    def of(cls, split: Split) -> Normalization:
        """Measure the mean and standard deviation of a split's pixels."""
        pixels = split.images.astype(np.float32) / 255.0
        return cls(float(pixels.mean()), float(pixels.std()))


def build_model(recipe: Recipe, n_classes: int) -> nn.Module:
    """Create the ResNet for 1-channel 48 px faces: fastai's body and a plain linear head.

    fastai's default head (two linear layers, dropout 0.5, Kaiming-initialised logits) kept the
    training loss above chance for epochs when learning from scratch (docs/model.md), so the
    head is the torchvision one: global average pool and one linear layer.
    """
    body = create_body(ARCHS[recipe.arch](), n_in=1, pretrained=False)
    features = num_features_model(body)
    model = nn.Sequential(body, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(features, n_classes)))
    if not recipe.maxpool:
        model[0][3] = nn.Identity()  # body = conv1, bn1, relu, maxpool, layer1..4
    model[0][0].stride = (recipe.stem_stride, recipe.stem_stride)
    # Channels-last feeds the CPU's bfloat16 (AMX) kernels; in float32 it is about 20 % slower here.
    return model.to(memory_format=torch.channels_last) if recipe.bf16 else model


def _augment(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """Randomly flip, rotate, zoom, shift and erase a batch [B, 1, H, W] in one pass, on its device."""
    b, _, h, w = x.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=x.device)  # noqa: E731
    angle = (rand(b) * 2 - 1) * math.radians(recipe.rotate)
    zoom = 1 + (rand(b) * 2 - 1) * recipe.scale
    flip = torch.where(rand(b) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([
        torch.stack([cos * flip, -sin, (rand(b) * 2 - 1) * recipe.shift * 2], 1),
        torch.stack([sin * flip, cos, (rand(b) * 2 - 1) * recipe.shift * 2], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # Random erasing: one rectangle of 2-20 % of the area per chosen image, filled with noise.
    area = (0.02 + rand(b) * 0.18) * h * w
    aspect = torch.exp((rand(b) * 2 - 1) * math.log(3))
    eh = (area * aspect).sqrt().clamp(1, h).long()
    ew = (area / aspect).sqrt().clamp(1, w).long()
    top = (rand(b) * (h - eh + 1)).long()
    left = (rand(b) * (w - ew + 1)).long()
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    box = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
           & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)))
    box &= (rand(b) < recipe.erase).view(b, 1, 1)
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    return torch.where(box.unsqueeze(1), noise, x)


class Augment(Callback):
    """Augment each training batch where it already is: on a GPU the CPU would be the bottleneck."""

    order, run_valid = -5, False  # before MixUp blends and Autocast casts

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def before_fit(self) -> None:
        self.generator = torch.Generator(self.dls.device).manual_seed(self.recipe.seed)

    def before_batch(self) -> None:
        self.learn.xb = (_augment(self.xb[0], self.recipe, self.generator),)


class _Batches:
    """Batches of one split, cut from tensors that stay on the training device.

    The split goes to the device once (FER's training images are 66 MB as uint8); a batch is
    then one gather and one normalisation there. A torch DataLoader would index and stack the
    images one by one in Python and copy every batch over, which on a GPU is time it waits.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, norm: Normalization, batch_size: int,
                 device: torch.device, shuffle: torch.Generator | None = None) -> None:
        self.images = torch.from_numpy(images).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        self.norm, self.batch_size, self.shuffle = norm, batch_size, shuffle

    def __len__(self) -> int:
        n = len(self.labels)  # training drops the last partial batch (BatchNorm and an even step size)
        return n // self.batch_size if self.shuffle is not None else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = None
        if self.shuffle is not None:
            order = torch.randperm(len(self.labels), generator=self.shuffle).to(self.images.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = slice(start, start + self.batch_size)
            index = batch if order is None else order[batch]
            images = self.images[index].unsqueeze(1).float().div_(255)
            yield (images - self.norm.mean) / self.norm.std, self.labels[index]


def build_dataloaders(train: Split, valid: Split, recipe: Recipe, norm: Normalization,
                      device: torch.device | str = "cpu", targets: np.ndarray | None = None) -> DataLoaders:
    """Wrap the splits in fastai DataLoaders: shuffled train, plain valid (Augment augments).

    Args:
        train: the training split.
        valid: the validation split.
        recipe: batch size and seed.
        norm: the pixel normalisation.
        device: where the splits and their batches live.
        targets: float training targets [N, K] (distillation) instead of the train labels.
    """
    device = torch.device(device)
    shuffle = torch.Generator().manual_seed(recipe.seed)
    dls = DataLoaders(_Batches(train.images, train.labels if targets is None else targets, norm, recipe.batch_size,
                               device, shuffle),
                      _Batches(valid.images, valid.labels, norm, 256, device))
    dls._device = device  # the Learner asks the DataLoaders where batches are; ours have no .to() to set it
    return dls


class Autocast(Callback):
    """Run forward and loss under bfloat16 autocast on any device (fastai's own is CUDA-only)."""

    order = 10

    def before_batch(self) -> None:
        self.ctx = torch.autocast(self.dls.device.type, dtype=torch.bfloat16)
        self.ctx.__enter__()

    def after_pred(self) -> None:
        self.learn.pred = self.pred.float()

    def after_loss(self) -> None:
        self.ctx.__exit__(None, None, None)


class _SoftTargetLoss(LabelSmoothingCrossEntropyFlat):
    """Label smoothing for class indices; plain cross-entropy for probability targets (distillation)."""

    def __call__(self, inp: torch.Tensor, targ: torch.Tensor, **kwargs) -> torch.Tensor:
        if not targ.is_floating_point():
            return super().__call__(inp, targ, **kwargs)
        loss = -(targ * F.log_softmax(inp.float(), dim=-1)).sum(-1)
        return reduce_loss(loss, self.reduction)  # MixUp sets "none" to get per-image losses


def build_learner(dls: DataLoaders, recipe: Recipe, n_classes: int, path: Path) -> Learner:
    """Create the fastai Learner for ``recipe`` with checkpoints under ``path``."""
    torch.manual_seed(recipe.seed)
    model = build_model(recipe, n_classes).to(dls.device)
    learn = Learner(dls, model, loss_func=_SoftTargetLoss(eps=recipe.label_smoothing),
                    opt_func=OPTIMIZERS[recipe.optimizer], metrics=accuracy, wd=recipe.weight_decay,
                    path=path, model_dir=".")
    learn.add_cb(Augment(recipe))
    if recipe.bf16:
        learn.add_cb(Autocast())
    if recipe.mixup:
        learn.add_cb(MixUp(recipe.mixup))
    return learn
