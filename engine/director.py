"""Turns engagement states into game decisions, so every game need not reinvent the timing.

The rule: once the player has been bored for ``bored_after`` seconds, fire one intervention
(an obstacle wave, a bonus, a plot twist) and then wait at least ``cooldown`` seconds before
the next one; meanwhile ``intensity`` ramps from 0 to 1 over ``ramp_time`` seconds for games
that prefer a gradual change. Engagement resets the boredom timer and the ramp (the cooldown
keeps running, so flickering states cannot fire a burst). An absent player pauses the game.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass

from moodloop.engine.errors import ConfigError, ProtocolError
from moodloop.engine.protocol import STATES

__all__ = ["Decision", "Director"]


@dataclass(frozen=True)
class Decision:
    """What the game should do this frame.

    Attributes:
        intervene: Fire one intervention now (true on a single update, then cooldown).
        intensity: 0 = the game's normal curve, up to 1 = boredom confirmed ``ramp_time`` ago.
        pause: The player is absent; pause the game.
        state: The engagement state this decision was made for.
    """

    intervene: bool = False
    intensity: float = 0.0
    pause: bool = False
    state: str = "unknown"


class Director:
    """Stateful boredom timer with cooldown and ramp, driven by ``update`` once per frame.

    Args:
        bored_after: Seconds of continuous boredom before intervening.
        cooldown: Minimum seconds between two interventions.
        ramp_time: Seconds for ``intensity`` to go from 0 to 1 once boredom is confirmed.
        clock: Monotonic clock in seconds, used when ``update`` gets no ``now``.

    Raises:
        ConfigError: A duration is negative, infinite, NaN or not a number.
    """

    def __init__(
        self,
        *,
        bored_after: float = 3.0,
        cooldown: float = 10.0,
        ramp_time: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("bored_after", bored_after), ("cooldown", cooldown), ("ramp_time", ramp_time)):
            if isinstance(value, bool) or not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"Director {name} must be a number of seconds >= 0, got {value!r}.")
        self.bored_after = bored_after
        self.cooldown = cooldown
        self.ramp_time = ramp_time
        self._clock = clock
        self._bored_since: float | None = None
        self._last_intervention: float | None = None

    def update(self, state: str, now: float | None = None) -> Decision:
        """Feed the current engagement state and get this frame's decision.

        Args:
            state: One of STATES, typically ``Subscriber.state``.
            now: Time in the clock's seconds; defaults to ``clock()``.

        Returns:
            What the game should do this frame.

        Raises:
            ProtocolError: ``state`` is not one of STATES.
        """
        if state not in STATES:
            raise ProtocolError(f"Unknown engagement state {state!r}; expected one of {', '.join(STATES)}.")
        now = self._clock() if now is None else now
        if state != "bored":
            self._bored_since = None
            return Decision(pause=state == "absent", state=state)
        if self._bored_since is None:
            self._bored_since = now
        confirmed_for = now - self._bored_since - self.bored_after
        if confirmed_for < 0:
            return Decision(state=state)
        intervene = self._last_intervention is None or now - self._last_intervention >= self.cooldown
        if intervene:
            self._last_intervention = now
        intensity = min(1.0, confirmed_for / self.ramp_time) if self.ramp_time else 1.0
        return Decision(intervene=intervene, intensity=intensity, state=state)
