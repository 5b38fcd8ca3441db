"""MockSensor scenarios, scripts, recording and replay, and the engine's commands."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from itertools import islice

import pytest
from engine_support import ANY_PORT, FakeClock, status, until_flowing

from moodloop.engine import (
    ConfigError,
    DataError,
    Emotion,
    MockSensor,
    Publisher,
    Recorder,
    Scenario,
    Segment,
    State,
    Status,
    Subscriber,
    read_recording,
    replay,
    valence_arousal,
)
from moodloop.engine import commands


def play(sensor: MockSensor, clock: FakeClock, seconds: float, step: float = 0.01) -> list:
    sent = []
    for _ in range(round(seconds / step)):
        sent += sensor.step()
        clock.advance(step)
    return sent


def test_bored_scenario_publishes_all_topics_at_their_rates():
    clock = FakeClock(now=1_700_000_000.0)
    with Publisher(ANY_PORT) as pub:
        sent = play(MockSensor("bored", pub, rate=15, clock=clock, seed=1), clock, 12.0)
    changes = [(m.previous, m.state, round(m.t - 1_700_000_000.0, 1)) for m in sent if isinstance(m, State)]
    assert changes == [("unknown", "engaged", 0.0), ("engaged", "bored", 4.0)]
    emotions = [m for m in sent if isinstance(m, Emotion)]
    assert len(emotions) == pytest.approx(15 * 12, abs=3)
    statuses = [m for m in sent if isinstance(m, Status)]
    assert len(statuses) == pytest.approx(12 + 1, abs=1)  # every second, plus one on the change
    last_change = [m for m in sent if isinstance(m, State)][-1]
    assert (statuses[-1].since, statuses[-1].confidence) == (last_change.since, last_change.confidence)
    engaged = [m for m in emotions if m.t < 1_700_000_004.0]
    bored = [m for m in emotions if m.t > 1_700_000_006.0]
    assert sum(m.label == "happy" for m in engaged) > 0.8 * len(engaged)
    assert sum(m.label == "neutral" for m in bored) > 0.8 * len(bored)
    assert sum(m.valence for m in bored) / len(bored) < sum(m.valence for m in engaged) / len(engaged)
    assert all((m.valence, m.arousal) == pytest.approx(valence_arousal(m.probs)) for m in emotions)
    assert [m.seq for m in sent] == list(range(len(sent)))


def test_absent_sends_no_emotion_but_keeps_the_heartbeat():
    clock = FakeClock()
    script = Scenario((Segment("absent", 5.0),))
    with Publisher(ANY_PORT) as pub:
        sent = play(MockSensor(script, pub, clock=clock), clock, 3.0)
    assert not any(isinstance(m, Emotion) for m in sent)
    assert [m.state for m in sent if isinstance(m, Status)] == ["absent"] * 3


def test_the_mock_is_never_sure_of_unknown():
    clock = FakeClock()
    start = clock.now
    with Publisher(ANY_PORT) as pub:
        sensor = MockSensor(Scenario((Segment("unknown", 5.0),)), pub, clock=clock)
        heartbeats = [m for m in play(sensor, clock, 2.0) if isinstance(m, Status)]
        assert [(m.state, m.since, m.confidence) for m in heartbeats] == [("unknown", start, 0.0)] * 2
        sensor.force("bored")
        assert [m.confidence > 0.7 for m in play(sensor, clock, 0.1) if isinstance(m, State)] == [True]
        sensor.force("unknown")
        assert [m.confidence for m in play(sensor, clock, 0.1) if isinstance(m, State)] == [0.0]


def test_forced_state_and_finite_script(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"loop": False, "segments": [{"state": "engaged", "seconds": 1, "label": "surprise"}]}))
    clock = FakeClock()
    start = clock.now
    with Publisher(ANY_PORT) as pub:
        sensor = MockSensor(Scenario.from_file(path), pub, clock=clock)
        play(sensor, clock, 0.5)
        sensor.force("bored")
        play(sensor, clock, 0.2)
        assert sensor.state == "bored"
        sensor.force(None)
        play(sensor, clock, 0.2)
        assert sensor.state == "engaged" and not sensor.finished
        last = play(sensor, clock, 0.5)  # the 1 s script ends 0.1 s into these
        assert sensor.finished and last and max(m.t for m in last) <= start + 1.0


@pytest.mark.parametrize(
    "script",
    ['{"segments": []}', '{"segments": [{"state": "sleepy", "seconds": 1}]}',
     '{"segments": [{"state": "bored"}]}', "not json", '{"segments": [{"state": "bored", "seconds": 0}]}',
     '{"loop": "false", "segments": [{"state": "bored", "seconds": 1}]}'],
)  # fmt: skip
def test_bad_scripts_say_what_is_wrong(tmp_path, script):
    path = tmp_path / "bad.json"
    path.write_text(script)
    with pytest.raises(ConfigError, match="(?i)mock"):
        Scenario.from_file(path)


def test_record_then_replay_keeps_the_timing(tmp_path):
    path = tmp_path / "session.jsonl"
    clock = FakeClock()
    with Publisher(ANY_PORT, record=path) as pub:
        recorded = play(MockSensor("bored", pub, rate=10, clock=clock, seed=2), clock, 0.6)
    assert list(read_recording(path)) == recorded
    with path.open("a") as file:
        file.write('{"topic": "moodloop.state", "v": 1, "t": 1\n')  # a line cut short by a kill
    with path.open("ab") as file:
        file.write(b"\xff\xfe\n")  # and one that is not even text
    with Publisher(ANY_PORT, source="replay") as pub, Subscriber(pub.endpoint) as sub:
        until_flowing(pub, sub, status())
        player = threading.Thread(target=replay, args=(path, pub))
        start, now = time.monotonic(), time.time()
        player.start()
        arrivals = [(time.monotonic() - start, m) for m in islice(sub.messages(timeout=1.0), len(recorded))]
        player.join()
    assert [m.seq for _, m in arrivals] == sorted(m.seq for _, m in arrivals)
    assert [m.TOPIC for _, m in arrivals] == [m.TOPIC for m in recorded]
    moved = arrivals[0][1].t - recorded[0].t  # to the replay's time, so a game does not see stale messages
    assert arrivals[0][1].t == pytest.approx(now, abs=0.1)
    for (arrived, msg), original in zip(arrivals, recorded):
        assert msg.t - original.t == pytest.approx(moved) and arrived == pytest.approx(original.t - recorded[0].t, abs=0.1)
        if isinstance(msg, (State, Status)):  # and a heartbeat's since
            assert msg.since - msg.t == pytest.approx(original.since - original.t)


def test_a_recording_never_overwrites_a_file(tmp_path):
    video = tmp_path / "c.avi"
    video.write_bytes(b"the input video")
    with pytest.raises(ConfigError, match="c.avi already exists; nothing was overwritten"):
        Recorder(video)
    with pytest.raises(ConfigError, match="already exists"):
        Publisher(ANY_PORT, record=video)
    assert video.read_bytes() == b"the input video"



def test_a_recording_can_go_to_a_pipe(tmp_path):
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    received: list[Status] = []
    reader = threading.Thread(target=lambda: received.extend(read_recording(fifo)), daemon=True)
    reader.start()
    msg = Status(t=1.0, state="bored", fps=15.0, camera="ok", model="m", uptime_s=1.0)
    with Recorder(fifo) as recorder:  # a pipe exists already, yet holds nothing to overwrite
        recorder.write(msg)
    reader.join(timeout=5)
    assert received == [msg]


def test_a_piped_recording_whose_reader_stopped_is_no_disk_error(tmp_path):
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)

    def read_one_line() -> None:  # as `| head -1` does
        with fifo.open() as stream:
            stream.readline()

    threading.Thread(target=read_one_line, daemon=True).start()
    msg = Status(t=1.0, state="bored", fps=15.0, camera="ok", model="m", uptime_s=1.0)
    with Recorder(fifo) as recorder, pytest.raises(BrokenPipeError):  # the CLI exits 0 on it
        for _ in range(100_000):
            recorder.write(msg)


RECORD_UNTIL_FULL = """
import resource, signal, sys
from moodloop.engine import ConfigError, Recorder, Status

# Writes past 1000 bytes fail with EFBIG, as on a full disk (rather than kill the process).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
recorder = Recorder(sys.argv[1])
try:
    for _ in range(100):
        recorder.write(Status(t=1.0, state="bored", fps=15.0, camera="ok", model="m", uptime_s=1.0))
except ConfigError as exc:
    print(exc)
recorder.close()  # must not fail a second time
"""


def test_a_full_disk_while_recording_is_a_config_error(tmp_path):
    path = tmp_path / "session.jsonl"
    argv = [sys.executable, "-c", RECORD_UNTIL_FULL, str(path)]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert child.returncode == 0, child.stderr
    assert re.match(r"Could not write to the recording .*: File too large\. The lines before", child.stdout)
    assert len(list(read_recording(path))) > 1  # the lines before the failure are kept


def command(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="moodloop")
    commands.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_mock_and_listen_commands_talk(tmp_path, capsys):
    with Publisher(ANY_PORT) as probe:  # borrow a free port
        endpoint = probe.endpoint
    mock = command(["mock", "engaged", "--endpoint", endpoint, "--duration", "1.5", "--rate", "30"])
    publisher = threading.Thread(target=mock.func, args=(mock,))
    publisher.start()
    record = tmp_path / "listen.jsonl"
    listen = command(["listen", "--endpoint", endpoint, "--count", "5", "--topic", "emotion", "--record", str(record)])
    exits: list[int] = []
    # listen waits for its count; a watchdog turns "the mock never published" into a failure, not a hang.
    listener = threading.Thread(target=lambda: exits.append(listen.func(listen)), daemon=True)
    listener.start()
    listener.join(10)
    assert exits == [0], "listen heard nothing within 10 s: did the mock fail to bind?"
    publisher.join()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["topic"] for line in lines] == ["moodloop.emotion"] * 5
    assert [m.TOPIC for m in read_recording(record)] == ["moodloop.emotion"] * 5


def test_listen_bind_prints_the_port_it_bound(capsys):
    listen = command(["listen", "--bind", "--endpoint", ANY_PORT, "--count", "1"])
    exits: list[int] = []
    listener = threading.Thread(target=lambda: exits.append(listen.func(listen)), daemon=True)
    listener.start()
    deadline = time.monotonic() + 10
    err = ""
    while not (bound := re.search(r"listening on (tcp://127\.0\.0\.1:\d+) ", err)):
        assert time.monotonic() < deadline, f"listen printed no connectable endpoint: {err!r}"
        time.sleep(0.01)
        err += capsys.readouterr().err
    with Publisher(bound[1], connect=True) as pub:  # the address as printed works
        while listener.is_alive() and time.monotonic() < deadline:  # slow joiner: until it hears one
            pub.publish(status())
            time.sleep(0.01)
    listener.join(1)
    assert exits == [0]


def test_command_line_checks(capsys, tmp_path):
    with pytest.raises(ConfigError, match="not several"):
        args = command(["mock", "bored", "--script", "x.json"])
        args.func(args)
    with pytest.raises(DataError, match="Cannot read the recording .*gone.jsonl"):
        args = command(["mock", "--replay", str(tmp_path / "gone.jsonl"), "--endpoint", "tcp://127.0.0.1:*"])
        args.func(args)
    assert "publishing" not in capsys.readouterr().err  # nothing was announced for a replay that cannot start
    with pytest.raises(SystemExit):
        command(["listen", "--topic", "mood"])
    assert "choose emotion, state or status" in capsys.readouterr().err
