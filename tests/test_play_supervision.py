"""Process supervision of `moodloop play`, with a fake sensor child (no model, no camera).

The fake sensor records its pid and arguments, then crashes, runs, or ignores SIGTERM. Each
test runs `play` in a subprocess, as a user would, and checks that no child is left behind.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moodloop.games.feed import SENSOR, Child, Feed, FeedPlan, free_endpoint
from moodloop.games.play import NO_CAMERA_HINT, SENSOR_ERROR_HINT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see whether a process is gone")

FAKE_SENSOR = """\
import json, os, signal, sys, time
if os.environ["FAKE_MODE"] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.environ["FAKE_INFO"] + ".tmp", "w") as f:
    json.dump({"pid": os.getpid(), "argv": sys.argv[1:]}, f)
os.replace(os.environ["FAKE_INFO"] + ".tmp", os.environ["FAKE_INFO"])
if os.environ["FAKE_MODE"] == "crash":
    print("moodloop: error: Could not open camera 0.", file=sys.stderr)
    sys.exit(3)
while True:
    time.sleep(0.05)
"""

# `moodloop play` with the sensor module swapped for the fake one; Ctrl-C exits 130 as the CLI does.
DRIVER = """\
import argparse, sys
from moodloop.games import play
from moodloop.sensor import cli
cli.SENSOR_MODULE = "fake_sensor"
parser = argparse.ArgumentParser(prog="moodloop")
play.register(parser.add_subparsers())
args = parser.parse_args(["play", *sys.argv[1:]])
try:
    sys.exit(args.func(args))
except KeyboardInterrupt:
    sys.exit(130)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in "ZX"  # a zombie has exited; only its parent's bookkeeping remains


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Fake:
    """A fake sensor setup in a temporary folder."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        (tmp_path / "fake_sensor.py").write_text(FAKE_SENSOR)
        (tmp_path / "driver.py").write_text(DRIVER)
        (tmp_path / "clip.mp4").write_bytes(b"")  # play checks that a video exists; the fake never reads it
        self.tmp, self.info = tmp_path, tmp_path / "info.json"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
            "FAKE_MODE": mode,
            "FAKE_INFO": str(self.info),
            "MOODLOOP_CONFIG_DIR": str(tmp_path / "config"),
            "SDL_VIDEODRIVER": "dummy",
            "SDL_AUDIODRIVER": "dummy",
        }

    def play(self, *args: str, source: str = "clip.mp4") -> subprocess.Popen:
        argv = [sys.executable, str(self.tmp / "driver.py"), "--source", source, "--headless", *args]
        return subprocess.Popen(argv, env=self.env, cwd=self.tmp, stderr=subprocess.PIPE, text=True)

    @property
    def started(self) -> dict:
        wait_for(self.info.exists)
        return json.loads(self.info.read_text())


def test_sensor_gets_the_source_a_free_endpoint_headless_and_quiet(tmp_path):
    fake = Fake(tmp_path, "run")
    game = fake.play("--frames", "30")
    argv = fake.started["argv"]
    assert game.wait(60) == 0
    assert argv[:2] == ["--source", "clip.mp4"] and "--model" not in argv
    assert "--headless" in argv and "--quiet" in argv  # the game owns the window and the terminal
    assert argv[argv.index("--endpoint") + 1].startswith("tcp://127.0.0.1:")


HINTS = {"clip.mp4": SENSOR_ERROR_HINT, "0": NO_CAMERA_HINT}  # only a missing camera calls for --mock


@pytest.mark.parametrize("source", HINTS)
def test_sensor_crash_leaves_the_game_running_offline_with_the_hint_for_its_source(tmp_path, source):
    fake = Fake(tmp_path, "crash")
    stats = tmp_path / "s.json"
    game = fake.play("--frames", "90", "--stats", str(stats), "--accept-sensing", source=source)
    _, stderr = game.communicate(timeout=60)
    assert game.returncode == 0
    report = json.loads(stats.read_text())
    assert report["frames"] == 90 and "exit code 3" in report["feed_failure"]
    assert report["feed_failure"].endswith(HINTS[source])  # the note the game shows
    assert "Could not open camera" in stderr  # the sensor's own message, the one the hint points to
    assert [hint for hint in HINTS.values() if hint in stderr] == [HINTS[source]]


def test_game_exit_stops_the_sensor(tmp_path):
    fake = Fake(tmp_path, "run")
    game = fake.play("--frames", "60")
    pid = fake.started["pid"]
    assert game.wait(60) == 0
    assert not alive(pid)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_interrupting_play_stops_the_sensor_and_keeps_the_stats(tmp_path, sig, code):
    fake = Fake(tmp_path, "run")
    stats = tmp_path / "s.json"
    game = fake.play("--stats", str(stats))  # no --frames: plays until interrupted
    pid = fake.started["pid"]
    time.sleep(0.5)  # let the game loop run
    assert alive(pid) and game.poll() is None
    game.send_signal(sig)
    assert game.wait(30) == code
    assert not alive(pid)
    assert json.loads(stats.read_text())["frames"] > 0  # the run until the signal, written at exit


def test_killing_play_outright_still_stops_the_sensor(tmp_path):
    fake = Fake(tmp_path, "run")
    game = fake.play()
    pid = fake.started["pid"]
    assert alive(pid)
    game.kill()  # SIGKILL: play gets no chance to clean up; the kernel tells the child
    game.wait(30)
    try:
        wait_for(lambda: not alive(pid), timeout=10)
    finally:
        if alive(pid):  # do not leave the orphan running when the test fails
            os.kill(pid, signal.SIGKILL)


def test_a_child_that_ignores_sigterm_is_killed(tmp_path, monkeypatch):
    fake = Fake(tmp_path, "stubborn")
    for key in ("FAKE_MODE", "FAKE_INFO"):
        monkeypatch.setenv(key, fake.env[key])
    with Child([sys.executable, str(tmp_path / "fake_sensor.py")], grace_s=0.3) as child:
        pid = fake.started["pid"]  # its SIGTERM handler is in place
    assert child.returncode == -signal.SIGKILL
    assert not alive(pid)


@pytest.mark.parametrize("ending", ["os.kill(os.getpid(), signal.SIGKILL)", "sys.exit(128 + signal.SIGTERM)"],
                         ids=["killed", "stopped"])
def test_a_sensor_stopped_by_a_signal_is_reported_so_not_as_finished_or_failed(ending):
    code = f"import os, signal, sys; {ending}"  # the sensor exits 143 after a SIGTERM it handled
    plan = FeedPlan(kind=SENSOR, endpoint=free_endpoint(), argv=(sys.executable, "-c", code), hint=SENSOR_ERROR_HINT)
    with Feed(plan) as feed:
        feed.start()
        wait_for(lambda: feed.check() is not None)
    signum = signal.SIGKILL if "KILL" in ending else signal.SIGTERM
    assert feed.failure == f"The sensor was stopped from outside (signal {signum.value})."  # no hint: it had no say


def test_a_sensor_that_ran_its_video_to_the_end_is_no_failure(caplog):
    plan = FeedPlan(kind=SENSOR, endpoint=free_endpoint(), argv=(sys.executable, "-c", "pass"),
                    hint=SENSOR_ERROR_HINT)  # a child that exits 0, as the sensor does at the end of a video
    with caplog.at_level(logging.INFO), Feed(plan) as feed:
        feed.start()
        wait_for(lambda: feed.stopped or feed.check() is not None)
    assert feed.failure is None and feed.finished and not feed.camera_on
    assert "finished" in caplog.text and "WARNING" not in caplog.text
    camera = FeedPlan(kind=SENSOR, endpoint=free_endpoint(), argv=(sys.executable, "-c", "pass"), camera=True,
                      hint=NO_CAMERA_HINT)  # a camera never ends by itself: someone stopped it
    with Feed(camera) as feed:
        feed.start()
        wait_for(lambda: feed.stopped or feed.check() is not None)
    assert feed.failure == f"The sensor stopped (exit code 0). {NO_CAMERA_HINT}"
