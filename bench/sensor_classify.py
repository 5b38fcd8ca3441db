"""Benchmark the emotion classifier runtimes on this CPU: onnxruntime against OpenCV DNN.

One 1x1x48x48 face per call, as the sensor runs it. Reports median and p95 ms per runtime and
thread count. Build a model first (bench/make_standin_model.py) or pass the trained one.

Usage:
    uv run python bench/sensor_classify.py runs/standin.onnx runs/standin_std.onnx
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import onnxruntime as ort


def _ort_runner(path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["probs"], {"input": x})[0]


def _cv2_runner(path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    net = cv2.dnn.readNetFromONNX(path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def run(x: np.ndarray) -> np.ndarray:
        cv2.setNumThreads(threads)
        net.setInput(x)
        return net.forward()

    return run


def measure(run: Callable[[np.ndarray], np.ndarray], repeat: int) -> tuple[float, float]:
    """Median and p95 milliseconds of `repeat` single-face calls after a warm-up."""
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    for _ in range(10):
        run(x)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    print("| model | runtime | threads | median ms | p95 ms |\n|---|---|---|---|---|")
    for path in args.models:
        for name, factory in (("onnxruntime", _ort_runner), ("opencv-dnn", _cv2_runner)):
            for threads in (1, 2):
                try:
                    median, p95 = measure(factory(path, threads), args.repeat)
                except cv2.error:  # OpenCV's importer lacks some ops (e.g. folded Constants)
                    print(f"| {path} | {name} | {threads} | cannot load this graph | |")
                    break
                print(f"| {path} | {name} | {threads} | {median:.2f} | {p95:.2f} |", flush=True)


if __name__ == "__main__":
    main()
