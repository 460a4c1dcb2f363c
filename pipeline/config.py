"""``cameras.toml``: pydantic models, cross-field checks and error reporting for integrators.

Every model forbids unknown keys and is frozen: derived runtime data (pixel polygons, resolved
URLs) lives in other objects, never on the config. ``load_config`` collects *all* problems and
raises one ``ConfigError`` whose issues name the camera id and the field path, so that
``gridsight check`` can print them together and a bad file never starts half a pipeline.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, time
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.codes import Severity
from pipeline.config_base import (
    ID_PATTERN as ID_PATTERN,
    MAX_POLYGON_POINTS as MAX_POLYGON_POINTS,
    WEEKDAYS as WEEKDAYS,
    Base as Base,
    Coord as Coord,
    FacadeConfig as FacadeConfig,
    Point as Point,
    PositiveMetres as PositiveMetres,
    RuleBase as RuleBase,
    ScheduleWindow as ScheduleWindow,
    Weekday as Weekday,
    ZoneConfig as ZoneConfig,
    ZoneKind as ZoneKind,
    resolve_under,
    unpaired_surrogate as unpaired_surrogate,
    whole_step as whole_step,
)
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.ingest.hwdecode import DEVICE_TYPES
from pipeline.rules.registry import RuleConfig as RuleConfig

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Query parameters that carry credentials (Hikvision/Dahua/ONVIF gateways, signed URLs).
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential|session", re.IGNORECASE)
# GB/T 2260 province-level prefixes (first two digits of an administrative division code).
_PROVINCES = frozenset((
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
))  # fmt: skip


MAX_ZONES = 64
MAX_FACADES = 16
# An SLA longer than 90 days is a typo (and would walk the working-hours calendar for years).
MAX_SLA_MIN = 90 * 24 * 60.0


def validate_gb28181_id(value: str) -> str:
    """Check a GB/T 28181 20-digit device/channel id; raise ValueError saying what is wrong.

    Layout: centre code (8, GB/T 2260 division padded with 0) + industry (2) + type (3) +
    network (1) + serial (6).
    """
    if not re.fullmatch(r"[0-9]{20}", value):
        raise ValueError(f"must be exactly 20 digits (GB/T 28181), got {value!r}")
    if value[:2] not in _PROVINCES:
        raise ValueError(
            f"{value!r} starts with {value[:2]!r}, which is not a GB/T 2260 province code"
        )
    type_code = int(value[10:13])
    if type_code < 111:
        raise ValueError(
            f"{value!r} has type code {value[10:13]} (digits 11-13); device types start at 111 "
            "(e.g. 131 camera, 132 IPC, 118 NVR)"
        )
    return value


def aspect_fraction(value: str) -> Fraction:
    """``"4:3"`` as 4/3."""
    w, h = value.split(":")
    return Fraction(int(w), int(h))


def _digits(value: str | None, n: int, what: str) -> str | None:
    if value is not None and not re.fullmatch(rf"[0-9]{{{n}}}", value):
        raise ValueError(f"{what} must be {n} digits, got {value!r}")
    return value


class SiteConfig(Base):
    """Who runs this installation and where (copied into every report)."""

    name: str = "gridsight"
    system_id: str = Field(default="gridsight", pattern=ID_PATTERN)
    timezone: str = "Asia/Shanghai"
    admin_division_code: str | None = None  # GB/T 2260, 6 digits (county level)
    street_code: str | None = None  # 9 digits
    community_code: str | None = None  # 12 digits

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            shown = v if len(v) <= 64 else v[:64] + "…"
            raise ValueError(f"unknown IANA time zone {shown!r} (e.g. 'Asia/Shanghai')") from None
        return v

    @field_validator("admin_division_code")
    @classmethod
    def _adm(cls, v: str | None) -> str | None:
        return _digits(v, 6, "admin_division_code")

    @field_validator("street_code")
    @classmethod
    def _street(cls, v: str | None) -> str | None:
        return _digits(v, 9, "street_code")

    @field_validator("community_code")
    @classmethod
    def _community(cls, v: str | None) -> str | None:
        return _digits(v, 12, "community_code")


Provider = Literal["cuda", "tensorrt", "openvino", "cpu"]


def _cpu_only() -> list[Provider]:
    return ["cpu"]


class ModelConfig(Base):
    """The COCO detector shared by every camera (and the optional bins classifier)."""

    path: Path = Path("models/yolox_nano.onnx")
    # Output layout: YOLOX [1,N,85] raw grid, Ultralytics [1,84,N]; "auto" reads the shape.
    layout: Literal["auto", "yolox", "ultralytics"] = "auto"
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    score_threshold: float = Field(default=0.25, ge=0.0, le=1.0)
    nms_iou: float = Field(default=0.45, gt=0.0, le=1.0)
    # onnxruntime defaults to one thread per core, which competes with decode threads.
    intra_op_threads: int = Field(default=1, ge=1, le=64)
    # Inference threads sharing the model; frames of one camera stay in order.
    workers: int = Field(default=2, ge=1, le=64)
    max_batch: int = Field(default=4, ge=1, le=64)
    # How long the worker waits for more cameras' frames before running a partial batch.
    batch_timeout_ms: float = Field(default=10.0, ge=0.0, le=1000.0)
    # Execution providers for the detector, in order of preference ("cuda", "tensorrt",
    # "openvino", "cpu"); ones this onnxruntime build lacks fall back to the CPU with a warning
    # (`gridsight check` lists what the build has). CPU only by default.
    providers: list[Provider] = Field(default_factory=_cpu_only, min_length=1)
    # 垃圾满溢 classifier (see models/MODEL_CARD.md); used by bins rules when the file exists.
    bins_classifier: Path = Path("models/bins_overflow.onnx")
    # 车牌识别 for parking evidence (see models/MODEL_CARD.md): the plate detector, and the
    # colour classifier (optional: without it reports carry no plate colour).
    plate_detector: Path = Path("models/y5fu_640x_sim.onnx")
    plate_colour: Path = Path("models/litemodel_cls_96x_r1.onnx")


class CameraModel(Base):
    """A camera's own COCO detector instead of ``[model] path`` (e.g. one that names cars
    seen from straight above); cameras naming the same file share one loaded copy."""

    path: Path
    layout: Literal["auto", "yolox", "ultralytics"] = "auto"
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class S3Config(Base):
    """Evidence in an S3-compatible bucket (``pipeline.evidence.storage``); credentials come
    from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or boto3's other sources."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    prefix: str = ""
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    region: str | None = None
    # large files (clips) are muxed here, then uploaded whole and removed
    staging_dir: Path = Path("evidence-staging")


class EvidenceConfig(Base):
    # the evidence files (unless ``s3`` is set), the SQLite store and exported packages
    root: Path = Path("evidence")
    s3: S3Config | None = None
    pre_roll_s: float = Field(default=10.0, ge=0.0, le=120.0)
    post_roll_s: float = Field(default=5.0, ge=0.0, le=120.0)
    jpeg_quality: int = Field(default=85, ge=30, le=100)
    # Writer threads; each camera's events always go to the same one (they stay in order).
    writers: int = Field(default=2, ge=1, le=16)


class StoreConfig(Base):
    """Where events, cases, the outbox and the audit log live. Default: SQLite in the evidence
    root, for one host. Workers on several hosts share a PostgreSQL server: ``url`` is its
    ``postgresql://user@host:port/db``; the password comes from PGPASSWORD or ~/.pgpass, never
    from this file, which integrators copy around."""

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _postgres(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (leave it out for SQLite)")
        parts = urlsplit(v)
        if parts.password is not None:
            raise ValueError(
                "must not contain a password: set PGPASSWORD or ~/.pgpass for the service user"
            )
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("needs a host and a database name: postgresql://user@host/db")
        return v


class IngestConfig(Base):
    """Stream handling defaults for every camera."""

    open_timeout_s: float = Field(default=10.0, gt=0.0)
    read_timeout_s: float = Field(default=10.0, gt=0.0)
    backoff_initial_s: float = Field(default=1.0, gt=0.0)
    backoff_max_s: float = Field(default=60.0, gt=0.0)
    # Backoff returns to its initial value after the stream has been healthy this long.
    backoff_reset_after_s: float = Field(default=60.0, gt=0.0)
    # No frame for this long on an open stream: health goes STALLED.
    stall_after_s: float = Field(default=5.0, gt=0.0)
    # An outage shorter than this is not recorded as a camera_offline event.
    offline_event_after_s: float = Field(default=15.0, ge=0.0)
    # Maximum width of the images handed to analyzers, converted once by swscale at a whole-
    # number ratio of the native width (1080p → 960×540); 0 keeps native.
    analysis_width: int = Field(default=1280, ge=0, le=7680)
    # Packets kept beyond pre/post roll, so that a slow writer still finds its pre-roll.
    ring_slack_s: float = Field(default=20.0, ge=0.0)
    queue_size: int = Field(default=2, ge=1, le=64)
    # Decode on a hardware video engine, by FFmpeg device type ("cuda": NVIDIA NVDEC, "vaapi":
    # Intel/AMD on Linux, "qsv": Intel Quick Sync, …); unset: the CPU. A camera whose device
    # cannot decode decodes on the CPU and says why (health ``decoder``, ``gridsight check``).
    hwaccel: str | None = None
    # Which device of that type: a DRI render node ("/dev/dri/renderD128") or a GPU index.
    hwaccel_device: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("hwaccel")
    @classmethod
    def _hwaccel(cls, v: str | None) -> str | None:
        if v is not None and v not in DEVICE_TYPES:
            raise ValueError(f"{v!r} is not a hardware decoder; one of {', '.join(DEVICE_TYPES)}")
        return v


class GateConfig(Base):
    """Skip detection on keyframes that did not change inside the zones
    (see pipeline.detect.gate)."""

    enabled: bool = True
    # Grey-level difference (0-255, brightness-normalised) that counts as a changed pixel.
    pixel_delta: float = Field(default=12.0, gt=0.0, le=255.0)
    # Fraction of the zones' thumbnail that must change; lower = detect more often.
    min_changed_fraction: float = Field(default=0.003, gt=0.0, le=1.0)
    # Detect at least this often even in a perfectly still scene.
    max_skip_s: float = Field(default=20.0, gt=0.0)
    # Keyframe cameras: while the zones stand still, decode a keyframe only this often; a
    # change decodes every keyframe again and recovers the skipped one where it began
    # (pipeline.ingest.still; README "Still-scene decoding"). Never sparser than a camera's
    # rules can use (Analyzer.max_frame_gap_s: vending none, parking a third of its dwell
    # and half its max_gap_s). 0: every keyframe.
    still_decode_interval_s: float = Field(default=6.0, ge=0.0, le=60.0)


class IntegrityConfig(Base):
    """Camera turned, covered or defocused (see pipeline.rules.integrity); thresholds measured
    with benchmarks/integrity.py on the development clips."""

    enabled: bool = True
    every_s: float = Field(default=4.0, gt=0.0, le=600.0)  # stream seconds between checks
    # A departure from the reference must last this long to be an event (and the view must
    # be back this long for the event to end by itself).
    hold_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    min_match: float = Field(default=0.45, gt=0.0, lt=1.0)  # share of reference edges in place
    occluded_detail: float = Field(default=0.3, gt=0.0, lt=1.0)  # gradient energy / reference
    defocus_sharpness: float = Field(default=0.6, gt=0.0, lt=1.0)  # relative Laplacian energy
    # A global shift of the view this large (share of its width; 1 % ≈ 0.6° of pan at a 60°
    # field of view), found this surely (phase-correlation peak), is a turned camera.
    min_shift: float = Field(default=0.0125, gt=0.0, lt=1.0)
    min_shift_response: float = Field(default=0.1, gt=0.0, le=1.0)
    # The reference is renewed when the view matches it this well, at most this often.
    renew_match: float = Field(default=0.7, gt=0.0, le=1.0)
    renew_s: float = Field(default=600.0, gt=0.0)


class ApiConfig(Base):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Bearer tokens with roles (``gridsight token create``). Off only for a single-user
    # machine: then every request is treated as admin.
    auth: bool = True
    # A token stops working this long after it was made (renew with ``token create``).
    token_ttl_days: float = Field(default=90.0, gt=0.0, le=3650.0)
    # Failed authentications from one client address before it is refused for a while.
    max_auth_failures: int = Field(default=10, ge=1, le=10000)
    lockout_s: float = Field(default=300.0, gt=0.0, le=86400.0)
    # Largest request body accepted (zone geometry is the biggest legitimate one).
    max_body_bytes: int = Field(default=1_000_000, ge=10_000, le=100_000_000)
    # A browser session (name + password sign-in) ends this long after it began.
    session_ttl_h: float = Field(default=12.0, gt=0.0, le=720.0)
    # Single sign-on through a login proxy (oauth2-proxy, Authelia, …): requests from these
    # addresses may name the signed-in user in ``proxy_user_header``; the user must exist
    # (``gridsight user add``), and their role and scope come from here, not from the proxy.
    trusted_proxies: list[str] = Field(default_factory=list)
    proxy_user_header: str = Field(default="X-Forwarded-User", pattern=r"^[A-Za-z0-9-]+$")

    def exposure_warning(self) -> str | None:
        """Why this API setting is dangerous, or None."""
        if not self.auth and self.host not in ("127.0.0.1", "::1", "localhost"):
            return (
                f"api.auth = false with host = {self.host!r}: anyone who can reach port "
                f"{self.port} is admin (sees every camera, exports evidence); bind to "
                "127.0.0.1 or turn auth on"
            )
        return None


# Directories of the evidence root that are not a camera's (a camera with such an id would
# share its directory with exported packages or case pictures).
RESERVED_DIRS = frozenset({"exports", "cases"})


class CameraConfig(Base):
    id: str = Field(pattern=ID_PATTERN)

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_DIRS:
            raise ValueError(f"{v!r} is reserved (a directory of the evidence root)")
        return v

    name: str = Field(max_length=100)
    # rtsp://, file path or file:// URL; credentials as ${ENV_VAR} placeholders only.
    url: str
    transport: Literal["tcp", "udp"] = "tcp"
    enabled: bool = True
    loop: bool = False  # files only: start again at the end (demos)
    # Files only: pace reading at the stream's frame rate like a live camera.
    realtime: bool = True
    decode: Literal["auto", "keyframes", "sampled", "full"] = "auto"
    sample_fps: float = Field(default=2.0, gt=0.0, le=60.0)
    # Skip H.264's in-loop deblocking filter when decoding (~20 % of decode time). Unset: on
    # for cameras whose only rules are 高空抛物, whose decoded pictures feed motion
    # differencing and snapshots only (evidence clips are the camera's own packets, untouched);
    # detectors always get fully decoded pictures.
    skip_deblocking: bool | None = None
    # The picture's shape as a monitor shows it ("4:3", "16:9"), for a recorder channel that
    # stores non-square samples (D1 704 × 576, CIF) without saying so: the analyzers, the
    # façade snapshot and the evidence clip then see the scene in its true proportions, which
    # the 高空抛物 camera fit needs. Unset: as the stream signals (square if it says nothing).
    display_aspect: str | None = Field(default=None, pattern=r"^[1-9][0-9]{0,2}:[1-9][0-9]{0,2}$")

    @field_validator("display_aspect")
    @classmethod
    def _aspect(cls, v: str | None) -> str | None:
        if v is not None and not 0.25 <= aspect_fraction(v) <= 4:
            raise ValueError(f"{v!r} is not a picture shape (width:height between 1:4 and 4:1)")
        return v

    # Camera integrity checks (moved, covered, defocused); off for e.g. a patrolling PTZ.
    integrity: bool = True
    gb28181_device_id: str | None = None
    gb28181_channel_id: str | None = None
    grid_code: str | None = Field(default=None, max_length=32)
    community_code: str | None = None
    address: str | None = Field(default=None, max_length=256)
    context: Literal["road", "pavement", "compound_interior", "fire_lane"] | None = None
    model: CameraModel | None = None  # this camera's detector; default: [model] path
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=MAX_ZONES)
    facades: list[FacadeConfig] = Field(default_factory=list, max_length=MAX_FACADES)
    rules: list[RuleConfig] = Field(default_factory=list)

    @field_validator("gb28181_device_id", "gb28181_channel_id")
    @classmethod
    def _gb(cls, v: str | None) -> str | None:
        return None if v is None else validate_gb28181_id(v)

    @field_validator("community_code")
    @classmethod
    def _community(cls, v: str | None) -> str | None:
        return _digits(v, 12, "community_code")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(_PLACEHOLDER.sub("x", v))
        if parts.scheme in ("rtsp", "rtsps", "file", "") or len(parts.scheme) == 1:
            literal = [k for k, val in parse_qsl(parts.query, keep_blank_values=True)
                       if _SECRET_KEY.search(k) and val != "x"]  # fmt: skip
            if (parts.password and parts.password != "x") or literal:
                where = f"query parameter {literal[0]!r}" if literal else "password"
                raise ValueError(
                    f"the URL contains a literal {where}; write it as ${{ENV_VAR}} so it never "
                    "lands in the config file or in logs"
                )
            return v
        raise ValueError(f"unsupported scheme {parts.scheme!r}; use rtsp://, rtsps:// or a file")

    @model_validator(mode="after")
    def _cross(self) -> CameraConfig:
        problems = [
            *verify_unique_ids([z.id for z in self.zones], "zones"),
            *verify_unique_ids([r.id for r in self.rules], "rules"),
            *verify_unique_ids([f.id for f in self.facades], "facades"),
            *verify_rule_zones(self),
            *verify_facades(self),
        ]
        if self.decode == "keyframes":
            problems.extend(
                f"decode: 'keyframes' decodes one frame a GOP, and rules[{i}] ({rule.id}) "
                "follows motion in every frame; use 'auto' (or 'sampled', 'full')"
                for i, rule in enumerate(self.rules)
                if rule.NEEDS_EVERY_FRAME
            )
        if self.loop and self.is_rtsp:
            problems.append("loop: only files can loop; an RTSP camera reconnects instead")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_rtsp(self) -> bool:
        return self.url.lower().startswith(("rtsp://", "rtsps://"))

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    def __repr_args__(self) -> Any:
        # Keep even placeholder-free URLs out of reprs: query strings can carry tokens.
        for key, value in super().__repr_args__():
            yield key, (redact_url(value) if key == "url" else value)


def verify_unique_ids(ids: Sequence[str], what: str) -> list[str]:
    counts = Counter(ids)
    return [f"{what}: duplicate id {d!r}" for d in sorted(k for k, n in counts.items() if n > 1)]


def verify_rule_zones(camera: CameraConfig) -> list[str]:
    """Every rule's zones exist and have a kind that rule understands; a rule has ≥ 1 zone."""
    by_id = {z.id: z for z in camera.zones}
    problems: list[str] = []
    for i, rule in enumerate(camera.rules):
        if rule.USES_FACADES:
            continue  # its zones are reached through façades (verify_facades)
        kinds = rule.ZONE_KINDS
        wanted = ", ".join(sorted(kinds))
        names = rule.zone_ids()
        if names is None:
            if not any(z.kind in kinds for z in camera.zones):
                problems.append(f"rules[{i}] ({rule.id}): no zone of kind {wanted} on this camera")
            continue
        for name in names:
            zone = by_id.get(name)
            if zone is None:
                problems.append(f"rules[{i}].zones: unknown zone {name!r}")
            elif zone.kind not in kinds:
                problems.append(
                    f"rules[{i}].zones: zone {name!r} is {zone.kind}, "
                    f"{rule.analyzer} needs {wanted}"
                )
    return problems


def verify_facades(camera: CameraConfig) -> list[str]:
    """Façades point at facade zones; rules that watch façades have façades to watch."""
    zones = {z.id: z for z in camera.zones}
    facades = {f.id for f in camera.facades}
    problems: list[str] = []
    for i, f in enumerate(camera.facades):
        zone = zones.get(f.zone)
        if zone is None:
            problems.append(f"facades[{i}].zone: unknown zone {f.zone!r}")
        elif zone.kind != ZoneKind.FACADE:
            problems.append(f"facades[{i}].zone: zone {f.zone!r} is {zone.kind}, needs facade")
    for i, rule in enumerate(camera.rules):
        if not rule.USES_FACADES:
            continue
        names = rule.facade_ids()
        if names is None and not camera.facades:
            problems.append(f"rules[{i}] ({rule.id}): no facades configured on this camera")
        problems.extend(
            f"rules[{i}].facades: unknown facade {name!r}"
            for name in names or []
            if name not in facades
        )
    return problems


# -- cases, delivery, retention (the grid-platform side) -----------------------------------


class SlaRule(Base):
    """Time limits for one event type (or ``"*"``, the fallback), in minutes.

    ``continuous`` clocks run around the clock (urgent types); ``working_hours`` clocks count
    only the calendar's working periods (工作时), skipping weekends and holidays.
    """

    event_type: str = Field(pattern=r"^(\*|[a-z_]+)$")
    clock: Literal["continuous", "working_hours"] = "continuous"
    review_min: float = Field(default=30.0, gt=0.0, le=MAX_SLA_MIN)
    respond_min: float = Field(default=360.0, gt=0.0, le=MAX_SLA_MIN)
    dispose_min: float = Field(default=1440.0, gt=0.0, le=MAX_SLA_MIN)
    # Automatic re-check after 处置: the camera watches the zone this long; 0 = a person closes.
    recheck_min: float = Field(default=10.0, ge=0.0, le=MAX_SLA_MIN)


def _default_sla() -> list[SlaRule]:
    r = SlaRule
    return [
        r(event_type="high_altitude_throwing", review_min=10, respond_min=30, dispose_min=120,
          recheck_min=0),
        r(event_type="fire_lane_occupation", review_min=10, respond_min=30, dispose_min=120),
        r(event_type="road_occupation_vending", respond_min=60, dispose_min=120),
        r(event_type="unlicensed_mobile_vending", respond_min=60, dispose_min=120),
        r(event_type="shop_front_spillover", clock="working_hours", respond_min=360,
          dispose_min=480),
        r(event_type="bin_overflow", clock="working_hours", respond_min=120, dispose_min=240),
        r(event_type="exposed_garbage", clock="working_hours", respond_min=120, dispose_min=240),
        r(event_type="accumulated_garbage", clock="working_hours", respond_min=360,
          dispose_min=960),
        r(event_type="illegal_parking_motor", respond_min=60, dispose_min=120),
        r(event_type="illegal_parking_non_motor", respond_min=60, dispose_min=120),
        r(event_type="*", respond_min=360, dispose_min=1440),
    ]  # fmt: skip


class WorkPeriod(Base):
    start: time
    end: time

    @model_validator(mode="after")
    def _order(self) -> WorkPeriod:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class WorkCalendar(Base):
    """Working periods for ``working_hours`` clocks; holidays and 调休 working days by date."""

    periods: list[WorkPeriod] = Field(
        default_factory=lambda: [
            WorkPeriod(start=time(8, 0), end=time(12, 0)),
            WorkPeriod(start=time(14, 0), end=time(18, 0)),
        ],
        min_length=1,
    )
    workdays: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)
    holidays: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)  # 调休: a weekend day worked


class Unit(Base):
    id: str = Field(pattern=ID_PATTERN)
    name: str  # 物业 / 社区 / 街道 …


class CasesConfig(Base):
    """Case lifecycle policy: escalation chain, SLA table, calendar, recurrence."""

    # Who is responsible at escalation level 0, 1, 2, …
    escalation: list[Unit] = Field(
        default_factory=lambda: [
            Unit(id="property", name="物业"),
            Unit(id="community", name="社区"),
            Unit(id="street", name="街道/城管"),
        ],
        min_length=1,
    )
    sla: list[SlaRule] = Field(default_factory=_default_sla)
    calendar: WorkCalendar = Field(default_factory=WorkCalendar)
    recurrence_days: float = Field(default=30.0, gt=0.0)
    hotspot_count: int = Field(default=3, ge=2)
    # Types pushed without human review; 高空抛物 never (行政处罚法 art. 41 logic).
    auto_report: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> CasesConfig:
        problems = verify_unique_ids([u.id for u in self.escalation], "escalation")
        types = [r.event_type for r in self.sla]
        if "*" not in types:
            problems.append('sla: needs a fallback rule with event_type = "*"')
        if len(set(types)) != len(types):
            problems.append("sla: an event_type is listed twice")
        if "high_altitude_throwing" in self.auto_report:
            problems.append("auto_report: high_altitude_throwing always needs human review")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def sla_for(self, event_type: str) -> SlaRule:
        by_type = {r.event_type: r for r in self.sla}
        return by_type.get(event_type) or by_type["*"]


class Subscriber(Base):
    """A receiver of case reports and status updates (grid platform, 物业 system, 城管)."""

    id: str = Field(pattern=ID_PATTERN)
    url: str = Field(pattern=r"^https?://")
    # Name of the environment variable holding the HMAC-SHA256 key (never in the file).
    secret_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    event_types: list[str] = Field(default_factory=lambda: ["*"])
    # Plates stay visible only for enforcement recipients (违停 cases to 交警/城管).
    unmasked_plates: bool = False
    max_attempts: int = Field(default=10, ge=1, le=1000)
    timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        # the HMAC key authenticates us; a password in the URL would sit in the file and logs
        parts = urlsplit(v)
        if parts.username or parts.password:
            raise ValueError("must not contain user:password@; the receiver checks our HMAC")
        secret = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)
                  if _SECRET_KEY.search(k)]  # fmt: skip
        if secret:
            raise ValueError(
                f"query parameter {secret[0]!r} looks like a credential; the receiver "
                "authenticates our pushes by their HMAC signature"
            )
        return v


def _all_severities() -> list[Severity]:
    return ["urgent", "normal"]


class AlertTarget(Base):
    """People told at once when a case opens (值班手机, 网格员群): WeCom, DingTalk, Feishu, email,
    … through the ``apprise`` library, with the snapshot attached and a link to the case.
    Retried and rate-limited through the outbox."""

    id: str = Field(pattern=ID_PATTERN)
    # Environment variable holding the apprise URL(s) (they carry the channel's tokens, so
    # never this file), e.g. ``wxteams://…``, ``dingtalk://…``, ``feishu://…``, ``mailtos://…``.
    url_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    event_types: list[str] = Field(default_factory=lambda: ["*"])
    severities: list[Severity] = Field(default_factory=_all_severities)
    grid_codes: list[str] = Field(default_factory=list)  # this scope only; empty: every grid
    cameras: list[str] = Field(default_factory=list)  # this scope only; empty: every camera
    # At most one alert per camera in this interval (a storm of cases is one alert, not 20).
    min_interval_s: float = Field(default=60.0, ge=0.0, le=86400.0)
    # Prefix of the link to a case in the UI, e.g. "https://grid.example.cn/ui/#/case/".
    link_base: str | None = Field(default=None, pattern=r"^https?://")
    max_attempts: int = Field(default=5, ge=1, le=100)
    timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)


# Zero or negative days would expire evidence (高空抛物 included) the moment a case closes.
RetentionDays = Annotated[float, Field(gt=0.0, le=36500.0)]


class RetentionConfig(Base):
    """Days evidence is kept after its case is closed or rejected (open cases: forever)."""

    default_days: RetentionDays = 30.0
    by_type: dict[str, RetentionDays] = Field(
        default_factory=lambda: {"high_altitude_throwing": 365.0}
    )
    # ``gridsight run`` applies the policy this often (0: only ``gridsight retention``).
    run_every_min: float = Field(default=60.0, ge=0.0, le=7 * 24 * 60.0)
    # Below this much free space on the evidence volume, media of finished cases go early,
    # oldest first (never an open case's; never the types listed below). None: off.
    min_free_gb: float | None = Field(default=None, gt=0.0, le=1_000_000.0)
    pressure_exempt: list[str] = Field(default_factory=lambda: ["high_altitude_throwing"])


class AppConfig(Base):
    site: SiteConfig = Field(default_factory=SiteConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    integrity: IntegrityConfig = Field(default_factory=IntegrityConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    cases: CasesConfig = Field(default_factory=CasesConfig)
    subscribers: list[Subscriber] = Field(default_factory=list)
    alerts: list[AlertTarget] = Field(default_factory=list)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cameras(self) -> AppConfig:
        problems = verify_unique_ids([c.id for c in self.cameras], "cameras")
        problems += verify_unique_ids(  # one outbox: a subscriber and an alert share ids
            [s.id for s in self.subscribers] + [a.id for a in self.alerts], "subscribers/alerts"
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def store_location(self, evidence_root: Path | None = None) -> Path | str:
        """The PostgreSQL URL, or the SQLite file in the evidence root."""
        return self.store.url or (evidence_root or self.evidence.root) / "gridsight.db"

    def camera(self, camera_id: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        known = ", ".join(c.id for c in self.cameras) or "none"
        raise ConfigError(
            [ConfigIssue(f"camera {camera_id!r}", f"not configured (known: {known})")]
        )


def redact_url(url: str) -> str:
    """The URL without user info and query string, safe for logs and API output."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme or len(parts.scheme) == 1:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


def resolve_url(camera: CameraConfig, env: Mapping[str, str]) -> str:
    """Fill ``${VAR}`` placeholders from ``env``. The result must never be logged."""
    missing = [name for name in placeholders(camera.url) if name not in env]
    if missing:
        raise ConfigError(
            [
                ConfigIssue(
                    f"camera {camera.id!r} → url",
                    f"environment variable(s) {', '.join(missing)} not set",
                )
            ]
        )
    return _PLACEHOLDER.sub(lambda m: env[m.group(1)], camera.url)


def _location(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    """Turn a pydantic error location into ``camera 'id' → zones[1].polygon``."""
    parts = [p for p in loc if p not in ("illegal_parking",)]
    prefix = ""
    if len(parts) >= 2 and parts[0] == "cameras" and isinstance(parts[1], int):
        cams = raw.get("cameras")
        cam_id: Any = None
        if isinstance(cams, list) and parts[1] < len(cams) and isinstance(cams[parts[1]], dict):
            cam_id = cams[parts[1]].get("id")
        prefix = f"camera {cam_id!r} (cameras[{parts[1]}])" if cam_id else f"cameras[{parts[1]}]"
        parts = parts[2:]
    path = ""
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else str(p))
    if prefix and path:
        return f"{prefix} → {path}"
    return prefix or path or "<file>"


def parse_config(raw: Mapping[str, Any], base_dir: Path | None = None) -> AppConfig:
    """Validate a parsed TOML document; relative paths are resolved against ``base_dir``."""
    try:
        cfg = AppConfig.model_validate(raw)
    except ValidationError as exc:
        issues = [
            ConfigIssue(
                _location(tuple(err["loc"]), raw),
                err["msg"].removeprefix("Value error, "),
            )
            for err in exc.errors()
        ]
        raise ConfigError(issues) from None
    if base_dir is None:
        return cfg
    return cfg.model_copy(
        update={
            "model": cfg.model.model_copy(
                update={
                    "path": resolve_under(base_dir, cfg.model.path),
                    "bins_classifier": resolve_under(base_dir, cfg.model.bins_classifier),
                    "plate_detector": resolve_under(base_dir, cfg.model.plate_detector),
                    "plate_colour": resolve_under(base_dir, cfg.model.plate_colour),
                }
            ),
            "evidence": cfg.evidence.model_copy(
                update={"root": resolve_under(base_dir, cfg.evidence.root)}
            ),
            "cameras": [
                c.model_copy(
                    update={
                        "url": _file_url_under(base_dir, c.url),
                        "rules": [r.with_paths_under(base_dir) for r in c.rules],
                        "model": None
                        if c.model is None
                        else c.model.model_copy(
                            update={"path": resolve_under(base_dir, c.model.path)}
                        ),
                    }
                )
                for c in cfg.cameras
            ],
        }
    )


def _file_url_under(base: Path, url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme and len(scheme) > 1:
        return url
    return str(resolve_under(base, Path(url)))


def load_config(path: Path) -> AppConfig:
    """Read and validate ``cameras.toml``; raise ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(path), f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(str(path), f"not valid TOML: {exc}")]) from None
    return parse_config(raw, base_dir=path.parent.resolve())


def check_runtime_requirements(cfg: AppConfig, env: Mapping[str, str] | None = None) -> None:
    """Checks that need the environment: credentials resolvable, model file present.

    Raises:
        ConfigError: listing every problem.
    """
    env = os.environ if env is None else env
    issues: list[ConfigIssue] = []
    for cam in cfg.cameras:
        if not cam.enabled:
            continue
        try:
            resolve_url(cam, env)
        except ConfigError as exc:
            issues.extend(exc.issues)
        if not cam.is_rtsp:
            path = Path(cam.url.removeprefix("file://"))
            if not path.exists():
                issues.append(ConfigIssue(f"camera {cam.id!r} → url", f"file {path} not found"))
        if cam.model is not None and cam.rules and not cam.model.path.is_file():
            issues.append(
                ConfigIssue(
                    f"camera {cam.id!r} → model.path", f"model file {cam.model.path} not found"
                )
            )
    if any(c.rules for c in cfg.cameras) and not cfg.model.path.is_file():
        issues.append(ConfigIssue("model.path", f"model file {cfg.model.path} not found"))
    needed = [(f"subscribers[{i}] ({s.id}) → secret_env", s.secret_env, "the HMAC key")
              for i, s in enumerate(cfg.subscribers)]  # fmt: skip
    needed += [(f"alerts[{i}] ({a.id}) → url_env", a.url_env, "the apprise URL")
               for i, a in enumerate(cfg.alerts)]  # fmt: skip
    issues += [
        ConfigIssue(where, f"environment variable {var} ({what}) is not set")
        for where, var, what in needed
        if not env.get(var)
    ]
    if issues:
        raise ConfigError(issues)
