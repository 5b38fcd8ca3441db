"""Draws Star Drift's world with pygame primitives onto the fixed 1280x720 logical surface."""

from __future__ import annotations

import math
import random

import pygame

from moodloop.games.rules import PACE, WAVE, Burst, Rock, World

__all__ = ["Text", "Renderer", "INK", "DIM", "ALERT", "SHIP"]

SPACE = (8, 10, 24)
INK = (235, 238, 245)
DIM = (140, 146, 165)
ALERT = (255, 96, 72)
SHIP = (90, 220, 255)
ROCK_COLORS = {WAVE: (200, 76, 64), PACE: (196, 140, 72)}
ROCK = (128, 120, 112)


class Text:
    """Renders text with pygame's built-in font, caching what it drew (a HUD repeats itself)."""

    def __init__(self) -> None:
        self._fonts: dict[int, pygame.font.Font] = {}
        self._cache: dict[tuple[str, int, tuple[int, ...]], pygame.Surface] = {}

    def __call__(self, text: str, size: int, color: tuple[int, ...] = INK) -> pygame.Surface:
        """Return `text` rendered at `size` px in `color`."""
        key = (text, size, color)
        if key not in self._cache:
            if len(self._cache) > 1000:  # scores and timers change; keep memory flat
                self._cache.clear()
            font = self._fonts.get(size)
            if font is None:  # loading a font is slow: once per size
                font = self._fonts[size] = pygame.font.Font(None, size)
            self._cache[key] = font.render(text, True, color)
        return self._cache[key]

    def center(self, surface: pygame.Surface, text: str, size: int, y: float, color: tuple[int, ...] = INK) -> None:
        """Draw `text` centred horizontally at height `y`."""
        image = self(text, size, color)
        surface.blit(image, image.get_rect(center=(surface.get_width() / 2, y)))


class Renderer:
    """Draws a `World`: starfield, rocks, ship, shots, wave warnings, boredom cue and overlays."""

    def __init__(self, text: Text, size: tuple[int, int]) -> None:
        self.text = text
        rng = random.Random(7)
        # Three parallax layers: (x, y, depth); positions scroll with the world's distance.
        w, h = size
        self._stars = [(rng.uniform(0, w), rng.uniform(0, h), d) for d in (0.1, 0.25, 0.5) for _ in range(60)]
        self._shade = pygame.Surface(size)
        self._shade.set_alpha(160)
        self._glow = pygame.Surface(size, pygame.SRCALPHA)
        edge = 12
        for i in range(edge):  # an orange frame that fades inwards: the boredom cue
            pygame.draw.rect(self._glow, (255, 140, 40, 90 - 7 * i), self._glow.get_rect().inflate(-2 * i, -2 * i), 1)
        # Blending a whole screen of alpha costs milliseconds; the frame is all there is to blend.
        self._glow_edges = [
            pygame.Rect(0, 0, w, edge),
            pygame.Rect(0, h - edge, w, edge),
            pygame.Rect(0, edge, edge, h - 2 * edge),
            pygame.Rect(w - edge, edge, edge, h - 2 * edge),
        ]
        self._outlines: dict[int, list[tuple[float, float]]] = {}

    def draw(self, surface: pygame.Surface, world: World, now: float) -> None:
        """Draw the whole frame; `now` (seconds) drives blinking, even while the game is paused."""
        surface.fill(SPACE)
        self._starfield(surface, world)
        for rock in world.rocks:
            self._rock(surface, rock, world.elapsed)
        for shot in world.shots:
            pygame.draw.line(surface, (255, 230, 120), (shot.x - 14, shot.y), (shot.x, shot.y), 3)
        for burst in world.bursts:
            self._burst(surface, burst)
        if not (world.invulnerable and int(now * 10) % 2):  # blink while invulnerable
            self._ship(surface, world.x, world.y, world.tuning.player_radius, now)
        self._boredom(surface, world, now)
        self._overlay(surface, world)

    def _starfield(self, surface: pygame.Surface, world: World) -> None:
        width = surface.get_width()
        for x, y, depth in self._stars:
            shade = int(90 + 300 * depth)
            color = (min(shade, 255),) * 3
            sx = (x - world.distance * depth) % width
            streak = 1 + int(world.boost * 24 * depth)  # stars stretch into streaks as the pace rises
            pygame.draw.line(surface, color, (sx, y), (sx + streak, y), 2 if depth > 0.3 else 1)

    def _rock(self, surface: pygame.Surface, rock: Rock, elapsed: float) -> None:
        if rock.seed not in self._outlines:
            rng = random.Random(rock.seed)
            self._outlines[rock.seed] = [(2 * math.pi * i / 9, rng.uniform(0.75, 1.0)) for i in range(9)]
            if len(self._outlines) > 500:
                self._outlines.pop(next(iter(self._outlines)))
        spin = (rock.seed % 200 - 100) / 100 * elapsed
        outline = self._outlines[rock.seed]
        points = [(rock.x + rock.r * k * math.cos(a + spin), rock.y + rock.r * k * math.sin(a + spin)) for a, k in outline]
        color = ROCK_COLORS.get(rock.cause, ROCK)
        if rock.hp < rock.full_hp:  # cracked: darker
            color = tuple(c * 2 // 3 for c in color)
        pygame.draw.polygon(surface, color, points)
        pygame.draw.polygon(surface, tuple(min(c + 60, 255) for c in color), points, 2)

    def _burst(self, surface: pygame.Surface, burst: Burst) -> None:
        k = burst.age / Burst.LIFE
        color = (255, int(200 * (1 - k)) + 40, 60)
        pygame.draw.circle(surface, color, (burst.x, burst.y), burst.r * (0.6 + 1.2 * k), max(1, int(6 * (1 - k))))

    def _ship(self, surface: pygame.Surface, x: float, y: float, r: float, now: float) -> None:
        flame = r * (0.8 + 0.4 * math.sin(now * 40))
        pygame.draw.polygon(surface, (255, 150, 50), [(x - r, y - r * 0.4), (x - r - flame, y), (x - r, y + r * 0.4)])
        pygame.draw.polygon(surface, SHIP, [(x + r * 1.4, y), (x - r, y - r), (x - r * 0.5, y), (x - r, y + r)])
        pygame.draw.circle(surface, (20, 60, 90), (x + r * 0.2, y), r * 0.3)

    def _boredom(self, surface: pygame.Surface, world: World, now: float) -> None:
        t = world.tuning
        if world.boost > 0.01:
            self._glow.set_alpha(int(255 * min(1.0, world.boost * (0.7 + 0.3 * math.sin(now * 4)))))
            for rect in self._glow_edges:
                surface.blit(self._glow, rect, rect)
        wave = world.wave
        if wave is None:
            return
        blink = int(now * 6) % 2 == 0
        for lane in wave.lanes[wave.spawned :]:
            y = t.lane_y(lane)
            arrow = [(t.width - 10, y - 16), (t.width - 38, y), (t.width - 10, y + 16)]
            pygame.draw.polygon(surface, ALERT if blink else (150, 50, 40), arrow)
        self.text.center(surface, "INCOMING WAVE", 64, 120, ALERT)
        self.text.center(surface, "You looked bored. Find the gap!", 30, 164, INK)

    def _overlay(self, surface: pygame.Surface, world: World) -> None:
        shade = True
        if world.over:
            score = f"Score {int(world.score)}   Best {world.best}"
            lines = [("GAME OVER", 96, ALERT), (score, 40, INK), ("Enter or R: play again    Q: quit", 30, DIM)]
        elif world.away:  # the sensor may never find the face (light, a face-less video): say the way out
            keys = "P or Esc: resume" if world.paused else "P or Esc: pause"
            lines = [("Where did you go?", 80, INK), ("The game waits for you and resumes when you are back.", 30, DIM),
                     (f"{'PAUSED    ' if world.paused else ''}{keys}    Q: quit", 30, DIM)]
        elif world.paused:
            lines = [("PAUSED", 88, INK), ("P or Esc: resume    Q: quit", 30, DIM)]
        elif world.resume_in > 0:  # the countdown leaves the field in view: find your ship
            lines, shade = [(f"{math.ceil(world.resume_in)}", 120, INK), ("Welcome back", 36, DIM)], False
        else:
            return
        if shade:
            surface.blit(self._shade, (0, 0))
        y = surface.get_height() / 2 - 40
        for text, size, color in lines:
            self.text.center(surface, text, size, y, color)
            y += size * 0.9

    def notice(self, surface: pygame.Surface, title: str, lines: tuple[str, ...]) -> None:
        """Draw a full-screen notice with a Yes/No choice (the first-run sensing notice)."""
        surface.fill(SPACE)
        self.text.center(surface, title, 56, 130)
        for i, line in enumerate(lines):
            self.text.center(surface, line, 28, 210 + i * 34, INK if line else DIM)
        self.text.center(surface, "Y or Enter: turn the camera on        N or Esc: play without it", 34, 600, SHIP)
