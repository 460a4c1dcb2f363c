"""Platform callbacks with forged, replayed, stale and cross-subscriber input: a case changes
only through a correctly signed, fresh request from a subscriber it was pushed to, asking a
platform action its state allows; nothing else changes anything, and nothing answers 5xx."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pipeline.casework.cases import PLATFORM_ACTIONS, TRANSITIONS, Action, CaseState
from pipeline.types import EventType
from tests.api.test_security import SECRETS, Site, make_site, signed
from tests.unit.test_cases import store_event

MUTATIONS = ["none", "replay", "new_key", "body", "stale", "other_secret", "garbage_sig",
             "no_headers", "unknown_subscriber"]  # fmt: skip
ACTIONS = [a.value for a in Action] + ["", "ACCEPT", "dispatch "]
_ids = itertools.count()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("cb"), max_auth_failures=10_000)


def _new_case(site: Site, bins: bool, progress: int) -> tuple[str, set[str]]:
    """A fresh case moved ``progress`` steps along; returns it and who it was pushed to."""
    n = next(_ids)
    etype = EventType.BIN_OVERFLOW if bins else EventType.FIRE_LANE_OCCUPATION
    row = store_event(site.store, f"cb{n}", site.clock.now, etype=etype, zone=f"z{n}",
                      camera=f"c{n}", severity="normal")  # fmt: skip
    case = site.cases.on_event(row)
    assert case is not None
    for action in ("accept", "dispatch", "respond")[:progress]:
        site.cases.act(case.case_id, action, "op1")
    site.outbox.deliver_due()
    pushed = set() if progress == 0 else ({"grid", "bins"} if bins else {"grid"})
    return case.case_id, pushed


def _history(site: Site, case_id: str) -> int:
    return len(site.cases.history(case_id))


def test_only_valid_callbacks_change_a_case(site: Site) -> None:
    @given(
        bins=st.booleans(), progress=st.integers(0, 3), sub=st.sampled_from(["grid", "bins"]),
        action=st.sampled_from(ACTIONS), mutation=st.sampled_from(MUTATIONS),
        extra=st.dictionaries(st.sampled_from(["reason", "unit", "reason_code", "x"]),
                              st.text(max_size=20) | st.none(), max_size=2),
    )  # fmt: skip
    def check(bins: bool, progress: int, sub: str, action: str, mutation: str,
              extra: dict[str, Any]) -> None:  # fmt: skip
        case_id, pushed = _new_case(site, bins, progress)
        state = site.cases.get(case_id).state
        body: dict[str, Any] = {"case_id": case_id, "action": action, "actor": "p", **extra}
        key = f"key-{next(_ids)}"
        req = signed(sub, body, key, site.clock.now)
        h = req["headers"]
        path = f"/callbacks/{sub}"
        if mutation == "new_key":
            h["Idempotency-Key"] = key + "x"
        elif mutation == "body":
            other = "respond" if action == "dispose" else "dispose"  # a body that differs
            req["content"] = json.dumps({**body, "action": other}).encode()
        elif mutation == "stale":
            req = signed(sub, body, key, site.clock.now - 400)
        elif mutation == "other_secret":
            req = signed(sub, body, key, site.clock.now, secret=SECRETS["bins" if sub == "grid"
                                                                        else "grid"])  # fmt: skip
        elif mutation == "garbage_sig":
            h["X-Gridsight-Signature"] = "sha256=" + "0" * 64
        elif mutation == "no_headers":
            req["headers"] = {"Content-Type": "application/json"}
        elif mutation == "unknown_subscriber":
            path = "/callbacks/nobody"
        before = _history(site, case_id)
        r = site.client.post(path, **req)
        assert r.status_code < 500, (r.status_code, r.text)
        changed = _history(site, case_id) != before
        try:
            act = Action(action)
        except ValueError:
            act = None
        valid_body = set(extra) <= {"reason", "unit", "reason_code"} and not extra.get("unit")
        allowed = (
            mutation in ("none", "replay") and sub in pushed and act in PLATFORM_ACTIONS
            and (CaseState(state), act) in TRANSITIONS and valid_body
            and (act not in (Action.RETURN, Action.CLOSE) or (extra.get("reason") or "").strip())
        )  # fmt: skip
        if changed:
            assert allowed, (mutation, sub, pushed, state, action, extra, r.text)
            assert r.status_code == 200
        elif allowed and not extra.get("reason_code"):  # a stray reason_code may be refused
            raise AssertionError(("valid callback refused", state, action, extra, r.text))
        if mutation == "replay":  # the same request again: the first answer, no second act
            after = _history(site, case_id)
            again = site.client.post(path, **req)
            assert (again.status_code, again.json()) == (r.status_code, r.json())
            assert _history(site, case_id) == after

    check()
