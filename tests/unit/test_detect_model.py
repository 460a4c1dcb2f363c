"""The real ONNX detectors on a real image (no mocks)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.detect.detector import COCO_IDS, OnnxDetector
from pipeline.errors import ModelError
from tests.conftest import REPO
from tests.media import read_bgr

IMAGE = REPO / "pipeline" / "ops" / "demo" / "assets" / "street_parking.jpg"
SHARED_V8 = REPO.parent / "shared" / "models" / "coco" / "yolov8n_320_dq.onnx"

pytestmark = pytest.mark.model


def _white_car_found(det_xyxy: np.ndarray, classes: np.ndarray, scores: np.ndarray) -> float:
    """Best car score whose box covers the white car in the foreground (right two thirds)."""
    best = 0.0
    for box, c, s in zip(det_xyxy, classes, scores, strict=True):
        x1, _, x2, y2 = box
        if c == COCO_IDS["car"] and x1 < 0.4 * 1920 and x2 > 0.9 * 1920 and y2 > 0.8 * 1080:
            best = max(best, float(s))
    return best


def input_shapes(det: OnnxDetector) -> list[tuple[int, ...]]:
    """The shapes of the batches ``det`` runs from now on (filled in as it runs them)."""
    shapes: list[tuple[int, ...]] = []
    run = det._run

    def spy(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        shapes.append(batch.shape)
        return run(batch)

    det._run = spy  # type: ignore[method-assign]
    return shapes


def test_yolox_finds_the_parked_car_and_motorcycle() -> None:
    det = OnnxDetector(REPO / "models" / "yolox_nano.onnx", intra_op_threads=2)
    assert det.info.layout == "yolox" and det.info.input_size == (416, 416)
    assert det.info.sha256.startswith("3436fd5eea39")  # models/MODEL_CARD.md
    assert det.info.fit_aspect  # free input sides (models/tools/free_input_size.py)
    shapes = input_shapes(det)
    img = read_bgr(IMAGE)
    (result,) = det.detect([img])
    assert shapes == [(1, 3, 288, 416)]  # the 16:9 picture, a stride of grey, not a square
    assert _white_car_found(result.xyxy, result.class_id, result.confidence) > 0.8
    two_wheel = {COCO_IDS["motorcycle"], COCO_IDS["bicycle"]}
    assert any(c in two_wheel for c in result.class_id.tolist())


def test_class_filter_and_batch_of_two() -> None:
    det = OnnxDetector(
        REPO / "models" / "yolox_nano.onnx", classes={COCO_IDS["car"]}, intra_op_threads=1
    )
    img = read_bgr(IMAGE)
    a, b = det.detect([img, np.asarray(cv2.flip(img, 1), np.uint8)])
    assert set(a.class_id.tolist()) == {COCO_IDS["car"]}
    assert len(b) > 0 and set(b.class_id.tolist()) == {COCO_IDS["car"]}


def test_sha256_mismatch_is_refused() -> None:
    with pytest.raises(ModelError, match="sha256"):
        OnnxDetector(REPO / "models" / "yolox_nano.onnx", expected_sha256="0" * 64)


def test_missing_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        OnnxDetector(tmp_path / "nope.onnx")


@pytest.mark.skipif(not SHARED_V8.exists(), reason="shared/models not beside the checkout")
def test_ultralytics_layout_model() -> None:
    det = OnnxDetector(SHARED_V8, intra_op_threads=2)
    assert det.info.layout == "ultralytics" and det.info.input_size == (320, 320)
    (result,) = det.detect([read_bgr(IMAGE)])
    assert _white_car_found(result.xyxy, result.class_id, result.confidence) > 0.8


def test_a_dynamic_batch_runs_once_per_input_shape(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(REPO / "models" / "yolox_nano.onnx"))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    # the head's reshapes were exported for batch 1 ([1, 85, -1]); 0 keeps the input's batch
    shapes_of = {n.input[1] for n in model.graph.node if n.op_type == "Reshape"}
    for init in model.graph.initializer:
        if init.name in shapes_of:
            init.CopyFrom(onnx.numpy_helper.from_array(np.array([0, 85, -1]), init.name))
    path = tmp_path / "yolox_nano_batch.onnx"
    onnx.save(model, str(path))
    det = OnnxDetector(path, intra_op_threads=1)
    assert det.info.dynamic_batch and det.info.fit_aspect
    shapes = input_shapes(det)
    wide = read_bgr(IMAGE)
    tall = np.ascontiguousarray(np.rot90(wide))
    together = det.detect([wide, tall, wide])
    assert sorted(shapes) == [(1, 3, 416, 288), (2, 3, 288, 416)]
    alone = [det.detect([img])[0] for img in (wide, tall, wide)]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.01)
        assert a.class_id.tolist() == b.class_id.tolist()
