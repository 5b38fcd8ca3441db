"""The heads-up display: score, lives and pace, and the mood (emotions, state, sensor link)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pygame

from moodloop.games.render import ALERT, DIM, INK, SHIP, Text
from moodloop.games.rules import World

__all__ = ["MoodView", "Hud"]

STATE_COLORS = {"engaged": (90, 220, 120), "bored": (255, 160, 60), "absent": (140, 150, 255), "unknown": DIM}
LINK_COLORS = {"online": (90, 220, 120), "mock": (110, 170, 255), "offline": ALERT, "off": DIM}
CAMERA_COLORS = {"on": (255, 60, 60), "lost": (255, 170, 60), "off": DIM, "?": DIM}


@dataclass(frozen=True, kw_only=True)
class MoodView:
    """What the mood panel shows this frame.

    Attributes:
        link: "online", "offline", "mock" or "off" (sensing switched off).
        camera: "on" (a camera is in use), "lost", "off", or "?" (a sensor this game did not
            start: whether it uses a camera is not known here).
        state: The engagement state.
        state_age: Seconds it has lasted, None if unknown.
        bars: Smoothed emotion probabilities, label -> [0, 1].
        note: What to tell the player of the feed (e.g. the sensor stopped, or its video
            ended), or None.
    """

    link: str
    camera: str
    state: str
    state_age: float | None
    bars: Mapping[str, float]
    note: str | None = None


class Hud:
    """Draws the top strip: score, lives and pace always; the mood part (H toggles it) beside them.

    The strip sits above the playfield (`Tuning.top`), so the score and the mood never hide a
    rock. Only two lines of small text go over the field's bottom edge: the key hints (with the
    mood part) and a note when something went wrong.
    """

    def __init__(self, text: Text) -> None:
        self.text = text
        self.visible = True

    def draw(self, surface: pygame.Surface, world: World, view: MoodView) -> None:
        """Draw the strip, then the mood part and key hints if visible."""
        top = int(world.tuning.top)
        pygame.draw.rect(surface, (14, 17, 36), (0, 0, surface.get_width(), top))
        pygame.draw.line(surface, (60, 70, 110), (0, top - 1), (surface.get_width(), top - 1))
        self._score(surface, world)
        if self.visible:
            self._mood(surface, view)
            hints = self.text("arrows/WASD move   Space fire   P pause   H hide HUD", 22, DIM)
            surface.blit(hints, (16, surface.get_height() - 26))
        if view.note:
            surface.blit(self.text(view.note, 22, ALERT), (16, surface.get_height() - 52))

    def _score(self, surface: pygame.Surface, world: World) -> None:
        text = self.text
        surface.blit(text(f"SCORE {int(world.score):06d}", 40), (16, 10))
        surface.blit(text(f"BEST {max(world.best, int(world.score)):06d}", 24, DIM), (16, 46))
        for i in range(world.lives):  # one small ship per life
            x, y = 290 + i * 34, 26
            pygame.draw.polygon(surface, SHIP, [(x + 14, y), (x - 10, y - 10), (x - 5, y), (x - 10, y + 10)])
        if world.boost > 0.01:
            t = world.tuning
            pace = f"PACE +{t.boost_speed * world.boost:.0%}   points x{1 + t.boost_points * world.boost:.1f}"
            surface.blit(text(pace, 24, STATE_COLORS["bored"]), (170, 46))

    def _mood(self, surface: pygame.Surface, view: MoodView) -> None:
        text, x = self.text, 430
        age = "" if view.state_age is None else f"  {view.state_age:.0f}s"
        surface.blit(text(f"{view.state.upper()}{age}", 40, STATE_COLORS[view.state]), (x, 10))
        self._dot(surface, (x + 6, 56), LINK_COLORS[view.link], f"sensor {view.link}")
        self._dot(surface, (x + 156, 56), CAMERA_COLORS[view.camera], f"camera {view.camera}")
        color = DIM if view.link == "off" else STATE_COLORS[view.state]
        bars = sorted(view.bars.items())[:8]  # a retrained model may have other labels
        for i, (label, value) in enumerate(bars):  # vertical bars, right-aligned
            left = surface.get_width() - 8 - (len(bars) - i) * 62
            pygame.draw.rect(surface, (40, 46, 70), (left + 14, 8, 30, 44))
            pygame.draw.rect(surface, color, (left + 14, 52 - round(44 * value), 30, round(44 * value)))
            label_image = text(label, 18, INK)
            surface.blit(label_image, label_image.get_rect(midtop=(left + 29, 56)))

    def _dot(self, surface: pygame.Surface, at: tuple[int, int], color: tuple[int, ...], label: str) -> None:
        pygame.draw.circle(surface, color, at, 5)
        surface.blit(self.text(label, 20, color), (at[0] + 10, at[1] - 7))
