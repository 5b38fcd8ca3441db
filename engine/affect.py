"""Valence and arousal from class probabilities, with Russell & Mehrabian (1977) coordinates.

Each basic emotion sits at a point of the valence/arousal plane; a probability distribution
maps to the probability-weighted mean point, which stays inside [-1, 1] on both axes.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["COORDINATES", "valence_arousal"]

COORDINATES: dict[str, tuple[float, float]] = {
    "happy": (0.81, 0.51),
    "surprise": (0.40, 0.67),
    "angry": (-0.51, 0.59),
    "fear": (-0.64, 0.60),
    "disgust": (-0.60, 0.35),
    "sad": (-0.63, -0.27),
    "neutral": (0.0, 0.0),
}
"""Label -> (valence, arousal). Labels absent here (a retrained model's) count as neutral."""


def valence_arousal(probs: Mapping[str, float]) -> tuple[float, float]:
    """Return the probability-weighted (valence, arousal) of a label -> probability mapping."""
    valence = sum(p * COORDINATES.get(label, (0.0, 0.0))[0] for label, p in probs.items())
    arousal = sum(p * COORDINATES.get(label, (0.0, 0.0))[1] for label, p in probs.items())
    return valence, arousal
