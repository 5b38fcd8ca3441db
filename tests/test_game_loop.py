"""The game loop, headless, against the engine's mock publisher; plus the mood feed and drawing."""

import os
import sys
import time
from dataclasses import replace

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame
import pytest

from moodloop.engine.director import Director
from moodloop.engine.errors import ConfigError
from moodloop.engine.mock import Scenario, Segment
from moodloop.engine.protocol import State, Status
from moodloop.engine.publisher import Publisher
from moodloop.games import consent
from moodloop.games.app import Durations, GameConfig, Stats, _Game, play
from moodloop.games.feed import MOCK, OFF, SENSOR, Feed, FeedPlan, free_endpoint
from moodloop.games.hud import Hud, MoodView
from moodloop.games.mood import Mood
from moodloop.games.render import Renderer, Text
from moodloop.games.rules import HEIGHT, WIDTH, World


def bored() -> State:
    now = time.time()
    return State(t=now, state="bored", previous="engaged", since=now, confidence=0.9)


def test_a_state_change_reaches_gameplay_in_the_frame_it_arrives():
    endpoint = free_endpoint()
    with Publisher(endpoint) as pub, Mood(endpoint) as mood:
        deadline = time.monotonic() + 5
        frame = 0
        while not mood.changes and time.monotonic() < deadline:  # resend until the subscriber has joined
            pub.publish(bored())
            time.sleep(0.02)
            mood.update(frame, 1 / 60)
            mood.settle(frame)
            frame += 1
        assert mood.state == "bored" and mood.online
        change = mood.changes[0]
        assert (change.state, change.previous, change.lag_frames) == ("bored", "engaged", 0)
        assert 0 <= change.latency_ms < 1000


def test_a_change_whose_state_message_was_lost_is_recorded_from_the_heartbeat():
    endpoint = free_endpoint()
    heartbeat = Status(t=time.time(), state="bored", fps=30.0, camera="ok", model="m", uptime_s=5.0)
    with Publisher(endpoint) as pub, Mood(endpoint) as mood:  # the sensor said "bored" before we joined
        deadline, frame = time.monotonic() + 5, 0
        while mood.state != "bored" and time.monotonic() < deadline:
            pub.publish(heartbeat)
            time.sleep(0.02)
            mood.update(frame, 1 / 60)
            mood.settle(frame)
            frame += 1
        for later in range(frame, frame + 3):  # the same news again is no change
            pub.publish(heartbeat)
            time.sleep(0.02)
            mood.update(later, 1 / 60)
            mood.settle(later)
    assert [(c.state, c.previous) for c in mood.changes] == [("bored", "unknown")]


def test_a_sensor_that_comes_back_has_its_state_recorded_again():
    endpoint = free_endpoint()
    beat = Status(t=time.time(), state="bored", fps=30.0, camera="ok", model="m", uptime_s=5.0)
    with Publisher(endpoint) as pub, Mood(endpoint) as mood:
        frame, deadline = 0, time.monotonic() + 5
        for want_online, msg in ((True, beat), (False, replace(beat, camera="none")), (True, replace(beat, uptime_s=0.1))):
            while mood.online != want_online:  # the sensor, its final word, a new sensor in the same state
                assert time.monotonic() < deadline, "the mood never heard the publisher"
                pub.publish(msg)
                time.sleep(0.02)
                mood.update(frame, 1 / 60)
                mood.settle(frame)
                frame += 1
    assert [(c.state, c.previous) for c in mood.changes] == [("bored", "unknown")] * 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SDL's off-screen fallback is how Linux lacks a display")
def test_a_windowed_game_without_a_display_says_so_instead_of_running_unseen(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    with Feed(FeedPlan(kind=OFF)) as feed, pytest.raises(ConfigError, match="No display .* add --headless"):
        play(GameConfig(frames=1), feed)


def test_without_a_sensor_the_mood_is_unknown_and_the_bars_empty():
    with Mood(None) as mood:
        decision = mood.update(0, 1 / 60)
        assert (mood.state, mood.online, mood.state_age, mood.camera) == ("unknown", False, None, None)
        assert not decision.intervene and not decision.pause and decision.intensity == 0
        assert set(mood.bars.values()) == {0.0}


def test_frame_durations_summarise_like_the_full_list():
    samples = [16.7] * 9890 + [33.3] * 99 + [16.8, 250.0] * 5 + [0.1]
    durations = Durations()
    for ms in samples:
        durations.add(ms)
    ordered = sorted(samples)
    for q in (0.0, 0.5, 0.99, 0.999, 1.0):
        assert durations.percentile_ms(q) == pytest.approx(ordered[int(q * (len(samples) - 1))])
    assert (durations.count, durations.max_ms) == (len(samples), 250.0)
    assert durations.mean_ms == pytest.approx(sum(samples) / len(samples))
    assert Durations().percentile_ms(0.99) == Durations().mean_ms == 0.0


def test_headless_game_reacts_to_boredom_and_absence_from_the_mock():
    segments = (Segment("engaged", 0.5), Segment("bored", 2.5), Segment("absent", 1.0), Segment("engaged", 1.0))
    script = Scenario(segments, loop=False)
    plan = FeedPlan(kind=MOCK, endpoint=free_endpoint(), scenario=script)
    config = GameConfig(headless=True, frames=330, bot=True, seed=1, bored_after=0.3, cooldown=1.0, ramp_time=1.0)
    with Feed(plan) as feed:
        stats = play(config, feed)
    assert stats["frames"] == 330 and stats["feed"] == MOCK
    assert stats["waves"] >= 1 and stats["obstacles_boredom"] > 0
    assert stats["pauses"] >= 1
    assert {"bored", "absent"} <= {change["state"] for change in stats["states"]}
    assert stats["state_apply_lag_frames"] == 0
    assert stats["fps_mean"] > 30 and stats["frame_ms_max"] > 0


def test_a_video_driver_this_machine_lacks_is_a_config_error(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "no-such-driver")
    with Feed(FeedPlan(kind=OFF)) as feed, pytest.raises(ConfigError, match="SDL_VIDEODRIVER=no-such-driver"):
        play(GameConfig(frames=1), feed)


def test_headless_game_without_a_sensor_plays_and_saves_a_screenshot(tmp_path):
    shot = tmp_path / "shots" / "last.png"  # its folder is made
    with Feed(FeedPlan(kind=OFF)) as feed:
        stats = play(GameConfig(headless=True, frames=30, bot=True, screenshot=shot), feed)
    assert stats["feed"] == OFF and stats["states"] == [] and stats["obstacles_boredom"] == 0
    assert pygame.image.load(str(shot)).get_size() == (WIDTH, HEIGHT)


def test_a_screenshot_that_cannot_be_written_is_a_config_error(tmp_path):
    with Feed(FeedPlan(kind=OFF)) as feed, pytest.raises(ConfigError, match=f"--screenshot {tmp_path}: cannot write"):
        play(GameConfig(headless=True, frames=1, screenshot=tmp_path), feed)  # a folder: pygame cannot open it


@pytest.fixture
def canvas():
    pygame.display.init()
    pygame.font.init()
    yield pygame.Surface((WIDTH, HEIGHT))
    pygame.quit()


@pytest.mark.parametrize("scene", ["wave", "boost", "paused", "away", "countdown", "over"])
def test_every_scene_draws_its_own_frame(canvas, scene):
    text = Text()
    renderer, hud = Renderer(text, (WIDTH, HEIGHT)), Hud(text)
    bars = {"happy": 0.7, "sad": 0.3}
    view = MoodView(link="offline", camera="on", state="bored", state_age=4.2, bars=bars, note="The sensor stopped")
    world = World(seed=1)
    for _ in range(200):
        world.step(1 / 60)

    def frame() -> bytes:
        renderer.draw(canvas, world, now=1.0)
        hud.draw(canvas, world, view)
        return pygame.image.tobytes(canvas, "RGB")

    playing = frame()
    if scene == "wave":
        world.react(intervene=True, intensity=1.0, away=False)  # the pace eases in only as the game steps
    world.boost = 0.5 if scene == "boost" else 0.0
    world.paused = scene == "paused"
    world.away = scene == "away"
    world.resume_in = 1.0 if scene == "countdown" else 0.0
    world.over = scene == "over"
    assert frame() != playing


def test_the_away_screen_tells_the_way_out_and_q_quits_it(canvas):
    with Feed(FeedPlan(kind=OFF)) as feed, Mood(None) as mood:
        game = _Game(GameConfig(), feed, mood)
        game.world.away = True
        shots = []
        for paused in (False, True):  # "PAUSED" shows over the away screen
            game.world.paused = paused
            game.renderer.draw(canvas, game.world, now=1.0)
            shots.append(pygame.image.tobytes(canvas, "RGB"))
        assert shots[0] != shots[1]
        game.world.paused = False
        game._handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q))
        assert game.done


def test_notice_draws(canvas):
    Renderer(Text(), (WIDTH, HEIGHT)).notice(canvas, "Title", ("line one", "", "line two"))
    assert canvas.get_at((WIDTH // 2, 5)) != canvas.get_at((WIDTH // 2, 130))


@pytest.mark.parametrize(("key", "accepted"), [(pygame.K_y, True), (pygame.K_n, False)])
def test_the_notice_comes_before_the_camera_and_the_answer_is_kept(canvas, monkeypatch, tmp_path, key, accepted):
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path))
    camera = (sys.executable, "-c", "import time; time.sleep(30)")  # stands in for the sensor
    plan = FeedPlan(kind=SENSOR, endpoint=free_endpoint(), argv=camera, camera=True)
    with Feed(plan) as feed, Mood(plan.endpoint) as mood:
        game = _Game(GameConfig(ask_consent=True), feed, mood)
        for _ in range(5):
            game._tick(1 / 60)
        assert not feed.camera_on and game.world.elapsed == 0 and consent.load() is None
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))
        game._tick(1 / 60)
        assert feed.camera_on is accepted and consent.load() is accepted
        assert feed.kind == (SENSOR if accepted else OFF)


def test_a_notice_never_answered_reports_no_sensor(canvas, monkeypatch, tmp_path):
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(tmp_path))
    plan = FeedPlan(kind=SENSOR, endpoint=free_endpoint(), argv=(sys.executable, "-c", "pass"), camera=True)
    with Feed(plan) as feed, Mood(plan.endpoint) as mood:
        game = _Game(GameConfig(ask_consent=True), feed, mood)
        game._tick(1 / 60)
        assert Stats().report(game)["feed"] == OFF and not feed.started


def test_a_feed_that_ran_to_its_end_is_off_and_says_so_not_red(canvas):
    plan = FeedPlan(kind=SENSOR, endpoint=free_endpoint(), argv=(sys.executable, "-c", "pass"))  # a video's end
    with Feed(plan) as feed, Mood(plan.endpoint) as mood:
        game = _Game(GameConfig(), feed, mood)
        deadline = time.monotonic() + 10
        while not feed.stopped:
            assert time.monotonic() < deadline, "the child never ended"
            game._tick(1 / 60)
        assert game._link() == "off" and feed.failure is None
        assert feed.note == "The sensor finished: its video or images ran to the end."


def test_a_sensor_the_game_did_not_start_has_a_camera_it_cannot_know(canvas):
    endpoint = free_endpoint()
    feed = Feed(FeedPlan(kind=SENSOR, endpoint=endpoint))  # --endpoint: subscribes only
    with Publisher(endpoint) as pub, feed, Mood(endpoint) as mood:
        game = _Game(GameConfig(), feed, mood)
        assert game._camera() == "off"  # nothing heard yet
        deadline = time.monotonic() + 5
        while not mood.online:
            assert time.monotonic() < deadline, "the game never heard the publisher"
            pub.publish(bored())
            time.sleep(0.02)
            game._tick(1 / 60)
        assert game._camera() == "?" and game._link() == "online"


def test_an_answer_that_cannot_be_saved_still_holds_for_this_game(canvas, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MOODLOOP_CONFIG_DIR", str(blocker / "moodloop"))  # cannot be made
    plan = FeedPlan(kind=SENSOR, endpoint=free_endpoint(), argv=(sys.executable, "-c", "import time; time.sleep(30)"),
                    camera=True)
    with Feed(plan) as feed, Mood(plan.endpoint) as mood:
        game = _Game(GameConfig(ask_consent=True), feed, mood)
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_y))
        game._tick(1 / 60)
        assert feed.camera_on and not game.asking and not game.done
    assert "Cannot save your answer" in caplog.text and "asked again next time" in caplog.text


@pytest.mark.parametrize(("hold", "resume"), [("paused", pygame.K_p), ("over", pygame.K_r)], ids=["paused", "over"])
def test_the_director_waits_while_the_game_is_paused_or_over(canvas, hold, resume):
    endpoint = free_endpoint()
    director = Director(bored_after=0.0, cooldown=60.0)  # a wave on the first bored frame, then none for a minute
    feed = Feed(FeedPlan(kind=SENSOR, endpoint=endpoint))  # subscribes only: the test publishes
    with Publisher(endpoint) as pub, feed, Mood(endpoint, director=director) as mood:
        game = _Game(GameConfig(), feed, mood)
        setattr(game.world, hold, True)
        deadline = time.monotonic() + 5
        while mood.state != "bored":  # resend until the subscriber has joined
            assert time.monotonic() < deadline, "the game never heard the publisher"
            pub.publish(bored())
            time.sleep(0.02)
            game._tick(1 / 60)
        for _ in range(5):  # bored on every frame, and still held
            game._tick(1 / 60)
        assert game.world.wave is None
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=resume))
        game._tick(1 / 60)
        assert game.world.wave is not None  # announced on the first frame back in play


def test_the_cooldown_counts_play_time_and_a_paused_absent_player_stays_away():
    endpoint = free_endpoint()
    with Publisher(endpoint) as pub, Mood(endpoint, director=Director(bored_after=0.0, cooldown=10.0)) as mood:
        deadline = time.monotonic() + 5
        while mood.state != "bored":  # resend until the subscriber has joined; out of play meanwhile
            assert time.monotonic() < deadline, "the mood never heard the publisher"
            pub.publish(bored())
            time.sleep(0.02)
            mood.update(0, 1 / 60, playing=False)
        assert mood.update(0, 0.5, playing=True).intervene  # the first wave
        for _ in range(40):  # 20 s paused: the cooldown must not run out meanwhile
            assert not mood.update(0, 0.5, playing=False).intervene
        assert not any(mood.update(0, 0.5, playing=True).intervene for _ in range(19))  # 9.5 s of play
        assert mood.update(0, 0.5, playing=True).intervene  # 10 s of play since the first
        now = time.time()
        while mood.state != "absent":
            assert time.monotonic() < deadline + 5, "the absence never arrived"
            pub.publish(State(t=now, state="absent", previous="bored", since=now, confidence=1.0))
            time.sleep(0.02)
            mood.update(0, 1 / 60, playing=False)
        assert mood.update(0, 1 / 60, playing=False).pause  # paused by hand too: still one absence


def test_an_unknown_mock_scenario_leaves_its_port_free():
    endpoint = free_endpoint()
    with pytest.raises(ConfigError, match="Unknown scenario 'sleepy'") as caught:
        Feed(FeedPlan(kind=MOCK, endpoint=endpoint, scenario="sleepy")).start()
    with Publisher(endpoint):  # the failed mock released it, though its traceback is still alive
        assert caught.traceback
