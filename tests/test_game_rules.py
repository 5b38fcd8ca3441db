"""Star Drift's rules as plain unit tests: no pygame, no clock, no sockets."""

import pytest

from moodloop.games.bot import autopilot
from moodloop.games.rules import CURVE, PACE, WAVE, Controls, Rock, Shot, Tuning, World

DT = 1 / 60


def run(world: World, seconds: float, controls: Controls = Controls()) -> None:
    for _ in range(round(seconds / DT)):
        world.step(DT, controls)


def rock_at(world: World, x: float, y: float, r: float = 20) -> Rock:
    rock = Rock(x, y, r, 0.0, 0.0, CURVE, 1)
    world.rocks.append(rock)
    return rock


def test_difficulty_curve_rises_with_time_and_boredom():
    world = World(seed=1)
    start = world.pace()
    world.elapsed = 60
    later = world.pace()
    assert later.speed > start.speed and later.interval < start.interval
    world.elapsed = 10_000
    assert world.pace().speed == world.tuning.max_speed
    assert world.pace().interval == world.tuning.min_interval
    world.boost = 1.0
    assert world.pace().speed == pytest.approx(world.tuning.max_speed * (1 + world.tuning.boost_speed))


def test_curve_spawns_one_rock_per_interval_and_no_boredom_rocks_when_engaged():
    world = World(seed=1, tuning=Tuning(speed_gain=0, interval_halflife=1e9))
    run(world, 10 * world.tuning.base_interval + DT)
    assert world.tally.obstacles_total == 10
    assert world.tally.obstacles_boredom == 0


def test_boredom_pace_ramps_in_and_adds_rocks():
    world = World(seed=1)
    world.react(intervene=False, intensity=1.0, away=False)
    run(world, 1.0)
    assert world.boost == pytest.approx(world.tuning.boost_rate)  # eased in, not a jump
    run(world, 5.0)
    assert world.boost == 1.0
    assert any(rock.cause == PACE for rock in world.rocks)
    assert world.tally.obstacles_boredom > 0
    world.react(intervene=False, intensity=0.0, away=False)
    run(world, 1.0)
    assert 0 < world.boost < 1  # and eased out


def test_wave_is_announced_then_spawns_with_a_gap():
    world = World(seed=3)
    world.react(intervene=True, intensity=0.0, away=False)
    announced = world.wave
    world.react(intervene=True, intensity=0.0, away=False)  # one wave at a time
    assert world.wave is announced and world.tally.waves == 0  # counted once its first rock comes
    t = world.tuning
    lanes = set(world.wave.lanes)
    free = sorted(set(range(t.lanes)) - lanes)
    assert len(free) == t.wave_gap and free[-1] - free[0] == t.wave_gap - 1
    run(world, t.wave_warning_s - 0.1)
    assert not [r for r in world.rocks if r.cause == WAVE]  # nothing arrives during the warning
    run(world, 0.1 + t.wave_spacing_s * len(lanes))
    wave = [r for r in world.rocks if r.cause == WAVE]
    assert {round(r.y) for r in wave} == {round(t.lane_y(lane)) for lane in lanes}
    assert world.wave is None and world.tally.waves == 1
    assert world.tally.obstacles_boredom >= len(lanes)


def test_absent_pauses_and_return_resumes_after_a_countdown():
    world = World(seed=1)
    run(world, 1.0)
    world.react(intervene=False, intensity=0.0, away=True)
    world.react(intervene=False, intensity=0.0, away=True)
    assert world.tally.pauses == 1
    frozen = (world.elapsed, world.score, world.x)
    run(world, 2.0, Controls(dx=1))
    assert (world.elapsed, world.score, world.x) == frozen
    world.react(intervene=False, intensity=0.0, away=False)
    run(world, world.tuning.resume_s - 0.1)
    assert world.elapsed == frozen[0]
    run(world, 0.5)
    assert world.elapsed > frozen[0]


def test_manual_pause_toggles_but_not_after_game_over():
    world = World(seed=1)
    world.toggle_pause()
    run(world, 1.0)
    assert world.elapsed == 0
    world.toggle_pause()
    run(world, 1.0)
    assert world.elapsed > 0
    world.over = True
    world.toggle_pause()
    assert not world.paused


def test_score_grows_with_time_faster_when_bored_and_with_shots():
    world = World(seed=1)
    run(world, 1.0)
    assert world.score == pytest.approx(world.tuning.points_per_s, rel=0.02)
    bored = World(seed=1)
    bored.boost = bored.target = 1.0
    run(bored, 1.0)
    assert bored.score == pytest.approx(2 * world.score, rel=0.02)
    shooter = World(seed=1)
    rock = rock_at(shooter, shooter.x + 100, shooter.y)
    run(shooter, 0.3, Controls(fire=True))
    assert rock not in shooter.rocks
    assert shooter.tally.destroyed == 1
    assert shooter.score > shooter.tuning.points_per_hp


def test_big_rocks_take_two_hits():
    assert Rock(0, 0, 40, 0, 0, CURVE, 1).hp == 2
    assert Rock(0, 0, 20, 0, 0, CURVE, 1).hp == 1


def test_collision_costs_a_life_then_grants_invulnerability():
    world = World(seed=1)
    rock_at(world, world.x, world.y)
    world.step(DT)
    assert world.lives == world.tuning.lives - 1 and world.invulnerable > 0
    rock_at(world, world.x, world.y)
    world.step(DT)
    assert world.lives == world.tuning.lives - 1  # no second hit while blinking


def test_graze_outside_the_forgiving_hitbox_is_a_miss():
    world = World(seed=1)
    rock_at(world, world.x, world.y + 20 + world.tuning.player_radius * 0.9)
    world.step(DT)
    assert world.lives == world.tuning.lives


def test_losing_the_last_life_ends_the_game_and_reset_keeps_best_and_tally():
    world = World(seed=1)
    world.lives, world.score = 1, 123.4
    rock_at(world, world.x, world.y)
    world.step(DT)
    assert world.over and world.best == 123 and world.tally.games_over == 1
    world.react(intervene=True, intensity=1.0, away=False)
    assert world.wave is None  # no waves on a game-over screen
    world.reset()
    assert not world.over and world.lives == world.tuning.lives and world.score == 0
    assert world.best == 123 and world.tally.hits == 1


def test_player_stays_in_bounds_and_diagonals_are_not_faster():
    world = World(seed=1)
    x, y = world.x, world.y
    world.step(0.1, Controls(dx=1, dy=1))
    moved = ((world.x - x) ** 2 + (world.y - y) ** 2) ** 0.5
    assert moved == pytest.approx(world.tuning.player_speed * 0.1)
    run(world, 5.0, Controls(dx=1, dy=1))
    t = world.tuning
    assert world.x == t.player_x_max and world.y == t.height - t.player_radius
    run(world, 5.0, Controls(dx=-1, dy=-1))
    assert world.x == t.player_radius and world.y == t.top + t.player_radius


def test_autopilot_survives_a_bored_minute():
    world = World(seed=5)
    for i in range(60 * 60):
        world.react(intervene=i % 600 == 0, intensity=1.0, away=False)
        world.step(DT, autopilot(world))
    assert not world.over
    assert world.tally.destroyed > 0


@pytest.mark.parametrize("fps", [60, 30, 20])
def test_a_fast_rock_and_a_shot_cannot_pass_through_each_other_between_frames(fps):
    world = World(seed=0)
    world.rocks = [Rock(600, 300, 16, -1046, 0, CURVE, 1)]  # late-game pace at full boredom
    world.shots = [Shot(560, 300)]  # 40 px apart, closing at about 2,000 px/s
    world.step(1 / fps)
    assert world.tally.destroyed == 1 and not world.shots


def test_destroyed_rocks_score_with_the_boredom_multiplier_too():
    scores = []
    for boost in (0.0, 1.0):
        world = World(seed=0)
        world.boost = world.target = boost
        world.rocks, world.shots = [Rock(600, 300, 16, 0, 0, CURVE, 1)], [Shot(596, 300)]
        before = world.score
        world._collide()
        scores.append(world.score - before)
    assert scores[1] == pytest.approx(scores[0] * (1 + world.tuning.boost_points))


def test_a_wave_still_announced_at_game_over_never_comes_nor_counts():
    world = World(seed=0)
    world.react(intervene=True, intensity=0.0, away=False)
    world.lives = 1
    world.rocks = [Rock(world.x, world.y, 20, 0, 0, CURVE, 1)]  # on the ship: the last life goes
    world.step(0.01)
    assert world.over and world.wave is None and world.tally.waves == 0
    world.react(intervene=False, intensity=0.0, away=True)  # an absence on the game-over screen
    assert world.tally.pauses == 0  # is no pause: nothing is running
