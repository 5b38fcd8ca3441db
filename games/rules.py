"""Star Drift's rules: pure, deterministic game state with no pygame and no clock.

The player flies a ship through a field of rocks that scroll in from the right. The world
advances only through `World.step` (time passes, controls apply) and `World.react` (what
the emotion director decided), so every rule here is testable with plain numbers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import ClassVar

__all__ = ["WIDTH", "HEIGHT", "Tuning", "Pace", "Controls", "Rock", "Shot", "Burst", "Wave", "Tally", "World"]

WIDTH, HEIGHT = 1280, 720

CURVE, WAVE, PACE = "curve", "wave", "pace"  # why a rock was spawned
_MOVES_PER_S = 120  # the finest a frame is cut into for moves and collisions


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """Every number that shapes the game; the defaults are the shipped game."""

    width: int = WIDTH
    height: int = HEIGHT
    top: float = 80.0  # the HUD strip at the top stays clear of play
    player_speed: float = 430.0
    player_radius: float = 16.0
    player_x_max: float = 640.0
    lives: int = 3
    invulnerable_s: float = 2.0
    shot_cooldown_s: float = 0.22
    shot_speed: float = 950.0
    # The game's own difficulty curve: rocks get faster and denser the longer a run lasts.
    base_speed: float = 260.0
    speed_gain: float = 4.0  # px/s more for every second played
    max_speed: float = 620.0
    base_interval: float = 0.95  # seconds between rocks at the start
    interval_halflife: float = 75.0  # seconds of play that halve the gap between rocks
    min_interval: float = 0.30
    # Boredom: intensity eases in at `boost_rate` per second, so pressure ramps, never jumps.
    boost_speed: float = 0.35  # +35% scroll speed at full intensity
    boost_spawn: float = 1.0  # +100% rocks at full intensity
    boost_rate: float = 0.25
    boost_points: float = 1.0  # score multiplier bonus at full intensity: pressure pays
    # A wave is announced before it comes: the player sees where rocks will be.
    lanes: int = 8
    wave_gap: int = 2  # adjacent lanes left free, so a wave is always passable
    wave_warning_s: float = 1.5
    wave_spacing_s: float = 0.16
    wave_radius: float = 24.0
    resume_s: float = 1.5  # countdown after the player comes back
    points_per_s: float = 10.0
    points_per_hp: int = 25

    def lane_y(self, lane: int) -> float:
        """The centre height of a wave lane."""
        return self.top + (lane + 0.5) * (self.height - self.top) / self.lanes


@dataclass(frozen=True)
class Pace:
    """How fast and dense the game is right now."""

    speed: float  # scroll speed, px/s
    interval: float  # seconds between rocks from the game's own curve


@dataclass(frozen=True)
class Controls:
    """One frame of player input; `dx` and `dy` are in [-1, 1]."""

    dx: float = 0.0
    dy: float = 0.0
    fire: bool = False


@dataclass
class Rock:
    """An obstacle: a circle that drifts left (and a little up or down)."""

    x: float
    y: float
    r: float
    vx: float
    vy: float
    cause: str
    seed: int  # picks its outline, so it looks the same every frame
    hp: int = field(init=False)

    def __post_init__(self) -> None:
        self.hp = self.full_hp

    @property
    def full_hp(self) -> int:
        """Hits a rock of this size takes: big rocks take two."""
        return 2 if self.r > 36 else 1


@dataclass
class Shot:
    """A bolt fired by the player."""

    x: float
    y: float


@dataclass
class Burst:
    """An explosion to draw; `age` grows to `Burst.LIFE` seconds."""

    LIFE: ClassVar[float] = 0.5
    x: float
    y: float
    r: float
    age: float = 0.0


@dataclass
class Wave:
    """A boredom wave: announced at `lanes`, then spawned one lane at a time."""

    lanes: list[int]
    clock: float = 0.0
    spawned: int = 0


@dataclass
class Tally:
    """Counters over the whole session, kept across restarts."""

    obstacles_total: int = 0
    obstacles_boredom: int = 0
    waves: int = 0
    pauses: int = 0
    hits: int = 0
    destroyed: int = 0
    games_over: int = 0


@dataclass
class World:
    """The whole game state. `step` advances it; `react` applies the emotion director."""

    tuning: Tuning = field(default_factory=Tuning)
    seed: int | None = None
    best: int = 0
    tally: Tally = field(default_factory=Tally)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.reset()

    def reset(self) -> None:
        """Start a new game; the best score and the tally carry over."""
        t = self.tuning
        self.x, self.y = 200.0, (t.top + t.height) / 2
        self.lives = t.lives
        self.score = 0.0
        self.elapsed = 0.0
        self.distance = 0.0
        self.rocks: list[Rock] = []
        self.shots: list[Shot] = []
        self.bursts: list[Burst] = []
        self.invulnerable = 0.0
        self.reload = 0.0
        self.curve_clock = 0.0
        self.pace_clock = 0.0
        self.boost = 0.0
        self.target = 0.0
        self.wave: Wave | None = None
        self.paused = False
        self.away = False
        self.resume_in = 0.0
        self.over = False

    def pace(self) -> Pace:
        """The current speed and spawn interval: the game's curve, raised by boredom."""
        t = self.tuning
        speed = min(t.base_speed + t.speed_gain * self.elapsed, t.max_speed)
        interval = max(t.min_interval, t.base_interval * 0.5 ** (self.elapsed / t.interval_halflife))
        return Pace(speed=speed * (1 + t.boost_speed * self.boost), interval=interval)

    def toggle_pause(self) -> None:
        """The player's own pause (P or Esc); does nothing once the game is over."""
        if not self.over:
            self.paused = not self.paused

    def react(self, *, intervene: bool, intensity: float, away: bool) -> None:
        """Apply the emotion director's decision for this frame.

        Args:
            intervene: start a boredom wave (ignored while one is under way).
            intensity: the boredom pace to ease towards, in [0, 1]; 0 is the normal curve.
            away: the player has left: hold the game until they are back.
        """
        self.target = min(max(intensity, 0.0), 1.0)
        if away and not self.away and not self.over:
            self.tally.pauses += 1
        elif self.away and not away:
            self.resume_in = self.tuning.resume_s  # a beat to find the ship again
        self.away = away
        if intervene and self.wave is None and not self.over:
            self.wave = self._plan_wave()  # counted in the tally once its first rock comes

    def step(self, dt: float, controls: Controls = Controls()) -> None:
        """Advance the game by `dt` seconds under `controls`."""
        if self.over or self.paused or self.away:
            return
        if self.resume_in > 0:
            self.resume_in = max(0.0, self.resume_in - dt)
            return
        # Collisions are tested at the end of each move: in steps of 1/120 s at most, a rock at
        # full pace and a shot (about 1,600 px/s apart) cannot pass through each other unseen.
        moves = max(1, math.ceil(dt * _MOVES_PER_S))
        for _ in range(moves):
            self._advance(dt / moves, controls)
            if self.over:
                break

    def _advance(self, dt: float, controls: Controls) -> None:
        t = self.tuning
        self.elapsed += dt
        self.boost += min(max(self.target - self.boost, -t.boost_rate * dt), t.boost_rate * dt)
        pace = self.pace()
        self.distance += pace.speed * dt
        self.score += t.points_per_s * dt * (1 + t.boost_points * self.boost)
        self._fly(dt, controls)
        self._spawn(dt, pace)
        self._move(dt)
        self._collide()

    def _fly(self, dt: float, controls: Controls) -> None:
        t = self.tuning
        dx, dy = controls.dx, controls.dy
        norm = math.hypot(dx, dy)
        if norm > 1:  # diagonals are no faster
            dx, dy = dx / norm, dy / norm
        r = t.player_radius
        self.x = min(max(self.x + dx * t.player_speed * dt, r), t.player_x_max)
        self.y = min(max(self.y + dy * t.player_speed * dt, t.top + r), t.height - r)
        self.invulnerable = max(0.0, self.invulnerable - dt)
        self.reload = max(0.0, self.reload - dt)
        if controls.fire and self.reload == 0:
            self.shots.append(Shot(self.x + r, self.y))
            self.reload = t.shot_cooldown_s

    def _spawn(self, dt: float, pace: Pace) -> None:
        t = self.tuning
        self.curve_clock += dt
        while self.curve_clock >= pace.interval:
            self.curve_clock -= pace.interval
            self._add_rock(CURVE, pace.speed)
        # Boredom's extra rocks come from a second clock that runs only while bored.
        self.pace_clock += dt * t.boost_spawn * self.boost
        while self.pace_clock >= pace.interval:
            self.pace_clock -= pace.interval
            self._add_rock(PACE, pace.speed)
        if self.wave is not None:
            self.wave.clock += dt
            due = math.floor((self.wave.clock - t.wave_warning_s) / t.wave_spacing_s) + 1
            while self.wave.spawned < min(due, len(self.wave.lanes)):
                self.tally.waves += self.wave.spawned == 0
                lane = self.wave.lanes[self.wave.spawned]
                self._add_rock(WAVE, pace.speed, y=t.lane_y(lane), r=t.wave_radius)
                self.wave.spawned += 1
            if self.wave.spawned == len(self.wave.lanes):
                self.wave = None

    def _add_rock(self, cause: str, speed: float, *, y: float | None = None, r: float | None = None) -> None:
        t, rng = self.tuning, self.rng
        if r is None:
            r = rng.uniform(16, 46)
        if y is None:
            y = rng.uniform(t.top + r, t.height - r)
        # Wave rocks keep formation; the others vary so the field never looks like a grid.
        vx, vy = (speed, 0.0) if cause == WAVE else (speed * rng.uniform(0.8, 1.25), rng.uniform(-40, 40))
        self.rocks.append(Rock(t.width + r, y, r, -vx, vy, cause, rng.getrandbits(32)))
        self.tally.obstacles_total += 1
        if cause != CURVE:
            self.tally.obstacles_boredom += 1

    def _plan_wave(self) -> Wave:
        t = self.tuning
        gap = self.rng.randrange(t.lanes - t.wave_gap + 1)
        lanes = [lane for lane in range(t.lanes) if not gap <= lane < gap + t.wave_gap]
        if self.rng.random() < 0.5:  # sweep down or up: a diagonal wall with a hole in it
            lanes.reverse()
        return Wave(lanes)

    def _move(self, dt: float) -> None:
        t = self.tuning
        for shot in self.shots:
            shot.x += t.shot_speed * dt
        self.shots = [s for s in self.shots if s.x < t.width + 20]
        for rock in self.rocks:
            rock.x += rock.vx * dt
            rock.y += rock.vy * dt
            if not t.top + rock.r <= rock.y <= t.height - rock.r:  # bounce off the edges
                rock.vy = -rock.vy
                rock.y = min(max(rock.y, t.top + rock.r), t.height - rock.r)
        self.rocks = [r for r in self.rocks if r.x > -r.r]
        for burst in self.bursts:
            burst.age += dt
        self.bursts = [b for b in self.bursts if b.age < Burst.LIFE]

    def _collide(self) -> None:
        t = self.tuning
        for shot in list(self.shots):
            rock = next((r for r in self.rocks if math.hypot(r.x - shot.x, r.y - shot.y) < r.r + 4), None)
            if rock is not None:
                self.shots.remove(shot)
                rock.hp -= 1
                if rock.hp == 0:
                    self._destroy(rock)
                    self.score += t.points_per_hp * rock.full_hp * (1 + t.boost_points * self.boost)
                    self.tally.destroyed += 1
        if self.invulnerable > 0:
            return
        # A slightly forgiving hitbox: a graze that looks like a miss is a miss.
        reach = 0.85 * t.player_radius
        rock = next((r for r in self.rocks if math.hypot(r.x - self.x, r.y - self.y) < r.r + reach), None)
        if rock is None:
            return
        self._destroy(rock)
        self.lives -= 1
        self.tally.hits += 1
        self.invulnerable = t.invulnerable_s
        if self.lives == 0:
            self.over = True
            self.wave = None  # a wave still being announced never comes
            self.best = max(self.best, int(self.score))
            self.tally.games_over += 1

    def _destroy(self, rock: Rock) -> None:
        self.rocks.remove(rock)
        self.bursts.append(Burst(rock.x, rock.y, rock.r))
