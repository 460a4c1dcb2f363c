"""A camera's own detector (``[[cameras]] model``): loaded once per file, its frames routed to it,
its reports naming it, a change refused while running, a missing file named."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.config import AppConfig
from pipeline.detect.inference import OnnxFrameDetector
from pipeline.errors import ConfigError
from pipeline.ingest.media import encode_h264
from pipeline.ops.compose import pipeline
from pipeline.types import Frame
from tests.conftest import REPO, camera_dict


def _frame(camera_id: str) -> Frame:
    image = np.zeros((240, 320, 3), np.uint8)
    return Frame(camera_id, 0, 1, 0.0, 0.0, image, (320, 240), True)


def test_frames_go_to_their_cameras_model(
    tmp_path: Path, make_config: Callable[..., AppConfig]
) -> None:
    other = tmp_path / "overhead.onnx"
    shutil.copyfile(REPO / "models" / "yolox_nano.onnx", other)
    own: dict[str, Any] = {"path": str(other)}
    video = encode_h264(tmp_path / "v.mp4", (np.zeros((96, 128, 3), np.uint8) for _ in range(20)),
                        fps=10, gop=10)  # fmt: skip
    cams = [camera_dict(id=c, url=str(video), loop=True) for c in ("cam1", "cam2", "cam3")]
    cams[1]["model"] = cams[2]["model"] = own
    cfg = make_config(cams)
    rt = pipeline(cfg).runtime
    det = rt.detector
    assert isinstance(det, OnnxFrameDetector)
    assert det.by_camera["cam2"] is det.by_camera["cam3"]  # one loaded copy per file
    assert det.by_camera["cam2"] is not det.model and "cam1" not in det.by_camera
    assert rt.model is not None and rt.model.name == "yolox_nano"
    assert rt.camera_models["cam2"].name == "overhead"
    assert rt.camera_models["cam2"].sha256 == rt.model.sha256  # same bytes, another file
    out = det.detect([_frame("cam2"), _frame("cam1"), _frame("cam3")])
    assert len(out) == 3

    # a running camera cannot switch models: that needs a restart
    moved = cfg.cameras[0].model_copy(update={"model": cfg.cameras[1].model})
    rt.start()
    try:
        with pytest.raises(ConfigError) as err:
            rt.reconfigure([moved, cfg.cameras[1], cfg.cameras[2]])
    finally:
        rt.stop()
    assert "cam1" in err.value.issues[0].location and "restart" in err.value.issues[0].message


def test_a_missing_camera_model_is_named(
    tmp_path: Path, make_config: Callable[..., AppConfig]
) -> None:
    cfg = make_config([camera_dict(id="pole7", model={"path": str(tmp_path / "nope.onnx")})])
    with pytest.raises(ConfigError) as err:
        pipeline(cfg)
    assert any("pole7" in i.location and "model" in i.location for i in err.value.issues)
