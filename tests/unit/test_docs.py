from __future__ import annotations

import re
from pathlib import Path

from edge.route_table import all_specs, route_table_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_readme_shows_the_current_route_table():
    assert route_table_markdown() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_route_declares_roles_and_connectivity():
    import inspect

    from edge.api_contract import ApiBlueprint

    # A route cannot exist without saying whether it works offline: there is no default.
    parameter = inspect.signature(ApiBlueprint.endpoint).parameters["connectivity"]
    assert parameter.default is inspect.Parameter.empty
    blueprint = ApiBlueprint("probe")
    try:
        blueprint.endpoint("GET", "/probe", summary="Probe", roles=("kiosk",))  # type: ignore[call-arg]
    except TypeError as exc:
        assert "connectivity" in str(exc)
    else:
        raise AssertionError("a route was declared without its connectivity class")
    specs = all_specs()
    assert len(specs) >= 18
    for spec in specs:
        assert spec.connectivity in {"offline", "online_only", "offline_bounded"}
        assert spec.summary
    public = {s.path for s in specs if not s.roles}
    # A new device pairs with a manager's code before it has a token.
    assert public == {"/healthz", "/api/v1/openapi.json", "/api/v1/pairing"}


def test_the_flask_app_serves_exactly_the_declared_routes(store):
    from edge.screens.pages import PAGES
    from tests.builders import make_app_for

    app = make_app_for(store)
    served = {
        (method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.endswith("static")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    declared = {(s.method, s.path) for s in all_specs()} | set(PAGES)
    assert served == declared


def test_the_sample_catalog_imports(tmp_path):
    from edge.catalog.service import parse_catalog

    rows = parse_catalog((ROOT / "config" / "catalog.example.csv").read_text(encoding="utf-8"))
    assert {r.sold_by for r in rows} == {"each", "kg", "variable"}
