"""The store's screens: server-rendered pages whose small scripts use only the public device
API (a page is a paired device like any other, its token in an HttpOnly cookie; see
:mod:`shared.screens`, which also serves the scripts every page shares). No build step: the
scripts and styles are served as written."""

from __future__ import annotations

from flask import Blueprint, render_template

pages = Blueprint(
    "screens",
    __name__,
    static_folder="static",
    static_url_path="/screens",
    template_folder="templates",
)

#: Every page served, for the route table's checks (a page is a shell: what it does goes
#: through the API, whose routes say their roles).
PAGES = (("GET", "/kiosk"), ("GET", "/go"), ("GET", "/exit"), ("GET", "/staff"))


@pages.get("/kiosk")
def kiosk() -> str:
    return render_template("kiosk.html")


@pages.get("/exit")
def exit_check() -> str:
    return render_template("exit.html")


@pages.get("/staff")
def staff() -> str:
    return render_template("staff.html")


@pages.get("/go")
def scan_and_go() -> str:
    return render_template("go.html")
