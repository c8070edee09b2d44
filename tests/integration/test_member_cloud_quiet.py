"""After the cloud fails to answer a member call, the store's member calls stay quiet for
``members.online_retry_s``: a checkout does not wait out the timeout at every member code
scanned while the link is down. The cloud here is a real socket that accepts connections and
never answers (a link that went dark), and what is counted is the connections it was sent."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.members.service import find_member, sign_up
from sync.keys import generate_private_key, load_or_create_private_key, public_key_b64
from tests.builders import make_store


class DarkCloud:
    """A listening socket that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def dark() -> Iterator[DarkCloud]:
    cloud = DarkCloud()
    yield cloud
    cloud.close()


def _store(root: Path, cloud: DarkCloud, retry_s: float):
    store = make_store(
        root,
        **{"members.online_timeout_s": 0.2, "members.online_retry_s": retry_s},
    )
    load_or_create_private_key(store.settings.sync_key_path)
    with sqlite3.connect(store.settings.database_path) as conn:
        conn.execute(
            "INSERT INTO cloud_link (id, cloud_url, store_id, cloud_public_key, protocol_version, "
            "max_batch_events, max_batch_bytes, enrolled_at) VALUES (1, ?, 'S001', ?, 1, 1000, "
            "2097152, '2026-11-27 08:00:00.000000')",
            (f"http://127.0.0.1:{cloud.port}", public_key_b64(generate_private_key())),
        )
    return store


def _sign_up_and_find(store, times: int) -> list[bool]:
    ctx = store.ctx
    view, _ = sign_up(
        ctx.db,
        ctx.members_keyring,
        cloud_key=public_key_b64(generate_private_key()),
        store_id="S001",
        phone="13700000001",
        name=None,
        device_id=store.devices["kiosk"],
        recruited_by=None,
        region="CN",
        now=store.clock.now(),
        cloud=ctx.member_cloud,
    )
    found = []
    for _ in range(times):
        member, online = find_member(
            ctx.db,
            ctx.members_keyring,
            view.code or "",
            region="CN",
            now=store.clock.now(),
            cloud=ctx.member_cloud,
        )
        assert member.id == view.id  # the store's own copy answers
        found.append(online)
    return found


def _settle(cloud: DarkCloud, at_least: int) -> int:
    """The connections the dark cloud was sent (accepts land on their own thread)."""
    deadline = time.monotonic() + 5
    while len(cloud.accepted) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(cloud.accepted)


def test_after_a_timeout_member_calls_go_to_the_stores_copy_for_the_quiet_time(
    tmp_path: Path, dark: DarkCloud
) -> None:
    store = _store(tmp_path / "s", dark, retry_s=600)
    # The sign-up waited out the timeout once; the five lookups after it did not try the cloud.
    assert _sign_up_and_find(store, 5) == [False] * 5
    assert _settle(dark, 1) == 1


def test_after_the_quiet_time_the_store_asks_the_cloud_again(
    tmp_path: Path, dark: DarkCloud
) -> None:
    store = _store(tmp_path / "s", dark, retry_s=0.3)
    assert _sign_up_and_find(store, 1) == [False]
    assert _settle(dark, 1) == 1  # the sign-up tried; the lookup right after it did not
    time.sleep(0.4)
    ctx = store.ctx
    _, online = find_member(
        ctx.db,
        ctx.members_keyring,
        _only_code(store),
        region="CN",
        now=store.clock.now(),
        cloud=ctx.member_cloud,
    )
    assert not online
    assert _settle(dark, 2) == 2


def test_with_no_quiet_time_every_call_asks_the_cloud(tmp_path: Path, dark: DarkCloud) -> None:
    store = _store(tmp_path / "s", dark, retry_s=0)
    assert _sign_up_and_find(store, 2) == [False, False]
    assert _settle(dark, 3) == 3


def _only_code(store) -> str:
    with sqlite3.connect(store.settings.database_path) as conn:
        (code,) = conn.execute("SELECT code FROM members").fetchone()
    return str(code)


def test_without_the_stores_key_member_calls_stay_quiet_too(
    tmp_path: Path, dark: DarkCloud, caplog: pytest.LogCaptureFixture
) -> None:
    """A store whose key file went missing cannot sign a member call: it says so once, and its
    calls go to its own copy for the quiet time instead of reading the key again at each."""
    store = _store(tmp_path / "s", dark, retry_s=600)
    store.settings.sync_key_path.unlink()
    with caplog.at_level("WARNING", logger="edge.members.online"):
        assert _sign_up_and_find(store, 4) == [False] * 4
    said = [r for r in caplog.records if "member calls go without the cloud" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert _settle(dark, 0) == 0


def test_once_the_sync_job_reaches_the_cloud_again_the_quiet_time_ends(
    tmp_path: Path, dark: DarkCloud
) -> None:
    """The link is back when the store's sync job has had an answer from the cloud since the
    member call failed: the next member call asks the cloud, not the store's copy, although the
    quiet time has not run out (a shopper at the first till after an outage is found)."""
    store = _store(tmp_path / "s", dark, retry_s=600)
    assert _sign_up_and_find(store, 1) == [False]
    assert _settle(dark, 1) == 1
    back = datetime.now(UTC) + timedelta(seconds=1)
    with sqlite3.connect(store.settings.database_path) as conn:
        conn.execute(
            "INSERT INTO sync_state (id, acked_seq, consecutive_failures, last_contact_at) "
            "VALUES (1, 0, 0, ?) "
            "ON CONFLICT (id) DO UPDATE SET last_contact_at = excluded.last_contact_at",
            (back.replace(tzinfo=None).isoformat(sep=" "),),
        )
    ctx = store.ctx
    find_member(
        ctx.db,
        ctx.members_keyring,
        _only_code(store),
        region="CN",
        now=store.clock.now(),
        cloud=ctx.member_cloud,
    )
    assert _settle(dark, 2) == 2
