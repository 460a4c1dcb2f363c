"""The incident rules gridsight runs. A new rule is a module in ``pipeline/rules/`` defining its
configuration model (a ``pipeline.config_base.RuleBase``) and ``KIND`` (what it is configured
by, what its events carry, how it is built, reported and drawn), listed here once in ``RULES``
and once in ``RuleConfig``, the union that ``cameras.toml``'s ``[[cameras.rules]]`` are read as
(see docs/architecture.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from pipeline.rules import bins, parking, throwing, vending
from pipeline.rules.base import RuleKind

RULES: tuple[RuleKind[Any, Any], ...] = (parking.KIND, vending.KIND, bins.KIND, throwing.KIND)

# A rule's ``analyzer`` value picks its model (a typo names the analyzers that exist).
RuleConfig = Annotated[
    parking.ParkingRule | vending.VendingRule | bins.BinRule | throwing.ThrowingRule,
    Field(discriminator="analyzer"),
]

_BY_CONFIG = {k.config: k for k in RULES}
_BY_DETAILS = {k.details: k for k in RULES}


def kind_of_rule(rule: object) -> RuleKind[Any, Any]:
    """The kind a configured rule belongs to."""
    kind = _BY_CONFIG.get(type(rule))
    if kind is None:  # RULES and RuleConfig must grow together
        raise TypeError(f"no rule kind registered for {type(rule).__name__}")
    return kind


def kind_of_details(details: object) -> RuleKind[Any, Any] | None:
    """The kind whose events carry these details (None: not a rule's, e.g. camera status)."""
    return _BY_DETAILS.get(type(details))
