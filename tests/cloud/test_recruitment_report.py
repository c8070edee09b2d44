"""Per-employee accounting: who recruited how many members in a period, and what those members
spent in their first 90 days, on both databases, against figures worked out by hand."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import event, select

from aisle.cli import main
from cloud.db import Database
from cloud.members import registry
from cloud.members.models import PointsEntry
from cloud.members.reports import recruitment
from cloud.settings import load_settings
from shared.pii import Keyring
from sync.contract import SaleMember
from sync.keys import public_key_b64
from tests.cloud.harness import T0, Cloud, return_event, sale_event, signup_event

STAFF_1, STAFF_2 = "staff-1", "staff-2"


def _pushed(response: Any, count: int) -> None:
    body = response.get_json()
    assert response.status_code == 200, body
    assert (body["applied"], body["quarantined"]) == (count, []), body


def _sale(seq: int, store: str, member_id: str, *, days: float, lines: int, earned: int):
    """A sale of ``lines`` lines (1,001 + 1,002 + 1,003 ... fen) ``days`` after T0."""
    total = sum(1000 + i for i in range(1, lines + 1))
    return sale_event(
        seq,
        store,
        lines=lines,
        at=T0 + timedelta(days=days),
        member=SaleMember(id=member_id, earned=earned, spend=total),
    )


def _chain(cloud: Cloud) -> dict[str, str]:
    """Two stores, two recruiters, a kiosk, a channel; the member ids by letter.

    ====  =====  ==========  ========  ==================================================
    who   store  signed up   by        bought (fen)
    ====  =====  ==========  ========  ==================================================
    A     S001   Nov 25      staff-1   2,003 (-1,001 returned), 1,001 earning 0 points,
                                       1,001 on day 89, 3,006 on day 90 (not counted),
                                       5,000 online
    B     S001   Nov 27      staff-1   1,001
    M1    S002   Nov 20      staff-2   (M2 folded into M1: M2's 1,001)
    M2    S001   Nov 22      staff-1   the same phone as M1, learned later
    M3    S001   Nov 21      staff-1   2,003 (M4 survives the fold: M4's 1,001 too)
    M4    S002   Nov 26      staff-2   the same phone as M3, learned first
    D     S001   Nov 26      kiosk-7   2,003 (a sign-up on a device, no staff member)
    E     S001   Oct 20      staff-1   1,001 in November (signed up before the period)
    F     S002   Nov 28      staff-2   nothing
    G     shop   Nov 25      (online)  4,000 online
    ====  =====  ==========  ========  ==================================================
    """
    key = public_key_b64(cloud.ctx.cloud_key)
    s1, s2 = cloud.store("S001"), cloud.store("S002")
    ids: dict[str, str] = {}

    def signup(letter: str, seq: int, store: str, phone: str, days: float, **kw: Any):
        e = signup_event(seq, store, phone, to=key, at=T0 + timedelta(days=days), **kw)
        ids[letter] = e["aggregate_id"]
        return e

    tablet_2 = {"device_id": "tab-2", "recruited_by": STAFF_2}
    _pushed(
        s2.push(
            [
                signup("M1", 1, "S002", "+8613900000005", -5, **tablet_2),
                signup("M4", 2, "S002", "+8613900000006", 1, **tablet_2),
                signup("F", 3, "S002", "+8613900000007", 3, **tablet_2),
            ]
        ),
        3,
    )
    tablet_1 = {"device_id": "tab-1", "recruited_by": STAFF_1}
    events = [
        signup("A", 1, "S001", "+8613900000001", 0, **tablet_1),
        signup("B", 2, "S001", "+8613900000002", 2, **tablet_1),
        signup("M2", 3, "S001", "+8613900000005", -3, **tablet_1),
        signup("M3", 4, "S001", "+8613900000006", -4, **tablet_1),
        signup("D", 5, "S001", "+8613900000004", 1, device_id="kiosk-7"),
        signup("E", 6, "S001", "+8613900000008", -36, **tablet_1),
    ]
    sale_a1 = _sale(7, "S001", ids["A"], days=1, lines=2, earned=20)
    events += [
        sale_a1,
        _sale(8, "S001", ids["A"], days=10, lines=1, earned=0),
        return_event(9, "S001", sale_a1, at=T0 + timedelta(days=12)),
        _sale(10, "S001", ids["A"], days=89, lines=1, earned=10),
        _sale(11, "S001", ids["A"], days=90, lines=3, earned=30),
        _sale(12, "S001", ids["B"], days=3, lines=1, earned=10),
        _sale(13, "S001", ids["M2"], days=-2, lines=1, earned=10),
        _sale(14, "S001", ids["M3"], days=-3, lines=2, earned=20),
        _sale(15, "S001", ids["M4"], days=2, lines=1, earned=10),
        _sale(16, "S001", ids["D"], days=2, lines=2, earned=20),
        _sale(17, "S001", ids["E"], days=1, lines=1, earned=10),
    ]
    _pushed(s1.push(events), len(events))

    shop = cloud.channel_token("shop")
    signed = cloud.channel(
        shop, "/members", method="POST", key="g", json={"phone": "+8613900000009"}
    )
    assert signed.status_code == 201, signed.get_json()
    ids["G"] = signed.get_json()["id"]
    cloud.clock.advance(days=20)
    for member, order, spend in ((ids["A"], "W1", 5_000), (ids["G"], "W2", 4_000)):
        earned = cloud.channel(
            shop,
            f"/members/{member}/earn",
            method="POST",
            key=order,
            json={"order_id": order, "points": spend // 100, "spend": spend},
        )
        assert earned.status_code == 201, earned.get_json()
    return ids


def _rows(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (r["store_id"], r["recruiter"]["kind"], r["recruiter"]["id"], r["members"], r["spend"])
        for r in report["recruiters"]
    ]


def test_recruiters_members_and_their_first_90_days(cloud: Cloud) -> None:
    ids = _chain(cloud)
    response = cloud.hq("/api/v1/reports/recruitment?from=2026-11-01&to=2026-11-30")
    report = response.get_json()
    assert response.status_code == 200, report
    assert (report["from"], report["to"], report["store"], report["window_days"]) == (
        "2026-11-01",
        "2026-11-30",
        None,
        90,
    )
    assert _rows(report) == [
        # A 2,003 - 1,001 + 1,001 + 1,001 + 5,000 = 8,004; B 1,001; M3 (with M4) 2,003 + 1,001
        ("S001", "device", "kiosk-7", 1, 2_003),
        ("S001", "staff", STAFF_1, 3, 8_004 + 1_001 + 3_004),
        # M1 (with M2's sale) 1,001; F nothing.
        ("S002", "staff", STAFF_2, 2, 1_001),
        (None, "channel", "shop", 1, 4_000),
    ]
    # The sale that earned no points is there with its spend.
    with cloud.ctx.db.read() as session:
        zero = session.execute(
            select(PointsEntry.points, PointsEntry.spend).where(
                PointsEntry.member_id == ids["A"],
                PointsEntry.kind == "earn",
                PointsEntry.points == 0,
            )
        ).all()
        assert [tuple(r) for r in zero] == [(0, 1_001)]


def test_one_store_and_a_shorter_period(cloud: Cloud) -> None:
    _chain(cloud)
    only_s002 = cloud.hq("/api/v1/reports/recruitment?from=2026-11-01&to=2026-11-30&store=S002")
    assert _rows(only_s002.get_json()) == [("S002", "staff", STAFF_2, 2, 1_001)]
    # Nov 22-25: A and G. M2 signed up on Nov 22, but the phone's first sign-up (M1) was on
    # Nov 20, so it is not a recruit of the period.
    short = cloud.hq("/api/v1/reports/recruitment?from=2026-11-22&to=2026-11-25").get_json()
    assert _rows(short) == [
        ("S001", "staff", STAFF_1, 1, 8_004),
        (None, "channel", "shop", 1, 4_000),
    ]
    nothing = cloud.hq("/api/v1/reports/recruitment?from=2025-01-01&to=2025-12-31").get_json()
    assert nothing["recruiters"] == []


def test_the_report_is_one_query(cloud: Cloud) -> None:
    _chain(cloud)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    engine = cloud.ctx.db.reader
    event.listen(engine, "before_cursor_execute", seen)
    try:
        report = recruitment(
            cloud.ctx.db, start=date(2026, 11, 1), end=date(2026, 11, 30), store_id=None
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(report["recruiters"]) == 4
    assert len(statements) == 1, statements


def test_bad_periods_and_callers_are_refused(cloud: Cloud) -> None:
    for query, code in (
        ("", "validation_error"),
        ("?from=2026-11-01", "validation_error"),
        ("?from=2026-11-31&to=2026-12-01", "bad_date"),
        ("?from=01/11/2026&to=2026-12-01", "bad_date"),
        ("?from=2026-12-01&to=2026-11-01", "bad_period"),
        ("?from=2020-01-01&to=2026-12-01", "bad_period"),
    ):
        response = cloud.hq(f"/api/v1/reports/recruitment{query}")
        body = response.get_json()
        assert response.status_code == 422, (query, body)
        assert body["error"]["code"] == code, (query, body)
    shop = cloud.channel_token()
    refused = cloud.client.get(
        "/api/v1/reports/recruitment?from=2026-11-01&to=2026-11-30",
        headers={"Authorization": f"Bearer {shop}"},
    )
    assert refused.status_code == 403


def test_the_report_on_the_command_line(tmp_path: Path, database_url: str) -> None:
    root = tmp_path / "hq"
    runner = CliRunner()
    init = runner.invoke(main, ["cloud", "init", str(root), "--database-url", database_url])
    assert init.exit_code == 0, init.output
    config = str(root / "cloud.toml")
    settings = load_settings(root / "cloud.toml")
    db = Database.open(settings.resolved_database_url)
    try:
        with db.write() as uow:
            keyring = Keyring.load_or_create(settings.members_keyring_path)
            for n, staff in enumerate(("staff-1", "staff-1", None)):
                registry.register(
                    uow.session,
                    keyring,
                    registry.SignUp(
                        phone=f"1380013{n:04d}",
                        store_id="S001",
                        device_id="tab-1",
                        recruited_by=staff,
                    ),
                    region="CN",
                    now=T0,
                )
            uow.commit()
    finally:
        db.dispose()
    args = ["cloud", "reports", "recruitment", "--from", "2026-11-01", "--to", "2026-11-30"]
    result = runner.invoke(main, [*args, "--config", config], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "S001  device tab-1  1 member(s)  spend 0 in 90 days",
        "S001  staff staff-1  2 member(s)  spend 0 in 90 days",
        "3 member(s) from 2026-11-01 to 2026-11-30",
    ]
    bad = runner.invoke(
        main,
        [
            "cloud",
            "reports",
            "recruitment",
            "--from",
            "2026-11-30",
            "--to",
            "2026-11-01",
            "--config",
            config,
        ],
    )
    assert bad.exit_code == 2 and "the period runs" in bad.output
