"""The published event-report JSON Schema (v1) and validation of reports before they are written."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "event-report-v1.schema.json"


@cache
def _validator() -> Draft202012Validator:
    # Immutable once loaded; cached so that each report costs one validation, not a parse.
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def report_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def report_errors(report: dict[str, Any]) -> list[str]:
    """Every violation, as ``path: message`` (empty when the report is valid)."""
    errors = sorted(_validator().iter_errors(report), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]
