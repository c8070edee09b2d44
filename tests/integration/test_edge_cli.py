"""``aisle edge init``: a bad option is reported as the option, and nothing is left behind."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from aisle.cli import main
from edge.settings import load_settings


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--currency", "XXX"),
        ("--store-id", "no spaces!"),
        ("--timezone", "Mars/Olympus"),
        ("--port", "70000"),
        ("--name", "evil\u202ename"),
    ],
)
def test_a_bad_option_is_named_and_nothing_is_written(tmp_path, option, value):
    target = tmp_path / "store"
    args = ["edge", "init", str(target), "--store-id", "S001", option, value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}" in result.output
    assert "edge.toml" not in result.output
    assert not target.exists()


def test_init_into_an_existing_folder_removes_only_what_it_made_when_it_fails(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "notes.txt").write_text("the manager's notes")
    (target / "edge.sqlite3").mkdir()  # the database cannot be created: init fails late
    result = CliRunner().invoke(main, ["edge", "init", str(target), "--store-id", "S001"])
    assert result.exit_code != 0
    assert sorted(p.name for p in target.iterdir()) == ["edge.sqlite3", "notes.txt"]


def test_a_store_name_with_quotes_and_backslashes_survives_the_toml(tmp_path):
    name = 'Li\'s "Corner" \\ 便利店'
    result = CliRunner().invoke(
        main, ["edge", "init", str(tmp_path / "s"), "--store-id", "S001", "--name", name]
    )
    assert result.exit_code == 0, result.output
    assert load_settings(tmp_path / "s" / "edge.toml", environ={}).store.name == name


@pytest.mark.parametrize(("currency", "decimals"), [("CNY", 2), ("JPY", 0), ("KWD", 3)])
def test_init_writes_a_store_whose_labels_read_in_its_currency(tmp_path, currency, decimals):
    result = CliRunner().invoke(
        main, ["edge", "init", str(tmp_path / "s"), "--store-id", "S001", "--currency", currency]
    )
    assert result.exit_code == 0, result.output
    settings = load_settings(tmp_path / "s" / "edge.toml", environ={})
    assert settings.barcodes.scan_rules(currency).layout.decimals == decimals
