"""The heads-up display: score and lives, and the mood panel (emotions, state, sensor link)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pygame

from moodloop.games.render import ALERT, DIM, INK, SHIP, Text
from moodloop.games.rules import World

__all__ = ["MoodView", "Hud"]

STATE_COLORS = {"engaged": (90, 220, 120), "bored": (255, 160, 60), "absent": (140, 150, 255), "unknown": DIM}
LINK_COLORS = {"online": (90, 220, 120), "mock": (110, 170, 255), "offline": ALERT, "off": DIM}
CAMERA_COLORS = {"on": (255, 60, 60), "lost": (255, 170, 60), "off": DIM}
PANEL = pygame.Rect(1280 - 348, 8, 340, 292)


@dataclass(frozen=True, kw_only=True)
class MoodView:
    """What the mood panel shows this frame.

    Attributes:
        link: "online", "offline", "mock" or "off" (sensing switched off).
        camera: "on" (a camera is in use), "lost" or "off".
        state: The engagement state.
        state_age: Seconds it has lasted, None if unknown.
        bars: Smoothed emotion probabilities, label -> [0, 1].
        note: A problem to show the player (e.g. the sensor stopped), or None.
    """

    link: str
    camera: str
    state: str
    state_age: float | None
    bars: Mapping[str, float]
    note: str | None = None


class Hud:
    """Draws the always-on score strip and the toggleable mood panel."""

    def __init__(self, text: Text) -> None:
        self.text = text
        self.visible = True
        self._panel = pygame.Surface(PANEL.size, pygame.SRCALPHA)
        self._panel.fill((16, 20, 40, 200))
        pygame.draw.rect(self._panel, (70, 80, 120, 255), self._panel.get_rect(), 1, border_radius=6)

    def draw(self, surface: pygame.Surface, world: World, view: MoodView) -> None:
        """Draw the score strip, then the mood panel and key hints if visible."""
        self._score(surface, world)
        if self.visible:
            self._mood(surface, world, view)
            surface.blit(self.text("arrows/WASD move   Space fire   P pause   H hide HUD", 22, DIM), (16, 694))

    def _score(self, surface: pygame.Surface, world: World) -> None:
        text = self.text
        surface.blit(text(f"SCORE {int(world.score):06d}", 40), (16, 14))
        surface.blit(text(f"BEST {max(world.best, int(world.score)):06d}", 26, DIM), (300, 22))
        for i in range(world.lives):  # one small ship per life
            x, y = 470 + i * 34, 30
            pygame.draw.polygon(surface, SHIP, [(x + 14, y), (x - 10, y - 10), (x - 5, y), (x - 10, y + 10)])

    def _mood(self, surface: pygame.Surface, world: World, view: MoodView) -> None:
        text, x, y = self.text, PANEL.x, PANEL.y
        surface.blit(self._panel, PANEL.topleft)
        surface.blit(text("MOOD", 26, DIM), (x + 14, y + 12))
        self._dot(surface, (x + 120, y + 20), LINK_COLORS[view.link], f"sensor {view.link}")
        self._dot(surface, (x + 236, y + 20), CAMERA_COLORS[view.camera], f"camera {view.camera}")
        age = "" if view.state_age is None else f"  {view.state_age:.0f}s"
        surface.blit(text(f"{view.state.upper()}{age}", 40, STATE_COLORS[view.state]), (x + 14, y + 40))
        for i, (label, value) in enumerate(sorted(view.bars.items())[:8]):
            row = y + 82 + i * 22
            surface.blit(text(label, 20, INK), (x + 14, row))
            pygame.draw.rect(surface, (40, 46, 70), (x + 96, row + 2, 180, 12))
            pygame.draw.rect(surface, STATE_COLORS[view.state] if view.link != "off" else DIM, (x + 96, row + 2, int(180 * value), 12))
            surface.blit(text(f"{value * 100:3.0f}%", 20, DIM), (x + 286, row))
        if world.boost > 0.01:
            bonus = world.tuning.boost_points * world.boost
            surface.blit(text(f"PACE +{world.tuning.boost_speed * world.boost:.0%}   points x{1 + bonus:.1f}", 24, (255, 160, 60)), (x + 14, y + 262))
        if view.note:
            surface.blit(text(view.note, 20, ALERT), (PANEL.right - text(view.note, 20).get_width(), PANEL.bottom + 6))

    def _dot(self, surface: pygame.Surface, at: tuple[int, int], color: tuple[int, ...], label: str) -> None:
        pygame.draw.circle(surface, color, at, 5)
        surface.blit(self.text(label, 18, color), (at[0] + 9, at[1] - 6))
