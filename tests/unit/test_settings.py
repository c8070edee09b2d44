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


def test_worker_connections_must_leave_room_for_keep_alive(tmp_path):
    settings = load_settings(_write(tmp_path), environ={})
    assert settings.server.worker_connections == 16
    with pytest.raises(SettingsError, match="worker_connections"):
        load_settings(_write(tmp_path), environ={"AISLE_SERVER__WORKER_CONNECTIONS": "8"})


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
