"""Temporal smoothing of class probabilities: a time-based EMA plus label hysteresis.

A per-frame EMA factor would smooth twice as hard at 60 fps as at 30 fps; deriving the factor
from the elapsed time and a half-life makes the smoothing identical at any frame rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moodloop.sensor.config import SmoothConfig

__all__ = ["Reading", "Smoother"]


@dataclass(frozen=True)
class Reading:
    """One smoothed emotion reading.

    Attributes:
        probs: Smoothed probabilities, label -> p (sums to 1).
        raw: This frame's unsmoothed probabilities.
        label: Dominant smoothed label, with hysteresis.
        confidence: Smoothed probability of `label`.
    """

    probs: dict[str, float]
    raw: dict[str, float]
    label: str
    confidence: float


class Smoother:
    """Exponential moving average with a half-life in seconds, and a sticky dominant label.

    Args:
        labels: Class names in the classifier's output order.
        config: Half-life and hysteresis margin.
    """

    def __init__(self, labels: Sequence[str], config: SmoothConfig = SmoothConfig()) -> None:
        self._labels = tuple(labels)
        self._config = config
        self._state: np.ndarray | None = None
        self._last = 0.0
        self._label = 0

    def update(self, probs: np.ndarray, clock: float) -> Reading:
        """Fold in this frame's probabilities observed at source time `clock` (seconds)."""
        raw = np.asarray(probs, np.float64)
        if self._state is None:
            self._state, self._label = raw.copy(), int(raw.argmax())
        else:
            # weight of the old state halves every half_life_s; a long gap forgets it entirely
            keep = 0.5 ** (max(0.0, clock - self._last) / self._config.half_life_s)
            self._state = keep * self._state + (1.0 - keep) * raw
            self._state /= self._state.sum()
        self._last = clock
        best = int(self._state.argmax())
        if self._state[best] >= self._state[self._label] + self._config.hysteresis:
            self._label = best
        return Reading(
            probs=dict(zip(self._labels, self._state.tolist(), strict=True)),
            raw=dict(zip(self._labels, (raw / raw.sum()).tolist(), strict=True)),
            label=self._labels[self._label],
            confidence=float(self._state[self._label]),
        )
