"""Game benchmark: `moodloop play` headless with the bot, against the mock or the real sensor.

Runs `moodloop play --mock bored --headless --bot --frames N --stats FILE` and prints mean fps,
the worst frame and what boredom did. With `--model` it also runs the sensor on a generated
video of a face (`--source VIDEO`, the sensor and the game on the same CPU) and checks that
no sensor process outlives the game.

Usage:
    uv run python bench/game.py
    uv run python bench/game.py --model runs/standin.onnx --frames 3600
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from moodloop.sensor.synthetic import cartoon_face, scene, write_video


def play(*options: str, tmp: Path) -> dict:
    """Run `moodloop play --headless --bot` with `options`; return its stats."""
    stats = tmp / "stats.json"
    argv = [sys.executable, "-m", "moodloop.engine.cli", "play", "--headless", "--bot", "--stats", str(stats), *options]
    subprocess.run(argv, check=True, env={**os.environ, "MOODLOOP_CONFIG_DIR": str(tmp)})
    return json.loads(stats.read_text())


def leftovers(marker: str) -> list[str]:
    """Command lines of running processes that mention `marker` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if marker in text:
            found.append(text.strip())
    return found


def report(title: str, stats: dict) -> None:
    """Print one run's headline numbers."""
    print(f"## {title}")
    for key in ("frames", "fps_mean", "frame_ms_max", "frame_ms_p99", "work_ms_mean", "work_ms_max",
                "obstacles_total", "obstacles_boredom", "waves", "pauses", "state_apply_lag_frames",
                "state_latency_ms_max", "feed", "feed_failure"):
        print(f"{key:>24}: {stats[key]}")
    print(f"{'states':>24}: " + ", ".join(f"{c['state']}@{c['time_s']:.1f}s" for c in stats["states"]))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--model", type=Path, help="also run the real sensor on a video, with this model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:  # stats and the video never outlive the bench
        tmp = Path(folder)
        report(f"mock bored, {args.frames} frames", play("--mock", "bored", "--frames", str(args.frames), tmp=tmp))
        if args.model is None:
            return
        face = cartoon_face()
        frames = math.ceil(args.frames / 60 * 30) + 60  # 30 fps video, longer than the game
        video = write_video(tmp / "face.avi", (scene(face, face_px=220, seed=i % 8) for i in range(frames)), fps=30)
        stats = play("--source", str(video), "--model", str(args.model), "--frames", str(args.frames), tmp=tmp)
        report(f"sensor on a video + game, {args.frames} frames", stats)
        left = leftovers(str(video))
        print("processes left behind:", left or "none")


if __name__ == "__main__":
    main()
