"""Temporal smoothing of class probabilities: a time-based EMA plus label hysteresis.

A per-frame EMA factor would smooth twice as hard at 60 fps as at 30 fps; deriving the factor
from the elapsed time and a half-life makes the smoothing identical at any frame rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moodloop.engine.errors import ModelError
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
        """Fold in this frame's probabilities observed at source time `clock` (seconds).

        Raises:
            ModelError: `probs` are not probabilities (NaN, infinite, negative or all 0): one such
                frame would spoil every reading after it.
        """
        raw = np.asarray(probs, np.float64)
        if not (np.isfinite(raw).all() and (raw >= 0).all() and raw.sum() > 0):
            raise ModelError(f"The emotion model returned {raw.tolist()} for a face, not probabilities: check "
                             "the model (`moodloop evaluate --model FILE` scores it) or use the shipped one.")
        raw = raw / raw.sum()  # a model's scores count as their share, whatever their sum
        if self._state is None:
            self._state, self._label, self._last = raw.copy(), int(raw.argmax()), clock
        else:
            # weight of the old state halves every half_life_s; a long gap forgets it entirely
            keep = 0.5 ** (max(0.0, clock - self._last) / self._config.half_life_s)
            self._state = keep * self._state + (1.0 - keep) * raw
            self._state /= self._state.sum()
            self._last = max(self._last, clock)  # a stamp from the past must not make the next frame look late
        best = int(self._state.argmax())
        if self._state[best] >= self._state[self._label] + self._config.hysteresis:
            self._label = best
        return Reading(
            probs=dict(zip(self._labels, self._state.tolist(), strict=True)),
            raw=dict(zip(self._labels, raw.tolist(), strict=True)),
            label=self._labels[self._label],
            confidence=float(self._state[self._label]),
        )
