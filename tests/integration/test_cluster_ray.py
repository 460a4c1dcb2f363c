"""Cameras sharded over a local Ray cluster (driver + 2 worker actor processes) with real RTSP
cameras on loopback: placement by cost, a killed worker's cameras stream again elsewhere within
30 s, a configuration change reaches only the worker that runs the changed camera."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipeline.config import AppConfig, CameraConfig, parse_config
from tests.conftest import RtspServer, camera_dict, wait_for
from tests.integration.test_rtsp import FAST_INGEST

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.rtsp


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray.init(num_cpus=2, object_store_memory=80 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, configure_logging=False)  # fmt: skip
    yield
    ray.shutdown()


def _online(coord: Any) -> dict[str, str]:
    """camera → worker, for cameras reported online."""
    return {
        cid: wid
        for wid, cams in coord.health().items()
        for cid, state in cams.items()
        if state == "online"
    }


def test_cameras_move_when_a_worker_dies(
    ray_local: None,
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
) -> None:
    from pipeline.capacity import CameraCost, CostModel
    from pipeline.cluster import Coordinator

    server = rtsp_server({f"/c{i}": "test:160x120@5:5" for i in range(4)})
    cams = [
        camera_dict(id=f"cam{i}", url=server.url(f"/c{i}"), rules=[], zones=[]) for i in range(4)
    ]
    cfg = make_config(cams, ingest=FAST_INGEST)
    model = CostModel({"keyframes": CameraCost(0.03, 27), "throwing": CameraCost(0.27, 29)}, "test")
    coord = Coordinator(cfg, workers=2, cost_model=model)
    coord.start()
    try:
        assert wait_for(lambda: len(_online(coord)) == 4, 40, interval_s=0.5)
        placed = _online(coord)
        assert sorted(set(placed.values())) == ["w1", "w2"]
        assert sorted(placed.values()).count("w1") == 2  # equal cost: two each

        # a configuration change of cam0 reaches only its worker; the other keeps its list
        victim = placed["cam0"]
        other = "w2" if victim == "w1" else "w1"
        other_cams = dict(coord.workers[other].cameras)
        raw0 = cams[0] | {"name": "改名"}
        changed = parse_config({"cameras": [raw0]}).cameras[0]
        coord.update([changed if c.id == "cam0" else c for c in cfg.cameras])
        assert coord.workers[other].cameras == other_cams
        assert (
            CameraConfig.model_validate_json(coord.workers[victim].cameras["cam0"]).name == "改名"
        )

        # kill the worker running cam0: its cameras stream again on a replacement within 30 s
        moved = {c for c, w in placed.items() if w == victim}
        ray.kill(coord.workers[victim].actor)  # asynchronous: the next ping may still answer
        found: list[str] = []
        assert wait_for(lambda: bool(found.extend(coord.check()) or found), 20, 0.5)
        assert found == [victim]
        assert victim not in coord.workers and len(coord.workers) == 2
        assert wait_for(lambda: set(_online(coord)) == {f"cam{i}" for i in range(4)}, 30, 0.5)
        after = _online(coord)
        assert all(after[c] != victim for c in moved)
        assert {c: w for c, w in after.items() if c not in moved} == {
            c: w for c, w in placed.items() if c not in moved
        }  # the survivors' cameras did not move
        assert {m[1] for m in coord.moves if m[2] == victim} == moved
    finally:
        coord.stop()
