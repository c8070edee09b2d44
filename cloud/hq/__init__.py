"""HQ's pages at the cloud: stores and their sync health, sales per store and day,
reconciliation exceptions, members, campaigns with their claim QR. Server-rendered shells whose
small scripts use only HQ's public API, with an HQ token kept in an HttpOnly cookie."""

from __future__ import annotations

from flask import Blueprint, render_template

pages = Blueprint(
    "hq_pages",
    __name__,
    static_folder="static",
    static_url_path="/hq/static",
    template_folder="templates",
)

#: Every page served, for the route checks.
PAGES = (("GET", "/hq"),)


@pages.get("/hq")
def hq() -> str:
    return render_template("hq.html")
