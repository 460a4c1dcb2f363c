"""onnxruntime's own usage telemetry stays off wherever gridsight loads a model.

Official onnxruntime builds (1.29 on) write a device ID under ``~/.cache/Microsoft`` when first
imported and queue usage events for upload to Microsoft; camera sites are privacy-sensitive.
Each run is a fresh interpreter with its own HOME, since the variable is read at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# onnxruntime collects nothing where one of these says it runs in CI (the project's CI sets CI):
# left out, so that what a camera site's process does is what is tested
_CI_MARKERS = ("CI", "BITBUCKET_BUILD_NUMBER", "BUILDKITE", "CIRCLECI", "CODEBUILD_BUILD_ID",
               "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TEAMCITY_VERSION", "TF_BUILD",
               "TRAVIS")  # fmt: skip


def _leaves_state(home: Path, code: str, **env: str) -> bool:
    """Whether running ``code`` leaves onnxruntime's telemetry state under ``home``."""
    home.mkdir()
    left_out = ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", *_CI_MARKERS)
    clean = {k: v for k, v in os.environ.items() if k not in left_out}
    subprocess.run([sys.executable, "-c", code], env=clean | {"HOME": str(home)} | env,
                   cwd=REPO, check=True, timeout=120)  # fmt: skip
    return (home / ".cache" / "Microsoft").exists()


def test_loading_a_model_through_gridsight_leaves_no_telemetry_state(tmp_path: Path) -> None:
    if not _leaves_state(tmp_path / "plain", "import onnxruntime"):
        pytest.skip("this onnxruntime build keeps no telemetry state")
    load = (
        "from pathlib import Path\n"
        "from pipeline.detect.detector import OnnxDetector\n"
        "OnnxDetector(Path('models/yolox_nano.onnx'))\n"
    )
    assert not _leaves_state(tmp_path / "gridsight", load)
    # an operator who wants it can still have it
    assert _leaves_state(tmp_path / "opted_in", load, ORT_DISABLE_TELEMETRY="0")


def test_check_says_whether_onnxruntime_telemetry_is_off() -> None:
    def check(**env: str) -> str:
        base = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
        proc = subprocess.run([sys.executable, "-m", "pipeline.ops.cli", "check", "cameras.toml"],
                              env=base | env, cwd=REPO, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "onnxruntime telemetry off" in check()
    assert "⚠ onnxruntime telemetry on (ORT_DISABLE_TELEMETRY=0)" in check(
        ORT_DISABLE_TELEMETRY="0"
    )
