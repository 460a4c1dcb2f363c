"""Evidence storage backends: a local directory and an S3-compatible bucket (moto's S3 server on
127.0.0.1, spoken to over HTTP by boto3). The same calls behave the same; a replayed event's
clip lands in the bucket with the hash the store recorded, and the API, the exporter and
retention work from there."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.config import ApiConfig, parse_config
from pipeline.evidence.storage import (
    EvidenceStorage,
    LocalStorage,
    S3Storage,
    StorageError,
    open_storage,
)
from tests.conftest import camera_dict, free_port

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "gridsight-evidence"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:
    """Credentials as an operator would give them: in the environment, not in the config."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "gridsight-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "gridsight-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "cn-north-1")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
        )
    return s3_endpoint


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> EvidenceStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "evidence")
    endpoint = request.getfixturevalue("s3_env")
    return S3Storage(BUCKET, staging_dir=tmp_path / "staging", endpoint_url=endpoint,
                     prefix=f"t{time.monotonic_ns()}")  # fmt: skip


def test_backends_behave_alike(storage: EvidenceStorage) -> None:
    size, digest = storage.put("cam1/20261123/e1/alert.jpg", b"\xff\xd8jpeg")
    assert (size, digest) == (6, hashlib.sha256(b"\xff\xd8jpeg").hexdigest())
    with storage.open("cam1/20261123/e1/alert.jpg") as fh:
        assert fh.read() == b"\xff\xd8jpeg"
    staged = storage.staging("cam1/20261123/e1/clip.mp4")
    staged.write_bytes(b"m" * 300_000)
    assert storage.commit("cam1/20261123/e1/clip.mp4") == (
        300_000, hashlib.sha256(b"m" * 300_000).hexdigest()
    )  # fmt: skip
    assert storage.exists("cam1/20261123/e1/clip.mp4")
    assert storage.size("cam1/20261123/e1/clip.mp4") == 300_000
    assert storage.size("cam1/none.mp4") is None
    with storage.open_range("cam1/20261123/e1/clip.mp4", 10, 19) as fh:
        assert fh.read() == b"m" * 10
    assert storage.delete("cam1/20261123/e1/clip.mp4")
    assert not storage.exists("cam1/20261123/e1/clip.mp4")
    assert not storage.delete("cam1/20261123/e1/clip.mp4")
    with pytest.raises(StorageError, match="cannot be read"):
        storage.open("cam1/none.jpg")
    for bad in ("../outside.jpg", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(StorageError, match="not a plain relative path"):
            storage.put(bad, b"x")


def test_s3_config_is_checked() -> None:
    cfg = parse_config(
        {"evidence": {"s3": {"bucket": BUCKET, "endpoint_url": "http://minio:9000"}}}
    )
    assert cfg.evidence.s3 is not None and cfg.evidence.s3.bucket == BUCKET
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"evidence\.s3\.bucket"):
        parse_config({"evidence": {"s3": {"bucket": "Bad_Bucket"}}})
    with pytest.raises(ConfigError, match="secret"):  # credentials are not config
        parse_config({"evidence": {"s3": {"bucket": BUCKET, "secret_key": "x"}}})


def test_replayed_event_evidence_in_a_bucket(s3_env: str, tmp_path: Path) -> None:
    from pipeline.casework.cases import Action
    from pipeline.casework.package import verify_package
    from pipeline.casework.retention import Expired, purge
    from pipeline.evidence.report import ModelIdentity
    from pipeline.ops import compose
    from pipeline.ops.replay import replay
    from pipeline.store.repository import EventQuery, EventStore
    from tests.integration.test_replay import SCENE, START
    from tests.media import ScriptedDetector, write_h264

    s3: dict[str, Any] = {"bucket": BUCKET, "endpoint_url": s3_env, "prefix": "site-a",
                          "staging_dir": str(tmp_path / "staging")}  # fmt: skip
    out = tmp_path / "out"
    cfg = parse_config({
        "cameras": [camera_dict(url="/dev/null")],
        "evidence": {"root": str(out), "pre_roll_s": 5, "post_roll_s": 3, "s3": s3},
        "site": {"admin_division_code": "330106"},
    })  # fmt: skip
    replay(write_h264(tmp_path / "scene.mp4", SCENE), cfg, "cam1", out, start_time_s=START,
           detector=ScriptedDetector(SCENE), model_identity=ModelIdentity("scripted", "0" * 64),
           progress=False)  # fmt: skip
    store = EventStore(out / "gridsight.db")
    [row], _ = store.query_events(EventQuery(event_type="fire_lane_occupation"))
    files = store.evidence_for(row.event_id)
    assert {n for n, _, _ in files} >= {"clip", "alert"}
    client = boto3.client("s3", endpoint_url=s3_env)
    for _, rel, digest in files:  # in the bucket, whole, with the recorded hash
        body = client.get_object(Bucket=BUCKET, Key=f"site-a/{rel}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest
        assert not (out / rel).exists()  # nothing kept on the local disk
    assert not any(p.is_file() for p in (tmp_path / "staging").rglob("*"))  # staging emptied

    clip_sha = next(d for n, _, d in files if n == "clip")
    site = compose.installation(cfg.model_copy(update={"api": ApiConfig(auth=False)}), root=out,
                                store=store)  # fmt: skip
    app = compose.api(site)
    api = TestClient(app)
    r = api.get(f"/events/{row.event_id}/clip.mp4")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(r.content).hexdigest() == clip_sha
    whole = r.content
    # a browser seeking in the clip: byte ranges straight from the bucket
    part = api.get(f"/events/{row.event_id}/clip.mp4", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == whole[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    tail = api.get(f"/events/{row.event_id}/clip.mp4", headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == whole[-64:]
    beyond = api.get(f"/events/{row.event_id}/clip.mp4",
                     headers={"Range": f"bytes={len(whole)}-"})  # fmt: skip
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(whole)}"

    cases, storage = site.cases, site.storage
    case = cases.on_event(row)
    assert case is not None
    cases.act(case.case_id, Action.ACCEPT, "op1")
    pkg = site.exporter.export(
        case.case_id, tmp_path / "pkg", actor="analyst1", purpose="test", shared=False
    )
    assert verify_package(pkg.path, None).ok
    assert not list(tmp_path.glob(".pkg.fetch"))  # fetched copies removed

    expired = [
        Expired(row.event_id, row.event_type, case.case_id, tuple((r, d) for _, r, d in files))
    ]
    assert purge(store, storage, expired, time.time()) == len(files)
    assert all(not storage.exists(rel) for _, rel, _ in files)


def test_unreachable_bucket_is_a_clear_error(tmp_path: Path, s3_env: str) -> None:
    s3 = {"bucket": "no-such-bucket", "endpoint_url": s3_env, "staging_dir": str(tmp_path)}
    storage = open_storage(parse_config({"evidence": {"s3": s3}}).evidence)
    with pytest.raises(StorageError, match="cannot store evidence s3://no-such-bucket"):
        storage.put("a/b.jpg", b"x")


def test_byte_ranges_are_parsed_like_http_says() -> None:
    from api.routes.events import byte_range

    assert byte_range(None, 1000) is None
    assert byte_range("bytes=0-99", 1000) == (0, 99)
    assert byte_range("bytes=900-", 1000) == (900, 999)
    assert byte_range("bytes=990-5000", 1000) == (990, 999)  # clipped to the file
    assert byte_range("bytes=-10", 1000) == (990, 999)
    assert byte_range("bytes=-5000", 1000) == (0, 999)
    assert byte_range("bytes=1000-", 1000) == (-1, -1)  # unsatisfiable
    assert byte_range("bytes=5-2", 1000) == (-1, -1)
    assert byte_range("bytes=0-1,5-6", 1000) is None  # several ranges: the whole file
    assert byte_range("items=0-1", 1000) is None
    assert byte_range("bytes=x-y", 1000) is None
