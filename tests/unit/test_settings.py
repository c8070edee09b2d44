from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import EDGE_TOML
from edge.settings import SettingsError, load_settings


def _write(tmp_path: Path, **kw: object) -> Path:
    values = {
        "store_id": "S001",
        "name": "X",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "host": "0.0.0.0",
        "port": 8080,
    }
    values.update(kw)
    path = tmp_path / "edge.toml"
    path.write_text(EDGE_TOML.format(**values))
    return path


def test_the_written_template_loads_with_data_dir_beside_it(tmp_path):
    settings = load_settings(_write(tmp_path), environ={})
    assert settings.store.id == "S001"
    assert settings.data_dir == tmp_path.resolve()
    assert settings.barcodes.variable_measure.plu_length == 6
    assert settings.server.port == 8080


def test_environment_overrides_nested_keys(tmp_path):
    settings = load_settings(
        _write(tmp_path),
        environ={"AISLE_SERVER__PORT": "9090", "AISLE_PAYMENTS__DECLINE_RATE_BP": "250"},
    )
    assert settings.server.port == 9090
    assert settings.payments.decline_rate_bp == 250


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"AISLE_SERVER__PORT": "not-a-port"}, "server.port"),
        ({"AISLE_STORE__CURRENCY": "XXX"}, "store.currency"),
        ({"AISLE_STORE__TIMEZONE": "Mars/Olympus"}, "store.timezone"),
        ({"AISLE_PAYMENTS__SURPRISE": "1"}, "payments.surprise"),
        ({"AISLE_BARCODES__VARIABLE_MEASURE__KIND": "volume"}, "barcodes.variable_measure.kind"),
    ],
)
def test_a_bad_value_names_its_key(tmp_path, env, key):
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_settings(_write(tmp_path), environ=env)


def test_bad_toml_and_missing_file_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\nid=1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad, environ={})
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_an_edge_toml_from_before_the_event_driven_server_still_loads(tmp_path):
    # Stores in the field have worker_connections in their edge.toml: it no longer caps
    # anything, and must not stop the server from starting.
    path = _write(tmp_path)
    path.write_text(path.read_text().replace("[server]\n", "[server]\nworker_connections = 16\n"))
    settings = load_settings(path, environ={})
    assert settings.server.worker_connections == 16
    assert settings.server.header_timeout_s == 10.0


def test_the_server_caps_malloc_arenas_on_linux():
    import sys

    from edge.server import limit_malloc_arenas

    if sys.platform.startswith("linux"):
        assert limit_malloc_arenas(8) is True  # 8: leave this test process as it was


def test_test_and_fault_switches_are_not_taken_for_settings(tmp_path):
    settings = load_settings(
        _write(tmp_path),
        environ={
            "AISLE_TEST_POSTGRES_URL": "postgresql+psycopg://x@y/z",
            "AISLE_FAULT_POINT": "edge.push.mid_ack",
            "AISLE_CONFIG": "elsewhere.toml",
            "AISLE_SERVER__PORT": "9191",
        },
    )
    assert settings.server.port == 9191


def test_an_environment_error_names_the_variable_not_the_file(tmp_path):
    with pytest.raises(SettingsError) as err:
        load_settings(_write(tmp_path), environ={"AISLE_FOO": "1"})
    assert "AISLE_FOO (environment)" in str(err.value)
    assert "edge.toml" not in str(err.value)


def test_a_file_error_names_the_file(tmp_path):
    path = _write(tmp_path, port="99999")
    with pytest.raises(SettingsError) as err:
        load_settings(path, environ={})
    assert f"server.port in {path}" in str(err.value)


@pytest.mark.parametrize(
    "env",
    [
        {"AISLE_BARCODES__VARIABLE_MEASURE__PLU_LENGTH": "7"},  # 1 + 7 + 5 + 1 = 14 digits
        {"AISLE_BARCODES__VARIABLE_MEASURE__VALUE_LENGTH": "3"},  # 11 digits
        {"AISLE_BARCODES__VARIABLE_MEASURE__VALUE_CHECK_DIGIT": "true"},  # 14 digits
        {"AISLE_STORE__CURRENCY": "JPY", "AISLE_BARCODES__VARIABLE_MEASURE__DECIMALS": "2"},
    ],
)
def test_a_scale_label_layout_that_cannot_work_stops_the_server_at_start(tmp_path, env):
    # It used to load, and then every scan, even of a plain EAN, answered 500.
    with pytest.raises(SettingsError) as err:
        load_settings(_write(tmp_path), environ=env)
    named = [name for name in env if name.startswith("AISLE_BARCODES")]
    assert all(name in str(err.value) for name in named)
    assert "variable_measure" in str(err.value)


@pytest.mark.parametrize(("currency", "decimals"), [("CNY", 2), ("JPY", 0), ("KWD", 3)])
def test_a_price_label_reads_in_the_store_currencys_minor_units_by_default(
    tmp_path, currency, decimals
):
    settings = load_settings(_write(tmp_path, currency=currency), environ={})
    rules = settings.barcodes.scan_rules(currency)
    assert rules.minor_exponent == decimals
    assert rules.layout.decimals == decimals
