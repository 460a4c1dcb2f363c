"""Push alerts through apprise to a real JSON receiver on 127.0.0.1: sent when a case opens,
with the snapshot attached and a link, scoped, rate-limited per camera, retried when the
receiver is down, and never sent to webhook subscribers before review."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from pipeline.casework.cases import CaseService
from pipeline.casework.outbox import Outbox
from pipeline.config import AlertTarget, CasesConfig
from pipeline.store.repository import EventRow, EventStore
from pipeline.types import EventType
from tests.http_receiver import LocalReceiver
from tests.unit.test_cases import MON_9, VirtualClock, store_event

TZ = ZoneInfo("Asia/Shanghai")


class Phone:
    """What an apprise ``json://`` target posts: title, message, attachments (base64)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.down = False
        self.http = LocalReceiver(self.answer)
        self.url = f"json://127.0.0.1:{self.http.port}/alert"

    def answer(self, body: bytes, headers: Any) -> int:
        if self.down:
            return 503
        self.got.append(json.loads(body))
        return 200


@pytest.fixture
def phone() -> Iterator[Phone]:
    p = Phone()
    yield p
    p.http.close()


def opened(store: EventStore, cases: CaseService, event_id: str, at: float, snap: str,
           **kw: Any) -> EventRow:  # fmt: skip
    """A stored event whose report names a grid and an alert snapshot, and its case."""
    row = store_event(store, event_id, at, **kw)
    report = {"report_id": event_id, "title_zh": f"{row.camera_id}：占用消防通道",
              "summary_zh": "消防通道被占用 5 分钟", "title_en": "cam1: Fire-lane occupation",
              "location": {"grids": [{"scheme": "local", "code": "G-01"}]},
              "evidence": [{"name": "alert", "relpath": snap}]}  # fmt: skip
    ev = store.get_event(event_id)
    assert ev is not None
    with store.transaction() as db:
        db.execute("UPDATE events SET report_json = ? WHERE event_id = ?",
                   (json.dumps(report), event_id))  # fmt: skip
    cases.on_event(row)
    return row


def test_a_new_case_alerts_the_phone_once_per_camera_and_retries(
    tmp_path: Path, phone: Phone
) -> None:
    store = EventStore(tmp_path / "g.db")
    clock = VirtualClock(MON_9)
    snap = tmp_path / "alert.jpg"
    cv2.imwrite(str(snap), np.full((90, 160, 3), 80, np.uint8))
    targets = [
        AlertTarget(id="duty", url_env="DUTY_URL", link_base="https://grid.example.cn/ui/#/case/"),
        AlertTarget(id="other_grid", url_env="OTHER_URL", grid_codes=["G-99"]),
        AlertTarget(id="bins_only", url_env="BINS_URL", event_types=["bin_overflow"]),
    ]
    urls = {"duty": phone.url, "other_grid": phone.url, "bins_only": phone.url}
    outbox = Outbox(store, [], {}, TZ, clock, alerts=targets, alert_urls=urls,
                    attachment=lambda rel: tmp_path / rel)  # fmt: skip
    cases = CaseService(store, CasesConfig(), TZ, clock, enqueue=outbox.enqueue)
    opened(store, cases, "e1", MON_9, "alert.jpg")
    assert outbox.deliver_due().delivered == 1  # in scope: only "duty"
    (msg,) = phone.got
    assert msg["title"] == "【紧急】cam1：占用消防通道"
    assert (
        "消防通道被占用" in msg["message"]
        and "https://grid.example.cn/ui/#/case/" in msg["message"]
    )
    (picture,) = msg["attachments"]
    assert base64.b64decode(picture["base64"])[:2] == b"\xff\xd8"  # the snapshot, a JPEG
    # a second case at the same camera 20 s later (another zone): no second alert
    clock.advance(20)
    opened(store, cases, "e2", MON_9 + 20, "alert.jpg", zone="lane2")
    assert outbox.deliver_due().attempted == 0
    # another camera: alerted; while the phone's server is down it is retried, not lost
    phone.down = True
    opened(store, cases, "e3", MON_9 + 20, "alert.jpg", camera="cam2")
    assert outbox.deliver_due().failed == 1
    phone.down = False
    clock.advance(60)
    assert outbox.deliver_due().delivered == 1
    assert len(phone.got) == 2
    # nothing for the review of a case goes to an alert target
    assert all(r.kind == "alert" for r in outbox.rows())


def test_a_bad_apprise_url_is_dead_lettered_at_once(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "g.db")
    clock = VirtualClock(MON_9)
    outbox = Outbox(store, [], {}, TZ, clock,
                    alerts=[AlertTarget(id="duty", url_env="DUTY_URL")],
                    alert_urls={"duty": "nosuchservice://x"})  # fmt: skip
    cases = CaseService(store, CasesConfig(), TZ, clock, enqueue=outbox.enqueue)
    opened(store, cases, "e1", MON_9, "none.jpg", etype=EventType.FIRE_LANE_OCCUPATION)
    assert outbox.deliver_due().dead == 1
    (row,) = outbox.rows()
    assert row.state == "dead" and "apprise" in (row.last_error or "")
