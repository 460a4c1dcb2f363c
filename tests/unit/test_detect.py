"""Decoding of both output layouts, letterbox inversion and NMS, on hand-built tensors."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect.detector import (
    COCO_IDS,
    Letterbox,
    _resolve_layout,
    decode_ultralytics,
    decode_yolox,
    letterbox,
    nominal_size,
    postprocess,
    to_tensor,
    yolox_grid,
)
from pipeline.errors import ModelError


def test_yolox_grid_matches_anchor_count() -> None:
    grid = yolox_grid((416, 416))
    assert grid.shape == (3549, 3)  # 52² + 26² + 13²
    assert tuple(grid[0]) == (0, 0, 8) and tuple(grid[52]) == (0, 1, 8)
    assert tuple(grid[-1]) == (12, 12, 32)


def test_decode_yolox_one_anchor() -> None:
    grid = yolox_grid((416, 416))
    raw = np.zeros((3549, 85), np.float32)
    # anchor at stride 16, grid cell (x=10, y=5): index 52*52 + 5*26 + 10
    i = 52 * 52 + 5 * 26 + 10
    raw[i, 0:2] = [0.5, 0.25]  # offsets within the cell
    raw[i, 2:4] = np.log([4.0, 2.0])  # w = 4 strides, h = 2 strides
    raw[i, 4] = 0.9  # objectness
    raw[i, 5 + COCO_IDS["car"]] = 0.8
    boxes, scores, cls = decode_yolox(raw, grid)
    cx, cy = (10 + 0.5) * 16, (5 + 0.25) * 16
    np.testing.assert_allclose(boxes[i], [cx - 32, cy - 16, cx + 32, cy + 16], rtol=1e-5)
    assert cls[i] == COCO_IDS["car"]
    assert scores[i] == pytest.approx(0.72)
    assert scores.argmax() == i


def test_decode_ultralytics_one_anchor() -> None:
    raw = np.zeros((84, 2100), np.float32)
    raw[0:4, 7] = [100, 60, 40, 20]
    raw[4 + COCO_IDS["truck"], 7] = 0.66
    boxes, scores, cls = decode_ultralytics(raw)
    np.testing.assert_allclose(boxes[7], [80, 50, 120, 70])
    assert cls[7] == COCO_IDS["truck"] and scores[7] == pytest.approx(0.66)


@pytest.mark.parametrize("fit", [False, True])
@pytest.mark.parametrize("layout", ["yolox", "ultralytics"])
def test_letterbox_roundtrip(layout: str, fit: bool) -> None:
    img = np.zeros((720, 1280, 3), np.uint8)
    canvas, lb = letterbox(img, (416, 416), layout, fit)  # type: ignore[arg-type]
    h_in = 288 if fit else 416  # 234 rows of picture and a stride of grey, to the stride
    assert canvas.shape == (h_in, 416, 3)
    assert lb.ratio == pytest.approx(416 / 1280)
    if layout == "yolox":
        assert (lb.pad_x, lb.pad_y) == (0, 0)
    else:
        assert lb.pad_x == 0 and lb.pad_y == (h_in - 234) // 2
    # a box in input pixels maps back to the original frame
    box_img = np.array([[640, 360, 800, 500]], np.float32)
    box_in = box_img * lb.ratio + [lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y]
    det = postprocess(
        box_in.astype(np.float32), np.array([0.9], np.float32), np.array([2], np.int32),
        lb, (1280, 720), 0.25, 0.45,
    )  # fmt: skip
    np.testing.assert_allclose(det.xyxy[0], box_img[0], atol=1e-3)


def test_letterbox_fitted_to_a_portrait_picture() -> None:
    canvas, lb = letterbox(np.zeros((1000, 500, 3), np.uint8), (416, 416), "yolox", fit=True)
    assert canvas.shape == (416, 256, 3) and lb.ratio == pytest.approx(0.416)  # 208 + 32 → 256


@pytest.mark.parametrize(
    ("meta", "size"),
    [({"imgsz": "[416, 416]"}, (416, 416)), ({"imgsz": "[384, 640]"}, (640, 384)),
     ({}, (640, 640)), ({"imgsz": "[400, 400]"}, (640, 640)), ({"imgsz": "big"}, (640, 640))],
)  # fmt: skip
def test_nominal_size_of_a_model_with_free_sides(
    meta: dict[str, str], size: tuple[int, int]
) -> None:
    assert nominal_size(meta) == size


def test_to_tensor_channel_order_and_scale() -> None:
    canvas = np.zeros((2, 2, 3), np.uint8)
    canvas[..., 0] = 10  # B
    canvas[..., 2] = 200  # R
    yolox = to_tensor(canvas, "yolox")
    assert yolox[0, 0, 0] == 10 and yolox[2, 0, 0] == 200  # BGR, 0-255
    ultra = to_tensor(canvas, "ultralytics")
    assert ultra[0, 0, 0] == pytest.approx(200 / 255) and ultra[2, 0, 0] == pytest.approx(10 / 255)


def test_nms_is_per_class_and_filters() -> None:
    lb = Letterbox(1.0, 0.0, 0.0)
    boxes = np.array(
        [[0, 0, 100, 100], [2, 2, 102, 102], [0, 0, 100, 100], [300, 300, 350, 350]], np.float32
    )
    scores = np.array([0.9, 0.8, 0.7, 0.1], np.float32)
    cls = np.array([2, 2, 0, 2], np.int32)
    det = postprocess(boxes, scores, cls, lb, (640, 480), 0.25, 0.45)
    # the overlapping car is suppressed, the person at the same place is kept, low score dropped
    assert sorted(det.class_id.tolist()) == [0, 2]
    assert det.confidence.max() == pytest.approx(0.9)
    keep = np.zeros(80, bool)
    keep[0] = True
    only_people = postprocess(boxes, scores, cls, lb, (640, 480), 0.25, 0.45, keep)
    assert only_people.class_id.tolist() == [0]


def test_boxes_are_clipped_to_image() -> None:
    det = postprocess(
        np.array([[-20, -5, 700, 500]], np.float32), np.array([0.9], np.float32),
        np.array([2], np.int32), Letterbox(1.0, 0, 0), (640, 480), 0.25, 0.45,
    )  # fmt: skip
    np.testing.assert_allclose(det.xyxy[0], [0, 0, 640, 480])


def test_layout_detection() -> None:
    from pathlib import Path

    assert _resolve_layout("auto", [1, 3549, 85], Path("m")) == "yolox"
    assert _resolve_layout("auto", [1, 84, 8400], Path("m")) == "ultralytics"
    assert _resolve_layout("ultralytics", [1, 5, 5], Path("m")) == "ultralytics"
    with pytest.raises(ModelError, match="cannot tell the output layout"):
        _resolve_layout("auto", [1, 25200, 15], Path("plate.onnx"))
