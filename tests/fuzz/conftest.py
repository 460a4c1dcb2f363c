"""Hypothesis profiles for the property/fuzz suite of the security boundary (issue 23).

``ci`` (the default) is derandomized: the same examples on every run, so a red build is a real
regression and never a lucky draw; it fits the CI budget. ``deep`` explores afresh with many
more examples: ``HYPOTHESIS_PROFILE=deep pytest tests/fuzz`` before a release.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
)  # fmt: skip
settings.register_profile(
    "deep", max_examples=3000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
