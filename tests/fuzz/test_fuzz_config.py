"""Mutated cameras.toml through the validator: it accepts the file or raises one ConfigError
whose every issue names where (camera and field path); it never shows a traceback."""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import given, strategies as st

from pipeline.config import load_config, parse_config
from pipeline.errors import ConfigError
from pipeline.ops.cli import main
from tests.conftest import REPO

BUNDLED = tomllib.loads((REPO / "cameras.toml").read_text(encoding="utf-8"))

weird = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
    st.sampled_from(["", "０１２", "\ud800", "rtsp://a:b@h/x", "../../etc/passwd", "A" * 5000,
                     "${X}", "nan", "inf", "-1", "1e999"]),
    st.lists(st.floats(allow_nan=True) | st.text(max_size=5), max_size=4),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BUNDLED)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[Any, ...]]:
    raw = copy.deepcopy(BUNDLED)
    path = draw(st.sampled_from(PATHS))
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if op == "delete":
        del parent[path[-1]]
    elif op == "add" and isinstance(parent, dict):
        key = draw(st.text(min_size=1, max_size=12))
        parent[key] = draw(weird)
        path = (*path[:-1], key)  # the new key is what an issue must name
    else:
        parent[path[-1]] = draw(weird)
    return raw, path


@given(mutated())
def test_every_problem_names_its_field(case: tuple[dict[str, Any], tuple[Any, ...]]) -> None:
    raw, path = case
    try:
        parse_config(raw)
    except ConfigError as exc:
        issues = exc.issues
    else:
        return
    assert issues
    for issue in issues:
        assert issue.location.strip() and issue.message.strip(), issue
    # the change is found where it was made: some issue names a key on the changed path
    # (or the camera it belongs to, for cross-field checks such as a rule's zones)
    said = " ".join(f"{i.location} {i.message}" for i in issues)
    names = [str(k) for k in path if isinstance(k, str)]
    if path[0] == "cameras" and len(path) > 1:
        names.append(str(BUNDLED["cameras"][path[1]]["id"]))
    assert any(n in said for n in names), (path, said)


def _finite(node: Any) -> bool:
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(_finite(v) for v in node.values())
    if isinstance(node, list | tuple):
        return all(_finite(v) for v in node)
    return True


@given(mutated())
def test_nothing_non_finite_is_ever_accepted(case: tuple[dict[str, Any], tuple[Any, ...]]) -> None:
    raw, _ = case
    try:
        cfg = parse_config(raw)
    except ConfigError:
        return
    assert _finite(cfg.model_dump())


@pytest.fixture(scope="module")
def toml_text() -> bytes:
    return (REPO / "cameras.toml").read_bytes()


@given(data=st.data())
def test_byte_level_mutations_never_raise_anything_else(
    data: st.DataObject, toml_text: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text = bytearray(toml_text)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text) - 1))
        text[i : i + data.draw(st.integers(0, 8))] = data.draw(st.binary(max_size=8))
    path = tmp_path_factory.mktemp("cfg") / "cameras.toml"
    path.write_bytes(bytes(text))
    try:
        load_config(path)
    except ConfigError as exc:
        issues = exc.issues
    else:
        return
    assert all(i.location and i.message for i in issues)


def test_check_prints_problems_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI on a handful of mutated files (the property above covers the validator)."""
    raw = copy.deepcopy(BUNDLED)
    raw["retention"] = {"default_days": float("nan")}
    raw["cameras"][0]["zones"][0]["polygon"][0] = ["0.1", True]
    path = tmp_path / "cameras.toml"
    path.write_text(tomlkit.dumps(raw), encoding="utf-8")
    assert main(["check", "--no-env", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "default_days" in err and "polygon" in err
