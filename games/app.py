"""Star Drift's main loop: input, the emotion feed, the rules and drawing, 60 times a second.

Everything is drawn on a fixed 1280x720 logical canvas that is scaled to the window, so the
game reads the same on any window size. Each frame polls the feed once, without blocking,
and applies the director's decision to the world before the world moves.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep the CLI's output ours

import pygame as pg  # noqa: E402

from moodloop.engine.director import Director  # noqa: E402
from moodloop.engine.errors import ConfigError  # noqa: E402
from moodloop.games import consent  # noqa: E402
from moodloop.games.bot import autopilot  # noqa: E402
from moodloop.games.feed import MOCK, OFF, Feed  # noqa: E402
from moodloop.games.hud import Hud, MoodView  # noqa: E402
from moodloop.games.mood import Mood  # noqa: E402
from moodloop.games.render import Renderer, Text  # noqa: E402
from moodloop.games.rules import HEIGHT, WIDTH, Controls, World  # noqa: E402

__all__ = ["GameConfig", "Durations", "Stats", "play"]

log = logging.getLogger(__name__)

_MAX_DT = 0.05  # a long hitch must not teleport rocks through the ship
_BOT_RESTART_S = 2.0


@dataclass(frozen=True, kw_only=True)
class GameConfig:
    """How to run the game.

    Attributes:
        headless: Render off-screen (SDL dummy driver), for automation.
        frames: Stop after this many frames; None plays until the player quits.
        bot: The autopilot plays (and restarts after a game over).
        fps: Frame rate cap.
        seed: Seed for the rocks, for reproducible runs.
        ask_consent: Show the first-run sensing notice before starting the feed.
        screenshot: Save the last frame here as PNG.
        bored_after: Seconds of boredom before a wave (see moodloop.engine.Director).
        cooldown: Minimum seconds between two waves.
        ramp_time: Seconds for the bored pace to reach its full intensity.
    """

    headless: bool = False
    frames: int | None = None
    bot: bool = False
    fps: int = 60
    seed: int | None = None
    ask_consent: bool = False
    screenshot: Path | None = None
    bored_after: float = 3.0
    cooldown: float = 10.0
    ramp_time: float = 20.0


@dataclass
class Durations:
    """Count, total, peak and a 0.1 ms histogram of durations: constant memory for hours of frames."""

    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    _bins: Counter[int] = field(default_factory=Counter)

    def add(self, ms: float) -> None:
        """Record one duration in milliseconds."""
        self.count += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)
        self._bins[round(ms * 10)] += 1

    @property
    def mean_ms(self) -> float:
        """The mean duration (0 when empty)."""
        return self.total_ms / self.count if self.count else 0.0

    def percentile_ms(self, q: float) -> float:
        """The `q`-quantile (0-1), to the histogram's 0.1 ms (0 when empty)."""
        rank, seen = int(q * (self.count - 1)), 0
        for tenths, n in sorted(self._bins.items()):
            seen += n
            if seen > rank:
                return tenths / 10
        return 0.0


@dataclass
class Stats:
    """Frame timings gathered during a run; `report` adds the game's and the feed's story.

    Attributes:
        frame: Intervals between frame starts (what the player sees).
        work: Time spent computing and drawing each frame (no sleep).
    """

    frame: Durations = field(default_factory=Durations)
    work: Durations = field(default_factory=Durations)

    def report(self, game: _Game) -> dict[str, Any]:
        """The JSON-ready summary of a run."""
        frames, seconds = self.frame.count, self.frame.total_ms / 1000
        changes = game.mood.changes
        return {
            "frames": frames,
            "seconds": round(seconds, 3),
            "fps_mean": round(frames / seconds, 2) if seconds else 0.0,
            "frame_ms_max": round(self.frame.max_ms, 2),
            "frame_ms_p99": round(self.frame.percentile_ms(0.99), 2),
            "work_ms_mean": round(self.work.mean_ms, 2),
            "work_ms_max": round(self.work.max_ms, 2),
            **asdict(game.world.tally),
            "score_best": max(game.world.best, int(game.world.score)),
            "feed": game.feed.kind if game.feed.started else OFF,  # a notice never answered started nothing
            "feed_failure": game.feed.failure,
            "states": [asdict(change) for change in changes],
            "state_apply_lag_frames": max((c.lag_frames for c in changes), default=None),
            "state_latency_ms_max": max((c.latency_ms for c in changes), default=None),
        }


def play(config: GameConfig, feed: Feed) -> dict[str, Any]:
    """Run the game until the player quits or `config.frames` have passed.

    Args:
        config: How to run.
        feed: Where the emotions come from; started here (after the notice, if asked).

    Returns:
        The run's statistics (see `Stats.report`).

    Raises:
        ConfigError: No display for a windowed game (or an unusable SDL_VIDEODRIVER), or the
            screenshot cannot be written.
        KeyboardInterrupt, SystemExit: Ctrl-C or a signal stopped the run; the exception's
            ``stats`` attribute holds the statistics so far.
    """
    if config.headless:  # SDL reads these when the display starts
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ["SDL_AUDIODRIVER"] = "dummy"
    try:
        pg.display.init()
    except pg.error as exc:  # a SDL_VIDEODRIVER set to a driver this machine lacks, or mistyped
        raise ConfigError(f"Could not start the display ({exc}; SDL_VIDEODRIVER="
                          f"{os.environ.get('SDL_VIDEODRIVER', 'unset')}): unset SDL_VIDEODRIVER to let SDL choose, "
                          "or add --headless to play without a window.") from exc
    pg.font.init()
    try:
        # Without a display SDL falls back to drawing off screen: the game would run unseen, forever.
        if not config.headless and pg.display.get_driver() == "offscreen" and "SDL_VIDEODRIVER" not in os.environ:
            raise ConfigError("No display to open the game window on (SDL could only draw off screen): run "
                              "`moodloop play` in a desktop session, or add --headless to play without a window.")
        director = Director(bored_after=config.bored_after, cooldown=config.cooldown, ramp_time=config.ramp_time)
        with Mood(None if feed.kind == OFF else feed.plan.endpoint, director=director) as mood:
            return _Game(config, feed, mood).run()
    finally:
        pg.quit()


class _Pacer:
    """Sleeps to a fixed frame schedule, so a late wake-up is made up by the next frames.

    pygame's Clock.tick waits a period from *now*: on a busy CPU every oversleep is lost and
    the game settles below its frame rate. A deadline schedule keeps the mean on target.
    """

    def __init__(self, fps: int) -> None:
        self.period = 1 / fps
        self.deadline = time.perf_counter() + self.period

    def wait(self) -> None:
        """Sleep until the next frame is due."""
        delay = self.deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        # After a long hitch, catch up by one frame at most: never sprint the game.
        self.deadline = max(self.deadline + self.period, time.perf_counter() - self.period)


class _Game:
    """One window, one world: the loop and its per-frame steps."""

    def __init__(self, config: GameConfig, feed: Feed, mood: Mood) -> None:
        self.config, self.feed, self.mood = config, feed, mood
        self.world = World(seed=config.seed)
        pg.display.set_caption("moodloop - Star Drift")
        pg.display.set_mode((WIDTH, HEIGHT), pg.RESIZABLE)
        self.canvas = pg.Surface((WIDTH, HEIGHT))
        text = Text()
        self.renderer, self.hud = Renderer(text, (WIDTH, HEIGHT)), Hud(text)
        self.asking = config.ask_consent
        self.done = False
        self.frame = 0
        self.over_for = 0.0
        if not self.asking:
            feed.start()

    def run(self) -> dict[str, Any]:
        stats = Stats()
        pacer = _Pacer(self.config.fps)
        last = time.perf_counter()
        try:
            while not self.done:
                start = time.perf_counter()
                dt = start - last if self.frame else 1 / self.config.fps
                last = start
                self._tick(dt)
                stats.work.add((time.perf_counter() - start) * 1000)
                stats.frame.add(dt * 1000)
                self.frame += 1
                if self.config.frames is not None and self.frame >= self.config.frames:
                    self.done = True
                pacer.wait()
        except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C or a signal: the run so far still counts
            stop.stats = stats.report(self)
            raise
        if self.config.screenshot is not None:
            try:
                self.config.screenshot.parent.mkdir(parents=True, exist_ok=True)
                pg.image.save(self.canvas, str(self.config.screenshot))
            except (pg.error, OSError) as exc:  # pygame's error for an unwritable path is not an OSError
                raise ConfigError(f"--screenshot {self.config.screenshot}: cannot write it ({exc}).") from exc
        return stats.report(self)

    def _tick(self, dt: float) -> None:
        for event in pg.event.get():
            self._handle(event)
        self.feed.check()
        world = self.world
        decision = self.mood.update(self.frame, dt, playing=not (world.paused or world.over))
        if not self.asking:
            world.react(intervene=decision.intervene, intensity=decision.intensity, away=decision.pause)
            self.mood.settle(self.frame)
            world.step(min(dt, _MAX_DT), autopilot(world) if self.config.bot else self._controls())
        if self.config.bot and world.over:
            self.over_for += dt
            if self.over_for > _BOT_RESTART_S:
                world.reset()
                self.over_for = 0.0
        self._draw()

    def _handle(self, event: pg.event.Event) -> None:
        if event.type == pg.QUIT:
            self.done = True
        if event.type != pg.KEYDOWN:
            return
        key, world = event.key, self.world
        if self.asking:
            if key in (pg.K_y, pg.K_RETURN, pg.K_n, pg.K_ESCAPE):
                self._answer(key in (pg.K_y, pg.K_RETURN))
        elif key == pg.K_h:
            self.hud.visible = not self.hud.visible
        elif key in (pg.K_p, pg.K_ESCAPE):
            world.toggle_pause()
        elif key == pg.K_q and (world.paused or world.over or world.away):
            self.done = True
        elif key in (pg.K_RETURN, pg.K_r) and world.over:
            world.reset()

    def _answer(self, accepted: bool) -> None:
        try:
            consent.save(accepted)
        except ConfigError as exc:  # the answer still holds for this game; only remembering it failed
            log.warning("%s This game goes on as you chose; you will be asked again next time.", exc)
        self.asking = False
        if accepted:
            self.feed.start()
        else:
            self.feed.decline()

    def _controls(self) -> Controls:
        keys = pg.key.get_pressed()
        dx = (keys[pg.K_RIGHT] or keys[pg.K_d]) - (keys[pg.K_LEFT] or keys[pg.K_a])
        dy = (keys[pg.K_DOWN] or keys[pg.K_s]) - (keys[pg.K_UP] or keys[pg.K_w])
        return Controls(dx=dx, dy=dy, fire=bool(keys[pg.K_SPACE]))

    def _draw(self) -> None:
        now = pg.time.get_ticks() / 1000
        if self.asking:
            self.renderer.notice(self.canvas, consent.TITLE, consent.notice())
        else:
            self.renderer.draw(self.canvas, self.world, now)
            view = MoodView(
                link=self._link(),
                camera=self._camera(),
                state=self.mood.state,
                state_age=self.mood.state_age,
                bars=self.mood.bars,
                note=self.feed.note,
            )
            self.hud.draw(self.canvas, self.world, view)
        self._present()

    def _link(self) -> str:
        if self.feed.kind == OFF:
            return "off"
        if not self.mood.online:
            return "off" if self.feed.finished else "offline"  # red only for a sensor that failed or vanished
        return "mock" if self.feed.kind == MOCK else "online"

    def _camera(self) -> str:
        if self.feed.camera_on:
            return "lost" if self.mood.camera == "lost" else "on"
        return "?" if self.feed.external and self.mood.online else "off"

    def _present(self) -> None:
        window = pg.display.get_surface()
        if window.get_size() == self.canvas.get_size():
            window.blit(self.canvas, (0, 0))
        else:  # letterbox: scale to fit, keep the aspect ratio
            (w, h), (cw, ch) = window.get_size(), self.canvas.get_size()
            scale = min(w / cw, h / ch)
            size = (round(cw * scale), round(ch * scale))
            window.fill((0, 0, 0))
            window.blit(pg.transform.smoothscale(self.canvas, size), ((w - size[0]) // 2, (h - size[1]) // 2))
        pg.display.flip()
