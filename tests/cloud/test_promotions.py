"""HQ's promotions on both databases: written whole through the API or from a JSON or TOML
file, refused with the reason when a promotion's numbers make none (nothing written), and
pulled by every store through the promotions feed, a withdrawal included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from aisle.cli import main
from tests.cloud.harness import Cloud

TEN_OFF_MILK = {
    "id": "milk-10",
    "name": "Milk 10% off",
    "kind": "percent_off",
    "percent_bp": 1000,
    "target": {"skus": ["MILK1L"]},
}
SPEND_100_SAVE_10 = {
    "id": "spend-100",
    "name": "Spend 100, save 10",
    "kind": "threshold",
    "stage": "basket",
    "steps": [{"min": 10_000, "off": 1_000}],
    "window": {"starts": "2026-11-01", "ends": "2026-12-31", "weekdays": [6, 7]},
}


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    body = response.get_json()
    assert response.status_code == status, body
    return dict(body)


def _put(cloud: Cloud, *promotions: dict[str, Any]) -> Any:
    return cloud.hq("/api/v1/promotions", method="PUT", json={"promotions": list(promotions)})


def test_hq_writes_promotions_and_every_store_pulls_them(cloud: Cloud) -> None:
    saved = _ok(_put(cloud, TEN_OFF_MILK, SPEND_100_SAVE_10))["promotions"]
    assert [p["id"] for p in saved] == ["milk-10", "spend-100"]
    assert saved[1]["window"]["weekdays"] == [6, 7]
    assert saved[0]["updated_at"] == cloud.clock.now().isoformat()
    assert _ok(cloud.hq("/api/v1/promotions"))["promotions"] == sorted(saved, key=lambda p: p["id"])
    store = cloud.store("S001")
    seen, cursor, _ = store.pull_all("promotions")
    assert seen == {p["id"]: p for p in saved}
    # A withdrawal reaches the next pull, and only what changed.
    cloud.clock.advance(minutes=5)
    withdrawn = _ok(_put(cloud, {**TEN_OFF_MILK, "active": False}))["promotions"][0]
    again, _, _ = store.pull_all("promotions", cursor)
    assert again == {"milk-10": withdrawn}
    assert again["milk-10"]["active"] is False
    in_force = _ok(cloud.hq("/api/v1/promotions?active=true"))["promotions"]
    assert [p["id"] for p in in_force] == ["spend-100"]
    # A store that pulls for the first time gets a snapshot of every promotion, withdrawn too.
    fresh, _, _ = cloud.store("S002").pull_all("promotions")
    assert set(fresh) == {"milk-10", "spend-100"}
    assert fresh["milk-10"]["active"] is False


def test_promotions_that_make_no_offer_are_refused_and_nothing_is_written(cloud: Cloud) -> None:
    _ok(_put(cloud, TEN_OFF_MILK))
    before = _ok(cloud.hq("/api/v1/promotions"))
    for bad in (
        [{**TEN_OFF_MILK, "percent_bp": 0}],  # takes nothing off
        [{**TEN_OFF_MILK, "percent_bp": 10_001}],
        [{**SPEND_100_SAVE_10, "stage": "line"}],  # a threshold needs the whole basket
        [{**SPEND_100_SAVE_10, "steps": []}],
        [{**SPEND_100_SAVE_10, "window": {"starts": "2026-12-31", "ends": "2026-11-01"}}],
        [{**SPEND_100_SAVE_10, "window": {"starts": "2026-02-30"}}],
        [{**TEN_OFF_MILK, "kind": "bundle", "size": 2, "price": 100, "per_member_limit": 1}],
        [{**TEN_OFF_MILK, "kind": "mystery"}],
        [{**TEN_OFF_MILK, "percent_bp": "1000"}],  # strict: a string is not a number
        [{**TEN_OFF_MILK, "name": "\u202eevil"}],  # no text-direction tricks
        # A good one beside a bad one: all or nothing.
        [{**TEN_OFF_MILK, "name": "changed"}, {**SPEND_100_SAVE_10, "amount": -1}],
        [{**TEN_OFF_MILK, "name": "one"}, {**TEN_OFF_MILK, "name": "two"}],  # which one?
    ):
        refused = _put(cloud, *bad)
        assert refused.status_code == 422, (bad, refused.get_json())
        assert set(refused.get_json()) == {"error"}
    assert _ok(cloud.hq("/api/v1/promotions")) == before
    # Only HQ writes promotions: a store's or a channel's credentials do not.
    token = cloud.channel_token()
    assert cloud.channel(token, "/promotions", method="PUT").status_code in (401, 403, 404)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_line_imports_json_and_toml(tmp_path: Path, database_url: str) -> None:
    root = tmp_path / "hq"
    _cli("cloud", "init", str(root), "--database-url", database_url)
    config = str(root / "cloud.toml")
    as_json = tmp_path / "week48.json"
    as_json.write_text(
        '{"promotions": [{"id": "milk-10", "name": "Milk 10% off", "kind": "percent_off", '
        '"percent_bp": 1000, "target": {"skus": ["MILK1L"]}}]}'
    )
    assert "1 promotion(s) written: 1 in force" in _cli(
        "cloud", "promotions", "import", str(as_json), "--config", config
    )
    as_toml = tmp_path / "week48.toml"
    as_toml.write_text(
        "[[promotions]]\n"
        'id = "spend-100"\nname = "Spend 100, save 10"\nkind = "threshold"\nstage = "basket"\n'
        "steps = [{min = 10000, off = 1000}]\n"
        "[promotions.window]\nweekdays = [6, 7]\n"
        "[[promotions]]\n"
        'id = "milk-10"\nname = "Milk 10% off"\nkind = "percent_off"\npercent_bp = 1000\n'
        "active = false\n"
    )
    assert "2 promotion(s) written: 1 in force, 1 withdrawn" in _cli(
        "cloud", "promotions", "import", str(as_toml), "--config", config
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[[promotions]]\nid = "x"\nname = "x"\nkind = "every"\nstage = "basket"\n')
    refused = CliRunner().invoke(
        main, ["cloud", "promotions", "import", str(bad), "--config", config]
    )
    assert refused.exit_code != 0
    assert "promotion 0" in refused.output and "amount must be positive" in refused.output
