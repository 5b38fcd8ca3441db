"""Emotion classification of the player's face with the ONNX model, via onnxruntime.

The preprocessing (size, channels, normalization) comes from the model file's own metadata,
so the sensor always feeds a model exactly what it was trained on. onnxruntime was measured
2.5-3x faster than OpenCV DNN on this CPU (docs/sensor.md). ONNX files are pure data: loading
one never executes code, unlike pickled checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodloop.engine.errors import ModelError
from moodloop.sensor.config import ClassifyConfig
from moodloop.sensor.detect import Face

__all__ = ["DEFAULT_MODEL", "ModelInfo", "Classifier", "crop_face"]

DEFAULT_MODEL = Path(__file__).parent / "models" / "fer_resnet34.onnx"

_FLOAT32 = "tensor(float)"  # onnxruntime's name for float32

_REQUIREMENTS = (
    'a moodloop model is an ONNX file with input "input" float32 [N, C, H, W], output "probs" '
    'float32 [N, K] softmax probabilities, and metadata_props key "moodloop" holding JSON '
    '{"format": 1, "labels": [K names], "input": {"channels", "height", "width", "mean", "std"}} '
    "(see the model file contract in docs/sensor.md; `moodloop export` writes one)"
)


@dataclass(frozen=True)
class ModelInfo:
    """What the model file says about itself.

    Attributes:
        path: The ONNX file.
        labels: Class names in output order.
        channels: 1 (gray) or 3 (BGR-to-RGB) input channels.
        height: Input height in pixels.
        width: Input width in pixels.
        mean: Per-channel mean subtracted after scaling pixels to [0, 1].
        std: Per-channel standard deviation divided by after that.
        provenance: Free-form training facts (data, recipe, metrics).
    """

    path: Path
    labels: tuple[str, ...]
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The model's name as published in `moodloop.status`."""
        return self.path.stem

    @classmethod
    def from_metadata(cls, path: Path, text: str | None) -> ModelInfo:
        """Parse and validate the "moodloop" metadata JSON of `path`."""
        try:
            meta = json.loads(text) if text else None
            spec = meta["input"]
            info = cls(
                path=path,
                labels=tuple(str(label) for label in meta["labels"]),
                channels=int(spec["channels"]),
                height=int(spec["height"]),
                width=int(spec["width"]),
                mean=tuple(float(v) for v in spec["mean"]),
                std=tuple(float(v) for v in spec["std"]),
                provenance=dict(meta.get("provenance", {})),
            )
            ok = (meta["format"] == 1 and info.labels and len(set(info.labels)) == len(info.labels)
                  and info.channels in (1, 3) and len(info.mean) == len(info.std) == info.channels
                  and min(info.height, info.width, *info.std) > 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"Model {path} has missing or malformed moodloop metadata ({exc!r}): {_REQUIREMENTS}.") from exc
        if not ok:
            raise ModelError(f"Model {path} has inconsistent moodloop metadata {text}: {_REQUIREMENTS}.")
        return info

    def to_metadata(self) -> str:
        """The "moodloop" metadata JSON that ``from_metadata`` reads back (the path is not stored)."""
        return json.dumps({"format": 1, "labels": list(self.labels),
                           "input": {"channels": self.channels, "height": self.height, "width": self.width,
                                     "mean": list(self.mean), "std": list(self.std)},
                           "provenance": self.provenance})


def crop_face(frame: np.ndarray, face: Face, margin: float, size: tuple[int, int], gray: bool) -> np.ndarray:
    """The square crop around `face` grown by `margin`, resized to `size` (w, h) with INTER_AREA.

    Parts of the square outside the frame are filled by replicating the border, so a face at
    the edge keeps its framing instead of being stretched.
    """
    side = round(max(face.w, face.h) * (1 + 2 * margin))
    x = face.x + face.w // 2 - side // 2
    y = face.y + face.h // 2 - side // 2
    fh, fw = frame.shape[:2]
    crop = frame[max(0, y):min(fh, y + side), max(0, x):min(fw, x + side)]
    if crop.shape[:2] != (side, side):
        top, left = max(0, -y), max(0, -x)
        crop = cv2.copyMakeBorder(crop, top, side - crop.shape[0] - top, left, side - crop.shape[1] - left,
                                  cv2.BORDER_REPLICATE)
    if gray:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


class Classifier:
    """Loads a moodloop ONNX model and turns a face into class probabilities.

    Args:
        path: The model file.
        config: Crop margin and onnxruntime thread count.

    Raises:
        ModelError: The file is missing, not ONNX, or lacks the required input/output (names,
            float32 element type, shapes) or metadata.
    """

    def __init__(self, path: str | Path, config: ClassifyConfig = ClassifyConfig()) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            problem = "is a directory, not a file" if path.is_dir() else "not found"
            raise ModelError(f"Model file {path} {problem}: pass --model FILE, the .onnx file itself; {_REQUIREMENTS}.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads  # leave a core to the game
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"Model {path} is not a loadable ONNX file ({exc}); {_REQUIREMENTS}.") from exc
        meta = self._session.get_modelmeta().custom_metadata_map.get("moodloop")
        self.info = ModelInfo.from_metadata(path, meta)
        self._check_graph()
        self._margin = config.margin
        self._scale = 1.0 / (255.0 * np.asarray(self.info.std, np.float32))
        self._offset = np.asarray(self.info.mean, np.float32) / np.asarray(self.info.std, np.float32)

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in output order."""
        return self.info.labels

    def _check_graph(self) -> None:
        """Raise ModelError unless "input" and "probs" are float32 with the metadata's shapes."""
        info = self.info
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        expected = {"input": [None, info.channels, info.height, info.width], "probs": [None, len(info.labels)]}

        def fits(args: list, name: str) -> bool:  # symbolic (str) dimensions match anything
            dims = next((a.shape for a in args if a.name == name and a.type == _FLOAT32), None)
            want = expected[name]
            return dims is not None and len(dims) == len(want) and all(
                not isinstance(d, int) or w is None or d == w for d, w in zip(dims, want, strict=True))

        def show(args: list) -> str:
            return ", ".join(f"{a.name} {a.type} {a.shape}" for a in args)

        if not (fits(inputs, "input") and fits(outputs, "probs")):
            raise ModelError(
                f"Model {info.path} has inputs [{show(inputs)}] and outputs [{show(outputs)}], which do not "
                f"match what its metadata implies, input {_FLOAT32} [N, {info.channels}, {info.height}, "
                f"{info.width}] and probs {_FLOAT32} [N, {len(info.labels)}] (float32): {_REQUIREMENTS}."
            )

    @property
    def name(self) -> str:
        """The model's name, as `moodloop.status` reports it."""
        return self.info.name

    def crop(self, frame: np.ndarray, face: Face) -> np.ndarray:
        """The face crop exactly as the model sees it, before normalization (uint8)."""
        info = self.info
        return crop_face(frame, face, self._margin, (info.width, info.height), gray=info.channels == 1)

    def classify(self, frame: np.ndarray, face: Face) -> np.ndarray:
        """Class probabilities (float32, one per label) for `face` in the BGR `frame`."""
        return self.probabilities(self.crop(frame, face)[None])[0]

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities [N, K] (float32, rows summing to 1) for a batch of crops.

        Args:
            crops: uint8 faces as `crop` makes them: gray [N, H, W] for a 1-channel model, BGR
                [N, H, W, 3] for a 3-channel one.
        """
        probs = self._session.run(["probs"], {"input": self.inputs(crops)})[0]
        return probs / probs.sum(axis=1, keepdims=True)

    def inputs(self, crops: np.ndarray) -> np.ndarray:
        """The model's normalized float32 input [N, C, H, W] for a batch of crops (see `probabilities`)."""
        pixels = crops[..., None] if self.info.channels == 1 else crops[..., ::-1]  # BGR to RGB
        x = pixels.astype(np.float32) * self._scale - self._offset
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
