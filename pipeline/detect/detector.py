"""Stage 2: COCO object detection with onnxruntime.

Two output layouts are decoded:

* YOLOX (Megvii export, ``[B, A, 85]``): raw grid offsets, log sizes, objectness and class
  probabilities; boxes need the stride grid. Input is BGR 0-255, pasted top-left on a 114 canvas.
* Ultralytics YOLOv8 (``[B, 84, A]``): decoded ``cx, cy, w, h`` plus 80 class scores, no
  objectness. Input is RGB /255 with a centred 114 letterbox.

This is the only module that imports onnxruntime (it ships no type information).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from pipeline.errors import ModelError
from pipeline.types import Detections

logger = logging.getLogger(__name__)

Layout = Literal["yolox", "ultralytics"]

COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
COCO_IDS: dict[str, int] = {name: i for i, name in enumerate(COCO_NAMES)}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What reports say about the detector (name, hash) and how it is fed."""

    name: str
    path: Path
    sha256: str
    layout: Layout
    input_name: str
    input_size: tuple[int, int]  # (width, height); the largest, where the model takes any
    dynamic_batch: bool
    # Height and width are free in the graph: each image is letterboxed to its own aspect (plus
    # a stride of grey, sides rounded up to the stride) instead of to a square, so little
    # inference is spent on padding (see ``letterbox``).
    fit_aspect: bool = False


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the model input: ``input = image * ratio + (pad_x, pad_y)``."""

    ratio: float
    pad_x: float
    pad_y: float


STRIDE = 32  # the coarsest feature map of the YOLOX and YOLOv8 heads


def _fitted(side: int) -> int:
    """A fitted canvas side: the picture and at least one stride of grey, as a multiple of the
    stride. Without the grey, objects at the picture's edge meet the network's zero padding
    where the square had grey: on 75 frames of four development clips, 14 of 94 boxes (all
    below 0.4) came and went; with it, 4."""
    return -(-(side + STRIDE) // STRIDE) * STRIDE


def letterbox(
    image: NDArray[np.uint8], size: tuple[int, int], layout: Layout, fit: bool = False
) -> tuple[NDArray[np.uint8], Letterbox]:
    """Resize keeping aspect ratio onto a 114-grey canvas (top-left for YOLOX, centred else).

    ``fit``: the canvas shrinks to the resized image plus a stride of grey, its sides rounded
    up to ``STRIDE`` (for models whose input height and width are free): a 16:9 frame at 416
    is 416 × 288, 0.69 of the square's inference, same scale."""
    w_in, h_in = size
    h, w = image.shape[:2]
    ratio = min(w_in / w, h_in / h)
    nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
    if fit:
        w_in, h_in = min(w_in, _fitted(nw)), min(h_in, _fitted(nh))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((h_in, w_in, 3), 114, dtype=np.uint8)
    if layout == "yolox":
        px, py = 0, 0
    else:
        px, py = (w_in - nw) // 2, (h_in - nh) // 2
    canvas[py : py + nh, px : px + nw] = resized
    return canvas, Letterbox(ratio=ratio, pad_x=float(px), pad_y=float(py))


def to_tensor(canvas: NDArray[np.uint8], layout: Layout) -> NDArray[np.float32]:
    """(H, W, 3) BGR canvas → (3, H, W) float32 in the model's channel order and scale."""
    if layout == "yolox":
        return canvas.transpose(2, 0, 1).astype(np.float32)  # BGR, 0-255, no normalisation
    rgb = canvas[:, :, ::-1].transpose(2, 0, 1)
    return rgb.astype(np.float32) * np.float32(1.0 / 255.0)


def yolox_grid(
    input_size: tuple[int, int], strides: Sequence[int] = (8, 16, 32)
) -> NDArray[np.float32]:
    """(A, 3) rows of ``grid_x, grid_y, stride`` in YOLOX anchor order."""
    w, h = input_size
    rows = []
    for s in strides:
        gh, gw = h // s, w // s
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        rows.append(np.stack([xs.ravel(), ys.ravel(), np.full(gh * gw, s)], axis=1))
    return np.concatenate(rows).astype(np.float32)


def decode_yolox(
    raw: NDArray[np.float32], grid: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int32]]:
    """YOLOX head ``(A, 5 + C)`` → boxes xyxy (input px), best-class scores, class ids."""
    if raw.shape[0] != grid.shape[0]:
        raise ModelError(f"YOLOX output has {raw.shape[0]} anchors, grid has {grid.shape[0]}")
    stride = grid[:, 2:3]
    cxy = (raw[:, 0:2] + grid[:, 0:2]) * stride
    wh = np.exp(np.clip(raw[:, 2:4], -20.0, 20.0)) * stride
    cls_scores = raw[:, 5:] * raw[:, 4:5]
    class_id = cls_scores.argmax(axis=1).astype(np.int32)
    score = cls_scores[np.arange(len(cls_scores)), class_id]
    boxes = np.concatenate([cxy - wh / 2, cxy + wh / 2], axis=1)
    return boxes.astype(np.float32), score.astype(np.float32), class_id


def decode_ultralytics(
    raw: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int32]]:
    """Ultralytics head ``(4 + C, A)`` → boxes xyxy (input px), best-class scores, class ids."""
    pred = raw.T
    class_id = pred[:, 4:].argmax(axis=1).astype(np.int32)
    score = pred[np.arange(len(pred)), 4 + class_id]
    cxy, wh = pred[:, 0:2], pred[:, 2:4]
    boxes = np.concatenate([cxy - wh / 2, cxy + wh / 2], axis=1)
    return boxes.astype(np.float32), score.astype(np.float32), class_id


def postprocess(
    boxes: NDArray[np.float32],
    scores: NDArray[np.float32],
    class_id: NDArray[np.int32],
    lb: Letterbox,
    image_size: tuple[int, int],
    score_threshold: float,
    nms_iou: float,
    keep_classes: NDArray[np.bool_] | None = None,
    max_detections: int = 300,
) -> Detections:
    """Threshold, class filter, undo the letterbox, clip, class-aware NMS."""
    keep = scores >= score_threshold
    if keep_classes is not None:
        keep &= keep_classes[class_id]
    if not keep.any():
        return Detections.empty()
    boxes, scores, class_id = boxes[keep], scores[keep], class_id[keep]
    boxes = (boxes - np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], np.float32)) / lb.ratio
    w, h = image_size
    boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    picked = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(), scores.tolist(), class_id.tolist(), score_threshold, nms_iou
    )
    idx = np.asarray(picked, dtype=np.intp).reshape(-1)[:max_detections]
    return Detections(xyxy=boxes[idx], confidence=scores[idx], class_id=class_id[idx])


# Execution providers the detector may be asked for, by their configuration names.
PROVIDERS = {
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def usable_providers(wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the onnxruntime providers to use, in order, always ending with CPU; the wanted ones this
    onnxruntime build does not have). An accelerator is opt-in and never required: a missing
    one falls back to the CPU, loudly."""
    available = set(ort.get_available_providers())
    use = [PROVIDERS[w] for w in wanted if PROVIDERS[w] in available and w != "cpu"]
    missing = [w for w in wanted if PROVIDERS[w] not in available]
    return [*use, PROVIDERS["cpu"]], missing


def cpu_session(
    path: Path, intra_op_threads: int, providers: Sequence[str] = ("cpu",)
) -> ort.InferenceSession:
    """An onnxruntime session with explicit thread counts (cameras share few cores); on the CPU
    unless ``providers`` names an accelerator this build has."""
    use, missing = usable_providers(providers)
    if missing:
        logger.warning(
            "%s: execution providers %s are not in this onnxruntime build (it has %s); "
            "using %s", path.name, missing, ort.get_available_providers(), use,
        )  # fmt: skip
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    # OpenVINO runs its own thread pool, by default over every core: held to the same count
    chosen: list[str | tuple[str, dict[str, str]]] = [
        (p, {"num_of_threads": str(intra_op_threads)}) if p == PROVIDERS["openvino"] else p
        for p in use
    ]
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load {path}: {exc}") from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class OnnxDetector:
    """A COCO detector on onnxruntime's CPU provider with an explicit thread budget."""

    def __init__(
        self,
        path: Path,
        *,
        layout: Literal["auto", "yolox", "ultralytics"] = "auto",
        score_threshold: float = 0.25,
        nms_iou: float = 0.45,
        intra_op_threads: int = 1,
        classes: Collection[int] | None = None,
        expected_sha256: str | None = None,
        providers: Sequence[str] = ("cpu",),
    ) -> None:
        if not path.is_file():
            raise ModelError(f"model file {path} not found")
        digest = sha256_file(path)
        if expected_sha256 is not None and digest != expected_sha256:
            raise ModelError(f"model {path} has sha256 {digest}, config expects {expected_sha256}")
        self._session = cpu_session(path, intra_op_threads, providers)
        self.providers = tuple(self._session.get_providers())
        inp = self._session.get_inputs()[0]
        out_shape = self._session.get_outputs()[0].shape
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ModelError(f"{path}: expected an NCHW image input, got {shape}")
        fit = not isinstance(shape[2], int) and not isinstance(shape[3], int)
        w_in, h_in = (
            nominal_size(self._session.get_modelmeta().custom_metadata_map)
            if fit
            else (int(shape[3]), int(shape[2]))
        )
        resolved = _resolve_layout(layout, out_shape, path)
        self.info = ModelInfo(
            name=path.stem,
            path=path,
            sha256=digest,
            layout=resolved,
            input_name=inp.name,
            input_size=(w_in, h_in),
            dynamic_batch=not isinstance(shape[0], int),
            fit_aspect=fit,
        )
        self._grids: dict[tuple[int, int], NDArray[np.float32]] = {}
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self._keep: NDArray[np.bool_] | None = None
        if classes is not None:
            self._keep = np.zeros(len(COCO_NAMES), dtype=np.bool_)
            self._keep[list(classes)] = True
        logger.info(
            "detector %s (%s, %dx%d%s, sha256 %s…, dynamic batch: %s)",
            self.info.name, resolved, w_in, h_in, " fitted to each image" if fit else "",
            digest[:12], self.info.dynamic_batch,
        )  # fmt: skip

    def detect(self, images: Sequence[NDArray[np.uint8]]) -> list[Detections]:
        """Detect objects in BGR images; one ``Detections`` per image, in image pixels."""
        if not images:
            return []
        layout = self.info.layout
        fit = self.info.fit_aspect
        prepared = [letterbox(img, self.info.input_size, layout, fit) for img in images]
        tensors = [to_tensor(canvas, layout) for canvas, _ in prepared]
        # A dynamic batch runs once per input shape (fitted canvases of cameras with other
        # aspects differ); a fixed one, image by image.
        groups: dict[object, list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(t.shape if self.info.dynamic_batch else i, []).append(i)
        raws: dict[int, NDArray[np.float32]] = {}
        for idx in groups.values():
            raws.update(zip(idx, self._run(np.stack([tensors[i] for i in idx])), strict=True))
        results = []
        for i, ((canvas, lb), img) in enumerate(zip(prepared, images, strict=True)):
            raw = raws[i]
            if layout == "yolox":
                boxes, scores, cls = decode_yolox(raw, self._grid(canvas.shape[1], canvas.shape[0]))
            else:
                boxes, scores, cls = decode_ultralytics(raw)
            size = (img.shape[1], img.shape[0])
            results.append(
                postprocess(
                    boxes, scores, cls, lb, size, self.score_threshold, self.nms_iou, self._keep
                )
            )
        return results

    def _run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        out = self._session.run(None, {self.info.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32)

    def _grid(self, w: int, h: int) -> NDArray[np.float32]:
        grid = self._grids.get((w, h))
        if grid is None:
            grid = self._grids[w, h] = yolox_grid((w, h))
        return grid


def nominal_size(metadata: dict[str, str]) -> tuple[int, int]:
    """(width, height) a model with free input sides is fed at: its ``imgsz`` metadata
    (Ultralytics' exports and ``models/tools/free_input_size.py`` write ``[h, w]``), else 640."""
    try:
        h, w = (int(v) for v in metadata["imgsz"].strip("[]() ").split(","))
    except (KeyError, ValueError):
        return 640, 640
    if min(h, w) < STRIDE or h % STRIDE or w % STRIDE:
        return 640, 640
    return w, h


def _resolve_layout(
    layout: Literal["auto", "yolox", "ultralytics"], out_shape: Sequence[object], path: Path
) -> Layout:
    if layout != "auto":
        return layout
    dims = [d if isinstance(d, int) else -1 for d in out_shape]
    if len(dims) == 3 and dims[2] == 85:
        return "yolox"
    if len(dims) == 3 and dims[1] == 84:
        return "ultralytics"
    raise ModelError(
        f"{path}: cannot tell the output layout from shape {list(out_shape)}; "
        "set model.layout to 'yolox' ([1,N,85]) or 'ultralytics' ([1,84,N])"
    )


class OnnxScorer:
    """A single-output image model (a probability per image), fed like YOLOX (BGR 0-255,
    top-left letterbox). Used for the bins classifier."""

    def __init__(self, path: Path, intra_op_threads: int = 1) -> None:
        if not path.is_file():
            raise ModelError(f"model file {path} not found")
        self._session = cpu_session(path, intra_op_threads)
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self.input_size = (int(inp.shape[3]), int(inp.shape[2]))
        self.sha256 = sha256_file(path)
        self.name = path.stem

    def score(self, image: NDArray[np.uint8]) -> float:
        canvas, _ = letterbox(image, self.input_size, "yolox")
        out = self._session.run(None, {self._input: to_tensor(canvas, "yolox")[None]})[0]
        return float(np.asarray(out, np.float32).reshape(-1)[0])
