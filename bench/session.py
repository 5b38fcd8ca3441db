"""Scripted sessions of real faces through the real sensor: what was shown vs what was published.

Each session (`moodloop.sensor.synthetic.SESSIONS`) is a script of segments, e.g. 10 s of a
reacting player (a new happy/surprise FER2013 validation face every second), then 20 s of one
neutral face held still (a blank stare). The faces are decoded in memory from
../shared/data/fer2013/fer2013-trainval.zip and pasted at webcam size on a 640x480 background
with a slight sway and camera noise; the video lives in a temporary folder only. The sensor
runs on it with `--fast`, and the timeline prints the scripted segments next to the states
published, on the video clock (frame / fps), with each state's offset into its segment (e.g.
when `bored` was entered after the stare began).

Usage:
    uv run python bench/session.py --model runs/standin.onnx          # plumbing only (random weights)
    uv run python bench/session.py                                      # the shipped model
    uv run python bench/session.py engaged-then-bored --config tune.toml
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from moodloop.engine.protocol import Emotion, Message
from moodloop.sensor.classify import DEFAULT_MODEL
from moodloop.sensor.config import load_config
from moodloop.sensor.synthetic import (SESSIONS, FacePool, Segment, play_session, segment_at, spans,
                                       states_on_video_clock)


def timeline(name: str, segments: Sequence[Segment], messages: Sequence[Message], fps: float) -> str:
    """The script (with the share of its frames where a face was analysed) and the published states, as Markdown."""
    face_frames = {m.frame for m in messages if isinstance(m, Emotion)}
    lines = [f"## {name}\n", "| video s | scripted segment | frames analysed with a face |", "|---|---|---|"]
    for index, (segment, (start, end)) in enumerate(zip(segments, spans(segments))):
        frames = range(round(start * fps), round(end * fps))
        share = sum(i in face_frames for i in frames) / max(1, len(frames))
        lines.append(f"| {start:5.1f}-{end:5.1f} | #{index} {segment} | {share:.0%} |")
    lines += ["", "| video s | state published | confidence | in segment |", "|---|---|---|---|"]
    states = states_on_video_clock(messages, fps)
    for t, state in states:
        index, offset = segment_at(segments, t)
        lines.append(f"| {t:5.1f} | {state.state} | {state.confidence:.2f} | #{index} +{offset:.1f} s |")
    if not states:
        lines.append("| - | (no change: unknown throughout) | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sessions", nargs="*", metavar="SESSION",
                        help=f"which sessions to run (default: all of {', '.join(SESSIONS)})")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX model (default: the shipped one)")
    parser.add_argument("--config", type=Path, help="TOML or JSON sensor config overrides, to tune")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate (default 30)")
    parser.add_argument("--face-px", type=int, default=200, help="face size in pixels (default 200)")
    args = parser.parse_args()
    unknown = sorted(set(args.sessions) - set(SESSIONS))
    if unknown:
        parser.error(f"unknown session(s) {', '.join(unknown)}; choose from {', '.join(SESSIONS)}")
    config = load_config(args.config)
    pool = FacePool(args.face_px)
    print(f"# scripted sessions: model {args.model}, config {args.config or 'defaults'}, "
          f"{args.fps:g} fps, faces {args.face_px} px\n")
    for name in args.sessions or SESSIONS:
        messages = play_session(SESSIONS[name], pool, args.model, config=config, fps=args.fps)
        print(timeline(name, SESSIONS[name], messages, args.fps), flush=True)


if __name__ == "__main__":
    main()
