"""Export a random-weights stand-in for the shipped emotion model (dev tool; needs torch).

The real model (sensor/models/fer_resnet34.onnx) comes from training. Until then this builds a
file with the same architecture, input, output and metadata, so the sensor can be run and
benchmarked end to end. Its predictions are meaningless.

Usage:
    uv run python bench/make_standin_model.py                      # runs/standin.onnx, no max-pool
    uv run python bench/make_standin_model.py --stem standard -o runs/standin_std.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def build_model(stem: str):
    """A torchvision ResNet34 for 1x48x48 gray faces, 7 classes, softmax output."""
    import torch
    from torchvision.models import resnet34

    net = resnet34(num_classes=len(LABELS))
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if stem == "nomaxpool":
        # 48 px faces are small: skipping the max-pool keeps a 24x24 map after the stem (12x12 with it).
        net.maxpool = torch.nn.Identity()
    return torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()


def export(path: Path, stem: str) -> None:
    """Export the stand-in with the moodloop metadata the sensor validates."""
    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_model(stem)
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 48, 48),),
        str(path),
        input_names=["input"],
        output_names=["probs"],
        dynamic_axes={"input": {0: "N"}, "probs": {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    meta = {
        "format": 1,
        "labels": list(LABELS),
        "input": {"channels": 1, "height": 48, "width": 48, "mean": [0.5], "std": [0.25]},
        "provenance": {"note": f"random-weights stand-in (resnet34, stem={stem}); not trained"},
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = "moodloop", json.dumps(meta)
    onnx.save(proto, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/standin.onnx"))
    parser.add_argument("--stem", choices=("nomaxpool", "standard"), default="nomaxpool")
    args = parser.parse_args()
    export(args.output, args.stem)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
