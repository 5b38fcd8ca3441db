"""How the sensor's crop margin changes what the classifier gets right, on real faces.

FER2013 validation faces are pasted at webcam size (200 px) on a 640x480 background, the Haar
detector finds them as the sensor does, and the crop around each detected box, grown by each
margin, is classified. The figure is the share of faces whose top class is their label: the
pipeline's accuracy, which the model's own validation accuracy bounds from above. FER2013's
faces fill their 48x48 frame, so the best margin is the one whose crop matches that framing.
The faces are decoded in memory from ../shared/data/fer2013/fer2013-trainval.zip.

Usage:
    uv run python bench/sensor_crop.py                      # the shipped model, margins -0.1..0.3
    uv run python bench/sensor_crop.py --model runs/mine.onnx --per-class 40 --margins 0 0.1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from moodloop.sensor.classify import DEFAULT_MODEL, Classifier
from moodloop.sensor.config import ClassifyConfig
from moodloop.sensor.detect import Face, HaarDetector
from moodloop.sensor.synthetic import fer_faces, scene


def detected_faces(labels: tuple[str, ...], per_class: int, face_px: int = 200,
                   ) -> tuple[list[tuple[int, np.ndarray, Face]], list[float]]:
    """(label index, frame, largest detected box) for every pasted face the detector finds, and
    the ratio of the pasted side to the detected side for each."""
    detector = HaarDetector()
    found, ratios = [], []
    for index, label in enumerate(labels):
        for face in fer_faces(label, per_class):
            frame = scene(face, face_px=face_px)
            boxes = detector.detect(frame)
            if boxes:
                box = max(boxes, key=lambda b: b.w * b.h)
                found.append((index, frame, box))
                ratios.append(face_px / max(box.w, box.h))
    return found, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX model (default: the shipped one)")
    parser.add_argument("--per-class", type=int, default=80, help="faces read per class (default 80)")
    parser.add_argument("--margins", type=float, nargs="+", default=[-0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3])
    args = parser.parse_args()
    labels = Classifier(args.model).labels
    faces, ratios = detected_faces(labels, args.per_class)
    p10, p50, p90 = np.percentile(ratios, [10, 50, 90])
    print(f"{len(faces)} of {args.per_class * len(labels)} faces detected; pasted side / detected side: "
          f"median {p50:.2f} (p10 {p10:.2f}, p90 {p90:.2f})\n")
    print("| margin | accuracy |\n|---:|---:|")
    for margin in args.margins:
        classifier = Classifier(args.model, ClassifyConfig(margin=margin))
        correct = sum(int(np.argmax(classifier.classify(frame, box)) == index) for index, frame, box in faces)
        print(f"| {margin:+.2f} | {correct / len(faces):.1%} |", flush=True)


if __name__ == "__main__":
    main()
