"""End-to-end sensor benchmark: a 640x480 30 fps video with one face, analysed with --fast.

Reports analysed frames/s, capture-to-publish latency p50/p95, a stage-cost table, CPU % and
peak RSS. The video is built in a temporary folder from a FER2013 validation face pasted on a
background when ../shared/data/fer2013 exists, else from a drawn face; it is deleted after.
`--soak-minutes N` then runs the pipeline on a paced fake camera for N minutes and prints the
resident memory every minute (it must not grow).

Usage:
    uv run python bench/sensor.py                       # the shipped model
    uv run python bench/sensor.py --model runs/other.onnx --soak-minutes 60
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import threading
import time
from pathlib import Path

from moodloop.engine.publisher import Publisher
from moodloop.sensor.capture import Capture, FakeCamera
from moodloop.sensor.classify import DEFAULT_MODEL, Classifier
from moodloop.sensor.config import SensorConfig
from moodloop.sensor.detect import HaarDetector, PlayerTracker
from moodloop.sensor.pipeline import Sensor, SensorOptions, StageTimes, Summary, run_sensor
from moodloop.sensor.synthetic import FER_ZIP, cartoon_face, fer_faces, scene, write_video

STAGES = ("capture", "detect", "classify", "smooth", "engagement", "publish")


def bench_face():
    """A face the Haar cascade finds: a FER validation face if available, else a drawn one."""
    if FER_ZIP.exists():
        detector = HaarDetector()
        return next(f for f in fer_faces("happy", 50) if detector.detect(scene(f, face_px=220))), "FER2013 validation"
    return cartoon_face(), "drawn (no ../shared)"


def frame_at(face, i: int):
    """Frame `i` of the bench scene: the face swaying slowly, like a player."""
    return scene(face, face_px=220, offset=(round(20 * math.sin(i / 15)), round(8 * math.sin(i / 23))), seed=i % 8)


def rss_mb() -> float:
    """Current resident memory in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(times: StageTimes, summary: Summary, cpu_percent: float) -> None:
    """Print the figures as Markdown."""
    p50, p95 = times.percentiles("latency", 50, 95)
    print(f"- analysed: {summary.frames} frames in {summary.seconds:.1f} s = **{summary.fps:.1f} frames/s**")
    print(f"- latency capture->publish: p50 {p50:.1f} ms, p95 **{p95:.1f} ms**")
    print(f"- classify median: **{times.percentiles('classify', 50)[0]:.2f} ms**")
    print(f"- CPU: {cpu_percent:.0f} % of one core (model loading included); peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB\n")
    print("| stage | p50 ms | p95 ms | mean ms |\n|---|---|---|---|")
    for stage in STAGES:
        values = times.samples.get(stage, [])
        mean = sum(values) / len(values) if values else float("nan")
        print(f"| {stage} | {times.percentiles(stage, 50)[0]:.2f} | {times.percentiles(stage, 95)[0]:.2f} | {mean:.2f} |")


def soak(model: Path, face, minutes: float) -> None:
    """Run on a paced 30 fps fake camera for `minutes`, printing RSS every minute."""
    stop = threading.Event()
    config = SensorConfig()
    frames = [frame_at(face, i) for i in range(90)]  # made once: the soak measures the sensor
    with (Capture(FakeCamera(lambda i: frames[i % len(frames)], fps=30), config.capture) as capture,
          Publisher("tcp://127.0.0.1:*") as publisher):
        sensor = Sensor(capture, PlayerTracker(HaarDetector(config.detect), config.detect),
                        Classifier(model, config.classify), publisher, config)
        thread = threading.Thread(target=sensor.run, args=(stop,))
        thread.start()
        print("\n| minute | RSS MiB |\n|---|---|")
        start = time.monotonic()
        for minute in range(math.ceil(minutes) + 1):  # each whole minute, and the end of a fractional last one
            at = min(minute, minutes)
            time.sleep(max(0.0, start + at * 60 - time.monotonic()))
            print(f"| {at:g} | {rss_mb():.1f} |", flush=True)
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--seconds", type=float, default=20.0, help="video length")
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    args = parser.parse_args()
    face, origin = bench_face()
    with tempfile.TemporaryDirectory() as tmp:  # the video never outlives the bench
        frames = round(args.seconds * 30)
        video = write_video(Path(tmp) / "bench.avi", (frame_at(face, i) for i in range(frames)), fps=30)
        print(f"## sensor bench: {args.model.name}, 640x480 30 fps, {frames} frames, face: {origin}\n")
        cpu0, wall0 = time.process_time(), time.monotonic()
        options = SensorOptions(source=str(video), model=args.model, endpoint="tcp://127.0.0.1:*", fast=True)
        summary, times = run_sensor(options, SensorConfig(), threading.Event())
        report(times, summary, 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0))
    if args.soak_minutes:
        soak(args.model, face, args.soak_minutes)


if __name__ == "__main__":
    main()
