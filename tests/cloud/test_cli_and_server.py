"""The ``aisle cloud`` command line, and the cloud served by gunicorn as a real process that a
store enrolls with, pushes to and pulls from over a real socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from aisle.cli import main
from cloud.migrations import head_revision
from shared.clock import SystemClock
from shared.ids import new_id
from sync.keys import generate_private_key, load_public_key_b64, public_key_b64
from sync.protocol import (
    BATCH_CONTENT_TYPE,
    PullPage,
    PushResult,
    WireEvent,
    canonical_json,
    encode_batch,
    request_target,
)
from sync.signing import sign_request, verify_response
from tests.cloud.harness import catalog_csv, sale_event

START_TIMEOUT_S = 30.0


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _init(tmp_path: Path, database_url: str) -> Path:
    root = tmp_path / "hq"
    out = _cli("cloud", "init", str(root), "--database-url", database_url)
    assert "cloud public key:" in out
    config = root / "cloud.toml"
    assert config.is_file()
    assert (root / "cloud_key.pem").stat().st_mode & 0o777 == 0o600
    return config


def test_cli_manages_stores_catalog_tokens_and_quarantine(tmp_path, database_url):
    config = str(_init(tmp_path, database_url))
    assert f"revision {head_revision()}" in _cli("cloud", "migrate", "--config", config)
    out = _cli(
        "cloud",
        "add-store",
        "S001",
        "--name",
        "Riverside",
        "--format",
        "hypermarket",
        "--area-m2",
        "5200",
        "--config",
        config,
    )
    code = out.strip().splitlines()[-1]
    assert len(code) == 19 and code.count("-") == 3
    token = _cli("cloud", "token", "--role", "hq", "--config", config).strip().splitlines()[-1]
    assert token.startswith("aisle_hq_")
    channel = _cli("cloud", "token", "--role", "channel", "--name", "shop", "--config", config)
    assert channel.strip().splitlines()[-1].startswith("aisle_channel_")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(catalog_csv(5), encoding="utf-8")
    assert "imported 5 products (5 new" in _cli(
        "cloud", "import-catalog", str(catalog), "--config", config
    )
    assert "SKU0001 at store S001: 900" in _cli(
        "cloud", "set-price", "S001", "SKU0001", "900", "--config", config
    )
    assert "no quarantined events" in _cli("cloud", "quarantine", "list", "--config", config)
    assert "store S001 revoked" in _cli("cloud", "revoke-store", "S001", "--config", config)


def test_import_catalog_is_all_or_nothing_with_row_numbers(tmp_path, database_url):
    config = str(_init(tmp_path, database_url))
    catalog = tmp_path / "bad.csv"
    text = catalog_csv(3).splitlines()
    text[2] = text[2].replace(",1002,", ",12.50,")
    text.append("SKU0001,Again,,100,9,x,each,false,")
    catalog.write_text("\n".join(text) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["cloud", "import-catalog", str(catalog), "--config", config])
    assert result.exit_code == 1
    assert "row 3: unit_price '12.50'" in result.output
    assert "row 5:" in result.output
    catalog.write_text(catalog_csv(3), encoding="utf-8")
    assert "(3 new, 0 updated" in _cli("cloud", "import-catalog", str(catalog), "--config", config)
    assert "pruned 0 change rows" in _cli("cloud", "prune-changes", "--config", config)


def test_every_command_needs_a_config():
    result = CliRunner().invoke(main, ["cloud", "token", "--role", "hq"], env={"AISLE_CONFIG": ""})
    assert result.exit_code != 0
    assert "--config" in result.output


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signed(http, method, base, target, key, store_id, body=b""):
    headers = sign_request(
        key, method=method, target=target, store_id=store_id, body=body, now=SystemClock().now()
    )
    if body:
        headers["Content-Type"] = BATCH_CONTENT_TYPE
        headers["Content-Encoding"] = "gzip"
    response = http.request(method, base + target, data=body, headers=headers, timeout=30)
    return response, headers["X-Aisle-Nonce"]


def _listening_workers(master: int, port: int) -> dict[int, set[str]]:
    """The child processes of ``master`` that hold a socket listening on ``port``, each with
    the sockets' inodes."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    holding: dict[int, set[str]] = {}
    for pid in map(int, children):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                holding.setdefault(pid, set()).add(target[8:-1])
    return holding


def test_a_store_enrolls_pushes_and_pulls_over_a_real_socket(tmp_path, database_url):
    config = _init(tmp_path, database_url)
    code = _cli("cloud", "add-store", "S001", "--config", str(config)).strip().splitlines()[-1]
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(catalog_csv(3), encoding="utf-8")
    _cli("cloud", "import-catalog", str(catalog), "--config", str(config))
    token = _cli("cloud", "token", "--role", "hq", "--config", str(config)).splitlines()[-1]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISLE_")}
    log = (tmp_path / "cloud.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aisle",
            "cloud",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if http.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, (tmp_path / "cloud.log").read_text()
            assert time.monotonic() < deadline, "cloud did not start"
            time.sleep(0.1)

        # Each worker listens on a socket of its own, so that the kernel spreads connections.
        sockets = list(_listening_workers(proc.pid, port).values())
        assert len(sockets) == 2 and not sockets[0] & sockets[1], sockets

        key = generate_private_key()
        body = canonical_json(
            {"code": code, "store_public_key": public_key_b64(key), "store_id": "S001"}
        )
        response, _ = _signed(http, "POST", base, "/api/v1/enroll", key, "S001", body)
        assert response.status_code == 200, response.text
        pinned = load_public_key_b64(response.json()["cloud_public_key"])

        events = [WireEvent(**sale_event(seq, "S001")) for seq in range(1, 51)]
        batch = encode_batch("S001", events, batch_id=new_id())
        response, nonce = _signed(http, "POST", base, "/api/v1/sync/push", key, "S001", batch)
        assert response.status_code == 200, response.text
        verify_response(
            pinned,
            request_nonce=nonce,
            status=200,
            body=response.content,
            headers=response.headers,
        )
        result = PushResult.from_dict(response.json())
        assert (result.acked_seq, result.applied) == (50, 50)
        # The same batch again (a lost answer): acknowledged, not applied twice.
        response, _ = _signed(http, "POST", base, "/api/v1/sync/push", key, "S001", batch)
        assert PushResult.from_dict(response.json()).duplicates == 50

        target = request_target("/api/v1/sync/pull", {"feed": "catalog", "limit": 2})
        response, nonce = _signed(http, "GET", base, target, key, "S001")
        assert response.status_code == 200, response.text
        verify_response(
            pinned,
            request_nonce=nonce,
            status=200,
            body=response.content,
            headers=response.headers,
        )
        page = PullPage.from_dict(response.json())
        assert (len(page.changes), page.has_more) == (2, True)

        auth = {"Authorization": f"Bearer {token}"}
        seen, url = [], f"{base}/api/v1/stores/S001/sales?limit=20"
        while url:
            body_json = http.get(url, headers=auth, timeout=30).json()
            seen.extend(s["number"] for s in body_json["sales"])
            url = body_json["next"]
        assert seen == [f"S001-{i:06d}" for i in range(1, 51)]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_init_migrates_the_database_the_environment_names(tmp_path):
    # AISLE_DATABASE_URL overrides the file for every command; init must migrate that database,
    # not the embedded one, or the next command finds no tables.
    elsewhere = tmp_path / "elsewhere.sqlite3"
    env = {"AISLE_DATABASE_URL": f"sqlite:///{elsewhere}"}
    result = CliRunner().invoke(main, ["cloud", "init", str(tmp_path / "c")], env=env)
    assert result.exit_code == 0, result.output
    assert elsewhere.exists()
    assert not (tmp_path / "c" / "cloud.sqlite3").exists()
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(catalog_csv(3))
    config = str(tmp_path / "c" / "cloud.toml")
    imported = CliRunner().invoke(
        main, ["cloud", "import-catalog", str(catalog), "--config", config], env=env
    )
    assert imported.exit_code == 0, imported.output


def test_cloud_toml_is_readable_by_its_owner_only(tmp_path, database_url):
    # It may hold the database's password.
    config = _init(tmp_path, database_url)
    assert (config.stat().st_mode & 0o777) == 0o600
