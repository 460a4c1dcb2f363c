"""``gridsight`` command line: check, run, replay, serve, demo, token, export, verify,
retention."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import (
    AppConfig,
    CameraConfig,
    FacadeConfig,
    check_runtime_requirements,
    load_config,
)
from pipeline.errors import ConfigError, PipelineError
from pipeline.store.db import StoreIntegrityError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pipeline.ops.cluster import Spawn
    from pipeline.ops.compose import Installation
    from pipeline.types import CameraChanges

logger = logging.getLogger("gridsight")
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s",
    )


def _load(path: Path) -> AppConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        _print_issues(path, exc)
        return None


def _print_issues(path: Path, exc: ConfigError) -> None:
    print(f"{path}: {len(exc.issues)} problem(s)", file=sys.stderr)
    for issue in exc.issues:
        print(f"  ✗ {issue}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    if args.path is not None and args.config is not None and args.path != args.config:
        print(f"gridsight check: two configurations given ({args.path}, {args.config})")
        return 2
    args.config = args.config or args.path or Path("cameras.toml")
    cfg = _load(args.config)
    if cfg is None:
        return 1
    if not args.no_env:
        try:
            check_runtime_requirements(cfg)
        except ConfigError as exc:
            _print_issues(args.config, exc)
            return 1
    zones = sum(len(c.zones) for c in cfg.cameras)
    rules = sum(len(c.rules) for c in cfg.cameras)
    print(f"{args.config}: OK — {len(cfg.cameras)} camera(s), {zones} zone(s), {rules} rule(s)")
    if warning := cfg.api.exposure_warning():
        print(f"  ⚠ {warning}")
    print(
        f"  {_accelerator_line(cfg.model.providers, cfg.ingest.hwaccel, cfg.ingest.hwaccel_device)}"
    )
    for cam in cfg.cameras:
        state = "enabled" if cam.enabled else "disabled"
        kinds = ", ".join(r.analyzer for r in cam.rules) or "no rules"
        print(f"  ✓ {cam.id} ({cam.name}, {state}): {cam.redacted_url} — {kinds}")
        for facade in cam.facades:
            print(f"    {_facade_fit_line(facade)}")
    return 0


def _accelerator_line(
    wanted: Sequence[str], hwaccel: str | None = None, hwaccel_device: str | None = None
) -> str:
    """What this machine's builds can accelerate, and what the detector and the decoders
    will use."""
    import av.codec.hwaccel
    import onnxruntime as ort

    from pipeline.detect.detector import usable_providers
    from pipeline.ingest.hwdecode import choose

    use, missing = usable_providers(wanted)
    decode = choose(hwaccel, hwaccel_device)
    line = (
        f"accelerators: onnxruntime has {', '.join(ort.get_available_providers())}; "
        f"PyAV hardware decoders {', '.join(av.codec.hwaccel.hwdevices_available()) or 'none'}; "
        f"detector uses {', '.join(use)}; decoding on {decode.device_type or 'the CPU'}"
    )
    if missing:
        line += f" — ⚠ asked for {', '.join(missing)}, not in this build: CPU instead"
    if decode.refused:
        line += f" — ⚠ decoding asked on {hwaccel}: {decode.refused}: the CPU instead"
    telemetry = os.environ.get("ORT_DISABLE_TELEMETRY", "")
    line += (
        "; onnxruntime telemetry off"
        if telemetry.strip().lower() in ("1", "true", "yes", "on")
        else f" — ⚠ onnxruntime telemetry on (ORT_DISABLE_TELEMETRY={telemetry or 'unset'})"
    )
    return line


def _facade_fit_line(facade: FacadeConfig) -> str:
    from pipeline.rules.camera_model import fit_summary

    ok, text = fit_summary(facade, *facade.image_size)
    return f"{'✓' if ok else '⚠'} {text}"


def _store_app(
    cfg: AppConfig,
    root: Path,
    config_path: Path | None,
    reconfigure: Callable[[list[CameraConfig]], CameraChanges] | None = None,
) -> FastAPI:
    """The API over an evidence directory's store, without a pipeline in this process
    (``reconfigure``: the cluster coordinator's, so that zone edits apply live)."""
    from pipeline.ops import compose

    return compose.api(compose.installation(cfg, root=root), config_path=config_path,
                       reconfigure=reconfigure)  # fmt: skip


def run_pipeline(cfg: AppConfig, host: str, port: int, *, api: bool, config_path: Path) -> int:
    """Start the pipeline (and API) in this process and run until SIGINT/SIGTERM."""
    from pipeline.ops import compose, serve

    try:
        running = compose.pipeline(cfg)
    except PipelineError as exc:
        return _cannot_start(config_path, exc)
    return serve.run(running, host, port, api=api, config_path=config_path)


def _cannot_start(config_path: Path, exc: PipelineError) -> int:
    if isinstance(exc, ConfigError):
        _print_issues(config_path, exc)
    else:
        print(f"cannot start: {exc}", file=sys.stderr)
    return 1


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 1
    host, port, api = args.host or cfg.api.host, args.port or cfg.api.port, not args.no_api
    workers = run_workers(cfg, args.workers)
    if not args.cluster and workers <= 1:
        return run_pipeline(cfg, host, port, api=api, config_path=args.config)
    try:  # checked here: a worker's start would fail later, and less clearly
        check_runtime_requirements(cfg)
    except ConfigError as exc:
        return _cannot_start(args.config, exc)
    if args.cluster:
        return run_cluster(cfg, args, host, port)
    from pipeline.ops.workers import ProcessWorker

    return run_coordinated(cfg, args, host, port, workers, ProcessWorker)


def run_coordinated(
    cfg: AppConfig, args: argparse.Namespace, host: str, port: int, workers: int, spawn: Spawn
) -> int:
    """A coordinator in this process with the API and casework, cameras in ``workers``
    workers that ``spawn`` starts (local processes, or Ray actors)."""
    from pipeline.ops import serve
    from pipeline.ops.cluster import Coordinator
    from pipeline.store.repository import EventStore

    store = EventStore(cfg.store_location())  # the coordinator's end of the shared store
    try:
        coord = Coordinator(cfg, workers, store=store, spawn=spawn)
        return serve.run_coordinated(cfg, coord, host, port, api=not args.no_api,
                                     config_path=args.config)  # fmt: skip
    except PipelineError as exc:  # a worker could not start its cameras (it says why)
        return _cannot_start(args.config, exc)
    finally:
        store.close()


def run_workers(cfg: AppConfig, asked: int | None, cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Worker processes for ``gridsight run``: as asked, else one per core this process may
    use, never more than there are cameras (1: everything in this process)."""
    cameras = sum(1 for c in cfg.cameras if c.enabled)
    return max(1, min(asked if asked is not None else usable_cores(cpu_max), cameras))


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container started with ``--cpus 4`` on a 64-core host sees 64 cores but may use 4)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return cores


def run_cluster(cfg: AppConfig, args: argparse.Namespace, host: str, port: int) -> int:
    """Coordinator in this process, cameras in Ray worker actors, API over the shared store."""
    try:
        import ray
    except ImportError:
        print("--cluster needs Ray: pip install -e '.[cluster]'", file=sys.stderr)
        return 1
    from pipeline.ops.cluster import RayWorker

    ray.init(address=args.ray_address, include_dashboard=False)
    try:
        return run_coordinated(cfg, args, host, port, args.cluster, RayWorker)
    finally:
        ray.shutdown()


def cmd_replay(args: argparse.Namespace) -> int:
    from pipeline.ops.replay import replay
    from pipeline.runtime import tune_process

    tune_process()
    cfg = _load(args.config)
    if cfg is None:
        return 1
    if not args.video.is_file():
        print(f"{args.video}: no such file", file=sys.stderr)
        return 1
    if args.activity is not None and not args.activity.is_file():
        print(f"--activity {args.activity}: no such file", file=sys.stderr)
        return 1
    start = datetime.fromisoformat(args.start).timestamp() if args.start else None
    try:
        result = replay(
            args.video, cfg, args.camera, args.out, start_time_s=start, progress=not args.quiet,
            activity=args.activity,
        )  # fmt: skip
    except ConfigError as exc:
        _print_issues(args.config, exc)
        return 1
    except PipelineError as exc:
        print(f"replay failed: {exc}", file=sys.stderr)
        return 1
    speed = result.duration_s / result.wall_s if result.wall_s else 0.0
    print(
        f"{args.video}: {result.events} event(s) → {result.jsonl} "
        f"({result.frames} frames analysed, {result.duration_s:.1f} s of video in "
        f"{result.wall_s:.1f} s, {speed:.1f}× real time)"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """API only, over an existing evidence directory (no cameras are opened)."""
    import uvicorn

    from pipeline.ops.serve import warn_exposure

    cfg = _load(args.config)
    if cfg is None:
        return 1
    app = _store_app(cfg, args.evidence or cfg.evidence.root, args.config)
    host = args.host or cfg.api.host
    warn_exposure(cfg, host)
    uvicorn.run(app, host=host, port=args.port or cfg.api.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.ops.demo.run import run_demo

    return run_demo(
        workdir=args.workdir,
        api_port=args.port,
        rtsp_port=args.rtsp_port,
        duration_s=args.duration,
    )


def _site_for(args: argparse.Namespace) -> Installation | None:
    """The installation the maintenance commands (token, export, retention) work on."""
    from pipeline.ops import compose

    cfg = _load(args.config)
    if cfg is None:
        return None
    return compose.installation(cfg, root=args.evidence or cfg.evidence.root)


def cmd_token(args: argparse.Namespace) -> int:
    import time

    from api.auth import Role, create_token, revoke_token

    site = _site_for(args)
    if site is None:
        return 1
    store = site.store
    if args.action == "create":
        if args.role is None:
            print(
                "token create needs --role (operator, integrator, analyst, admin)", file=sys.stderr
            )
            return 2
        days = site.cfg.api.token_ttl_days if args.ttl_days is None else args.ttl_days
        if not 0 < days <= 3650:
            print("--ttl-days must be more than 0 and at most 3650", file=sys.stderr)
            return 2
        from pipeline.store.access import TokenScope

        scope = None
        if args.grid or args.camera:
            scope = TokenScope(tuple(args.grid or ()), tuple(args.camera or ()))
        try:
            token = create_token(store, args.name, Role(args.role), time.time(), days * 86400.0,
                                 scope)  # fmt: skip
        except ValueError as exc:
            print(f"cannot create token {args.name!r}: {exc}", file=sys.stderr)
            return 2
        except StoreIntegrityError:
            print(f"cannot create token {args.name!r}: an active token has that name; revoke "
                  "it first", file=sys.stderr)  # fmt: skip
            return 1
        print(token)
        where = f", grids {args.grid or []} cameras {args.camera or []} only" if scope else ""
        print(f"# {args.name} ({args.role}{where}), valid {days:g} days; shown once, only its "
              "hash is stored", file=sys.stderr)  # fmt: skip
        return 0
    if not revoke_token(store, args.name, time.time()):
        print(f"no active token named {args.name!r}", file=sys.stderr)
        return 1
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    """People who sign in to the UI with a name and password (argon2 hash kept)."""
    import getpass
    import time

    from api.auth import Role, hash_password
    from pipeline.store.access import TokenScope, disable_user, put_user

    site = _site_for(args)
    if site is None:
        return 1
    if args.action == "disable":
        if not disable_user(site.store, args.name, time.time()):
            print(f"no enabled user named {args.name!r}", file=sys.stderr)
            return 1
        return 0
    if args.role is None:
        print("user add needs --role (operator, integrator, analyst, admin)", file=sys.stderr)
        return 2
    scope = TokenScope(tuple(args.grid or ()), tuple(args.camera or ())) if (
        args.grid or args.camera) else None  # fmt: skip
    if scope is not None and args.role == "admin":
        print("an admin cannot be limited to grids or cameras", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    try:
        digest = hash_password(password)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    put_user(site.store, args.name, digest, Role(args.role).value, scope, time.time())
    print(f"user {args.name} ({args.role}) saved; their open sessions ended", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import time

    from pipeline.casework.cases import CaseError
    from pipeline.casework.package import PackageError
    from pipeline.store.repository import append_audit

    site = _site_for(args)
    if site is None:
        return 1
    store = site.store
    try:
        result = site.exporter.export(args.case, args.out, actor=args.actor, purpose=args.purpose,
                                 shared=args.shared, keep_plates=args.keep_plates)  # fmt: skip
    except (CaseError, PackageError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    detail = {"purpose": args.purpose, "package": str(args.out),
              "manifest_sha256": result.manifest_sha256}  # fmt: skip
    action = "export_shared" if args.shared else "export_full"
    with store.transaction() as db:
        append_audit(db, time.time(), args.actor, "cli", action, f"case:{args.case}", detail)
    print(f"{result.path}: {result.files} files, manifest sha256 {result.manifest_sha256}"
          + (f", {result.masked_regions} regions masked" if args.shared else ""))  # fmt: skip
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """0: intact and authenticated; 1: problems; 3: intact, but the manifest itself could not
    be authenticated (no key, no recorded manifest hash)."""
    from pipeline.casework.package import verify_package
    from pipeline.ops.compose import signing_key

    key = signing_key()
    result = verify_package(args.package, key, args.manifest_sha256)
    if not result.ok:
        print(f"✗ {args.package}: {len(result.problems)} problem(s)", file=sys.stderr)
        for p in result.problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    how = {"signature": " and its signature", "manifest_sha256": " and the recorded manifest "
           "sha256"}.get(result.authenticity, "")  # fmt: skip
    print(f"✓ {args.package}: all {result.checked} files match the manifest{how}")
    for w in result.warnings:
        print(f"  ⚠ {w}; set GRIDSIGHT_SIGNING_KEY or pass --manifest-sha256", file=sys.stderr)
    return 0 if result.authenticated else 3


def cmd_retention(args: argparse.Namespace) -> int:
    import time

    from pipeline.casework.retention import expired, purge

    site = _site_for(args)
    if site is None:
        return 1
    now = time.time()
    items = expired(site.store, site.cfg.retention, now)
    for it in items:
        print(f"  {it.event_id} {it.event_type} case={it.case_id}: {len(it.files)} file(s)")
    if not args.apply:
        print(f"{len(items)} event(s) past retention (dry run; --apply deletes their media)")
        return 0
    deleted = purge(site.store, site.storage, items, now)
    print(f"deleted {deleted} file(s) of {len(items)} event(s)")
    return 0


def cmd_calendar(args: argparse.Namespace) -> int:
    from pipeline.ops.calendar import write_calendar

    try:
        holidays, worked = write_calendar(args.config, args.year)
    except ConfigError as exc:
        _print_issues(args.config, exc)
        return 1
    except OSError as exc:
        print(f"{args.config}: cannot read or write: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{args.config}: {args.year}: {holidays} weekday holiday(s), {worked} worked weekend "
          "day(s) (调休) in [cases.calendar]; previous file kept as .bak")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gridsight",
        description=(
            "gridsight: community grid video analytics (违章停车 / 高空抛物 / 占道经营 / 垃圾满溢)"
        ),
    )
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate cameras.toml and print every problem")
    # `gridsight check cameras.toml`, or --config as every other command takes it (the
    # container's smoke test and operators' scripts used the latter and got a usage error)
    c.add_argument("path", nargs="?", type=Path, metavar="config")
    c.add_argument("--config", type=Path, default=None)
    c.add_argument("--no-env", action="store_true", help="skip credential/file/model checks")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("run", help="run all enabled cameras with the API")
    r.add_argument("--config", type=Path, default=Path("cameras.toml"))
    r.add_argument("--host")
    r.add_argument("--port", type=int)
    r.add_argument("--no-api", action="store_true")
    r.add_argument(
        "--workers", type=int, metavar="N",
        help="pipeline processes on this host (default: one per core, at most one per camera; "
        "1: all cameras in this process)",
    )  # fmt: skip
    r.add_argument(
        "--cluster", type=int, metavar="WORKERS",
        help="shard the cameras over this many Ray worker actors (needs the [cluster] extra)",
    )  # fmt: skip
    r.add_argument("--ray-address", help="existing Ray cluster (default: start a local one)")
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="run a recorded file through the same pipeline")
    rp.add_argument("video", type=Path)
    rp.add_argument("--config", type=Path, default=Path("cameras.toml"))
    rp.add_argument("--camera", required=True, help="camera id whose zones and rules apply")
    rp.add_argument("--out", type=Path, required=True)
    rp.add_argument("--start", help="ISO-8601 time of the first frame (default: file tag/now)")
    rp.add_argument(
        "--activity", type=Path,
        help="learned activity map to start from (the camera's .activity/<id>.npz)",
    )  # fmt: skip
    rp.add_argument("--quiet", action="store_true")
    rp.set_defaults(func=cmd_replay)

    s = sub.add_parser("serve", help="API only, over an existing evidence directory")
    s.add_argument("--config", type=Path, default=Path("cameras.toml"))
    s.add_argument("--evidence", type=Path)
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_serve)

    t = sub.add_parser("token", help="create or revoke an API token")
    t.add_argument("action", choices=["create", "revoke"])
    t.add_argument("name")
    t.add_argument("--role", choices=["operator", "integrator", "analyst", "admin"])
    t.add_argument("--ttl-days", type=float, help="lifetime (default: api.token_ttl_days)")
    t.add_argument("--grid", action="append", help="limit to this grid code's cameras (repeat)")
    t.add_argument("--camera", action="append", help="limit to this camera (repeat)")
    t.add_argument("--config", type=Path, default=Path("cameras.toml"))
    t.add_argument("--evidence", type=Path)
    t.set_defaults(func=cmd_token)

    u = sub.add_parser("user", help="add (or change) or disable a person who signs in")
    u.add_argument("action", choices=["add", "disable"])
    u.add_argument("name")
    u.add_argument("--role", choices=["operator", "integrator", "analyst", "admin"])
    u.add_argument("--grid", action="append", help="limit to this grid code's cameras (repeat)")
    u.add_argument("--camera", action="append", help="limit to this camera (repeat)")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    u.add_argument("--config", type=Path, default=Path("cameras.toml"))
    u.add_argument("--evidence", type=Path)
    u.set_defaults(func=cmd_user)

    e = sub.add_parser("export", help="export a case as an evidence package")
    e.add_argument("case")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--actor", required=True, help="who exports (custody log)")
    e.add_argument("--purpose", required=True, help="why (custody log)")
    e.add_argument("--shared", action="store_true", help="masked copy, no originals")
    e.add_argument("--keep-plates", action="store_true", help="shared parking case for 交警")
    e.add_argument("--config", type=Path, default=Path("cameras.toml"))
    e.add_argument("--evidence", type=Path)
    e.set_defaults(func=cmd_export)

    v = sub.add_parser(
        "verify",
        help="check an evidence package; names any altered file (exit 0 ok, 1 problems, "
        "3 files intact but the manifest not authenticated)",
    )
    v.add_argument("--manifest-sha256", help="the manifest hash recorded at export (audit log)")
    v.add_argument("package", type=Path)
    v.set_defaults(func=cmd_verify)

    rt = sub.add_parser("retention", help="list (or --apply: delete) evidence past retention")
    rt.add_argument("--apply", action="store_true")
    rt.add_argument("--config", type=Path, default=Path("cameras.toml"))
    rt.add_argument("--evidence", type=Path)
    rt.set_defaults(func=cmd_retention)

    cal = sub.add_parser(
        "calendar", help="write a year's holidays and 调休 days into [cases.calendar]"
    )
    cal.add_argument("year", type=int)
    cal.add_argument("--config", type=Path, default=Path("cameras.toml"))
    cal.set_defaults(func=cmd_calendar)

    d = sub.add_parser("demo", help="local RTSP camera + pipeline + API on bundled footage")
    d.add_argument("--workdir", type=Path, default=Path("evidence/demo"))
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--rtsp-port", type=int, default=8554)
    d.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    # Evidence, the event index and exported packages show residents' faces and plates: not
    # for other local accounts. Files come out 0640, directories 0750 (group: the operators).
    os.umask(0o027)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
