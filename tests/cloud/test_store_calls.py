"""A store's online member calls at the cloud, against what else the store is doing there."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.cloud.conftest import _empty_postgres
from tests.cloud.harness import make_cloud


def test_a_member_lookup_does_not_wait_for_the_stores_own_push(
    postgres_url: str, tmp_path: Path
) -> None:
    """A push holds its store's sync state locked while its batch is applied; a member lookup
    from the same store's checkout answers meanwhile (the push records the store's contact)."""
    _empty_postgres(postgres_url)
    cloud = make_cloud(tmp_path / "cloud", postgres_url)
    try:
        store = cloud.store("S001")
        conninfo = make_url(postgres_url).set(drivername="postgresql")
        answered = threading.Event()
        released_first: list[bool] = []
        with psycopg.connect(conninfo.render_as_string(hide_password=False)) as push:
            # What a push's transaction holds while it applies a batch.
            push.execute("SELECT 1 FROM sync_states WHERE store_id = 'S001' FOR UPDATE")

            def release_later() -> None:
                released_first.append(not answered.wait(20))
                push.rollback()

            releaser = threading.Thread(target=release_later)
            releaser.start()
            try:
                lookup = store.signed("GET", "/api/v1/store/members?phone=13800000000")
            finally:
                answered.set()
                releaser.join()
        assert lookup.status_code == 404, lookup.get_json()
        assert lookup.get_json()["error"]["code"] == "unknown_member"
        assert released_first == [False], "the lookup waited for the push to finish"
    finally:
        cloud.close()
