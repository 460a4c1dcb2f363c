"""Accelerators are opt-in: a provider this onnxruntime build lacks falls back to the CPU with
a warning (never a failure), and `gridsight check` says what the build has."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from pipeline.config import parse_config
from pipeline.detect.detector import OnnxDetector, usable_providers
from pipeline.errors import ConfigError
from pipeline.ops.cli import main
from tests.conftest import REPO
from tests.media import lacking_device

MODEL = REPO / "models" / "yolox_nano.onnx"
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_cpu_is_always_last_and_missing_ones_are_named() -> None:
    use, missing = usable_providers(["cuda", "openvino", "cpu"])
    assert use[-1] == "CPUExecutionProvider"
    assert ("cuda" in missing) == (not HAS_CUDA)
    assert usable_providers(["cpu"]) == (["CPUExecutionProvider"], [])


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: nothing falls back")
def test_a_missing_accelerator_falls_back_to_the_cpu_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        det = OnnxDetector(MODEL, providers=["cuda"])
    assert det.providers == ("CPUExecutionProvider",)
    assert "not in this onnxruntime build" in caplog.text and "cuda" in caplog.text


def test_unknown_provider_names_are_config_errors() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"providers": ["rocm"]}, "cameras": []})
    assert "providers" in err.value.issues[0].location


def test_check_lists_accelerators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cameras.toml"
    cfg.write_text(f'[model]\npath = "{MODEL}"\nproviders = ["openvino", "cpu"]\n')
    assert main(["check", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "accelerators: onnxruntime has" in out and "CPUExecutionProvider" in out
    assert "PyAV hardware decoders" in out and "decoding on the CPU" in out


def test_check_says_a_hardware_decoder_is_not_usable_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lacking = lacking_device()
    cfg = tmp_path / "cameras.toml"
    cfg.write_text(f'[model]\npath = "{MODEL}"\n[ingest]\nhwaccel = "{lacking}"\n')
    assert main(["check", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"⚠ decoding asked on {lacking}: this FFmpeg build has no {lacking}" in out


def test_a_hardware_decoder_ffmpeg_does_not_know_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"ingest": {"hwaccel": "nvdec"}, "cameras": []})
    assert err.value.issues[0].location == "ingest.hwaccel"
    assert "cuda" in err.value.issues[0].message  # the names it does know
