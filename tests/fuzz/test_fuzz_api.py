"""Every route with random paths, queries and bodies, as every role, a forged token and none:
the server never answers 500, and no role ever gets a success from a route it may not use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, strategies as st

from api.auth import Role
from tests.api.test_auth import POLICY
from tests.api.test_security import Site, make_site, pushed_case

# The stream runs for as long as it is asked to (tested on its own in tests/api).
SKIP = {("GET", "/cases/stream")}
WHO = [None, "forged", *Role]

safe_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = make_site(tmp_path_factory.mktemp("fuzz"), max_auth_failures=10_000)
    pushed_case(site)
    return site


def _routes(site: Site) -> list[tuple[str, str, list[str]]]:
    """(method, path template, query parameter names) of every route, from the OpenAPI
    document (the routes a client can discover; "/" only redirects to /ui/)."""
    out = []
    for path, ops in site.app.openapi()["paths"].items():
        for method, op in ops.items():
            if (method.upper(), path) not in SKIP:
                query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
                out.append((method.upper(), path, query))
    return sorted(out)


@st.composite
def requests(draw: st.DrawFn, site: Site) -> dict[str, Any]:
    method, template, query_names = draw(st.sampled_from(_routes(site)))
    with site.store.reader() as db:
        known = [str(r[0]) for r in db.execute("SELECT case_id FROM cases")]
    ids = st.sampled_from(["cam1", "ev1", "grid", "bins", "1", "u-admin", *known]) | safe_text
    url = template
    for name in ("camera_id", "event_id", "case_id", "subscriber_id", "seq", "name"):
        if "{" + name + "}" in url:
            url = url.replace("{" + name + "}", quote(draw(ids), safe=""))
    names = st.sampled_from([*query_names, "x"]) if query_names else st.just("x")
    query = draw(st.dictionaries(names, safe_text | st.integers().map(str), max_size=4))
    body = draw(st.none() | json_values.map(lambda v: json.dumps(v).encode()) |
                st.binary(max_size=200))  # fmt: skip
    return {"method": draw(st.sampled_from([method, method, method, "DELETE", "PATCH"])),
            "template": template, "url": url, "query": query, "body": body,
            "who": draw(st.sampled_from(WHO))}  # fmt: skip


def test_no_500_and_no_access_beyond_the_role(site: Site) -> None:
    client = site.client
    client_nothrow = type(client)(site.app, raise_server_exceptions=False)

    @given(requests(site))
    def check(req: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json"} if req["body"] is not None else {}
        who = req["who"]
        if who == "forged":
            headers["Authorization"] = "Bearer gs_forged"
        elif who is not None:
            headers["Authorization"] = f"Bearer {site.tokens[who]}"
        r = client_nothrow.request(req["method"], req["url"], params=req["query"],
                                   content=req["body"], headers=headers)  # fmt: skip
        assert r.status_code < 500 or r.status_code == 503, (req, r.status_code, r.text[:300])
        allowed = POLICY.get((req["method"], req["template"]), set())
        if allowed is None:
            return  # public route
        if who is None or who == "forged" or (who not in allowed and who != Role.ADMIN):
            assert not r.is_success, (req, r.status_code, r.text[:300])

    check()


def test_the_policy_table_still_matches_the_app(site: Site, tmp_path: Path) -> None:
    """A new route must be added to the policy (and so to this fuzz) before it ships."""
    routes = {(m, p) for m, p, _ in _routes(site)} | SKIP
    assert routes == set(POLICY)
