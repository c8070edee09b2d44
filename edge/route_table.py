"""The table of device routes with their roles and connectivity class, for docs and checks."""

from __future__ import annotations

from edge.api_contract import ApiBlueprint, RouteSpec

CONNECTIVITY_WORDS = {
    "offline": "works offline",
    "online_only": "online only",
    "offline_bounded": "offline within a budget",
}


def all_apis() -> list[ApiBlueprint]:
    """Every feature's routes, in the one order the app registers them."""
    from edge.assistance.api import api as assistance_api
    from edge.auth.api import api as devices_api
    from edge.catalog.api import api as catalog_api
    from edge.checkout.api import api as checkout_api
    from edge.coupons.api import api as coupons_api
    from edge.inventory.api import api as inventory_api
    from edge.members.api import api as members_api
    from edge.reports.api import api as reports_api
    from edge.sync_client.api import api as sync_api
    from edge.system_api import api as system_api

    return [
        system_api,
        catalog_api,
        checkout_api,
        assistance_api,
        inventory_api,
        members_api,
        coupons_api,
        reports_api,
        sync_api,
        devices_api,
    ]


def all_specs() -> list[RouteSpec]:
    """Every route the store server declares, in a stable order."""
    specs = [s for api in all_apis() for s in api.specs]
    return sorted(specs, key=lambda s: (s.path, s.method))


def route_table_markdown() -> str:
    lines = [
        "| method | route | what | roles | connectivity |",
        "|---|---|---|---|---|",
    ]
    for s in all_specs():
        roles = ", ".join(sorted(s.roles)) if s.roles else "public"
        lines.append(
            f"| {s.method} | `{s.path}` | {s.summary} | {roles} | "
            f"{CONNECTIVITY_WORDS[s.connectivity]} |"
        )
    return "\n".join(lines)
