"""One stuck writer never hangs every device: a write that cannot get the store's write lock in
time is refused with 503 ``store_busy`` and nothing is written; reads go on."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.builders import MILK, make_app_for, make_store


def test_a_writer_stuck_in_another_process_gets_a_503_not_a_hang(tmp_path):
    store = make_store(tmp_path / "s", **{"server.write_lock_timeout_s": 0.3})
    app = make_app_for(store)
    client = app.test_client()
    kiosk = {"Authorization": f"Bearer {store.tokens['kiosk']}"}
    cart = client.post("/api/v1/carts", json={"channel": "kiosk"}, headers=kiosk).get_json()
    lock_file = store.settings.database_path.with_name("edge.sqlite3.writelock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock_file)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        response = client.post(
            f"/api/v1/carts/{cart['id']}/lines", json={"barcode": MILK["barcodes"]}, headers=kiosk
        )
        waited = time.monotonic() - started
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "store_busy"
        assert response.headers["Retry-After"] == "1"
        assert waited < 10  # refused after its bound, not hung
        # Reads go on meanwhile, and nothing was written.
        again = client.get(f"/api/v1/carts/{cart['id']}", headers=kiosk)
        assert again.status_code == 200 and again.get_json()["lines"] == []
    finally:
        holder.kill()
        holder.communicate()
    # The stuck writer gone, writing works again.
    response = client.post(
        f"/api/v1/carts/{cart['id']}/lines", json={"barcode": MILK["barcodes"]}, headers=kiosk
    )
    assert response.status_code == 200
    store.db.dispose()
