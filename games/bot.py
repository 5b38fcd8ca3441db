"""A simple autopilot for headless runs: it steers to the safest row ahead and fires at rocks.

It plays well enough to keep a run going for benchmarks and screenshots, not to win.
"""

from __future__ import annotations

from moodloop.games.rules import Controls, World

__all__ = ["autopilot"]

_HOME_X = 260.0  # where the bot likes to sit: room to see what comes
_LOOKAHEAD_S = 1.6  # rocks further away than this in time are ignored
_ROW_STEP = 12.0


def autopilot(world: World) -> Controls:
    """Return this frame's controls for `world`: dodge the nearest danger, shoot what is in line."""
    t = world.tuning
    reach = t.player_radius + 14  # a margin on top of the hitbox
    threats = []
    for rock in world.rocks:
        if rock.x + rock.r < world.x - reach or rock.vx >= 0:
            continue
        eta = max(0.0, (rock.x - world.x) / -rock.vx)
        if eta < _LOOKAHEAD_S:
            threats.append((rock, eta))

    def danger(y: float) -> float:
        # Near rocks weigh most; moving far costs a little, so the bot does not dither.
        risk = sum(1.0 / (eta + 0.15) for rock, eta in threats if abs(rock.y + rock.vy * eta - y) < rock.r + reach)
        return risk + abs(y - world.y) / 2000

    rows = int((t.height - t.top - 2 * t.player_radius) / _ROW_STEP) + 1
    target = min((t.top + t.player_radius + i * _ROW_STEP for i in range(rows)), key=danger)
    dy = max(-1.0, min(1.0, (target - world.y) / 20))
    dx = max(-1.0, min(1.0, (_HOME_X - world.x) / 40))
    fire = any(rock.x > world.x and abs(rock.y - world.y) < rock.r + 6 for rock in world.rocks)
    return Controls(dx=dx, dy=dy, fire=fire)
