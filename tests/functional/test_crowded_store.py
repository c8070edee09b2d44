"""A store full of devices and a few hostile sockets, against a real ``aisle edge serve``.

The server here runs with short timeouts (headers and bodies within 2 s) so that the bounds
show within a test. The assertions are about liveness, not speed: with the thread-per-connection
server the store used before, 32 idle sockets froze every device for about 77 s, and sixteen
clients dripping a request body froze it for as long as they liked.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Iterator

import pytest

from tests.functional.conftest import Live, create_store, start_server, stop_server
from tests.functional.helpers import MILK_CODE

TIMEOUT_S = 2
#: A device must be answered within this while the store is flooded (the old server took 77 s).
DEVICE_PATIENCE_S = 10


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("crowded")
    store = create_store(root / "S001")
    server = start_server(
        store,
        root / "server.log",
        AISLE_SERVER__HEADER_TIMEOUT_S=str(TIMEOUT_S),
        AISLE_SERVER__BODY_TIMEOUT_S=str(TIMEOUT_S),
    )
    try:
        yield server
    finally:
        stop_server(server)


def _address(live: Live) -> tuple[str, int]:
    host, port = live.base_url.removeprefix("http://").split(":")
    return host, int(port)


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return int(head[9:12]), await reader.readexactly(length)


def _get(path: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: store\r\n{auth}\r\n".encode()


def _post(path: str, body: dict[str, object], token: str) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: store\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection (EOF or reset) within ``within`` seconds."""

    async def until_eof() -> None:
        while await reader.read(65_536):
            pass

    try:
        await asyncio.wait_for(until_eof(), within)
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


def test_devices_are_served_through_a_flood_of_idle_and_dripping_sockets(crowded: Live) -> None:
    host, port = _address(crowded)
    token = crowded.tokens["kiosk"]

    async def run() -> list[float]:
        opened = []
        # 200 sockets that never send a byte, 40 that drip headers, 40 that drip a body.
        for _ in range(200):
            opened.append(await asyncio.open_connection(host, port))
        drippers = []
        for i in range(80):
            reader, writer = await asyncio.open_connection(host, port)
            if i % 2:
                writer.write(b"POST /api/v1/carts HTTP/1.1\r\nHost: store\r\nX-Slow: ")
            else:
                writer.write(
                    b"POST /api/v1/carts HTTP/1.1\r\nHost: store\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"
                )
            drippers.append((reader, writer))
        await asyncio.sleep(0.5)
        reader, writer = await asyncio.open_connection(host, port)
        status, body = await _request(
            reader, writer, _post("/api/v1/carts", {"channel": "kiosk"}, token)
        )
        assert status == 201
        cart = json.loads(body)["id"]
        waits = []
        for _ in range(20):
            for _r, w in drippers:
                if not w.is_closing():
                    w.write(b"a")
            t0 = time.monotonic()
            try:
                status, _ = await asyncio.wait_for(
                    _request(
                        reader,
                        writer,
                        _post(f"/api/v1/carts/{cart}/lines", {"barcode": MILK_CODE}, token),
                    ),
                    DEVICE_PATIENCE_S,
                )
            except (asyncio.IncompleteReadError, ConnectionError):  # closed while quiet
                reader, writer = await asyncio.open_connection(host, port)
                continue
            assert status == 200
            waits.append(time.monotonic() - t0)
            await asyncio.sleep(0.05)
        for _r, w in [*opened, *drippers, (reader, writer)]:
            w.close()
        return waits

    waits = asyncio.run(run())
    assert len(waits) >= 15  # every scan answered (a few may meet a closed keep-alive)
    assert max(waits) < DEVICE_PATIENCE_S


def test_idle_and_half_sent_connections_are_closed_after_the_timeouts(crowded: Live) -> None:
    host, port = _address(crowded)

    async def run() -> dict[str, int]:
        idle = [await asyncio.open_connection(host, port) for _ in range(20)]
        half_headers = []
        half_bodies = []
        for _ in range(10):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: sto")
            half_headers.append((reader, writer))
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                b"POST /api/v1/carts HTTP/1.1\r\nHost: store\r\nContent-Length: 100\r\n\r\n{"
            )
            half_bodies.append((reader, writer))
        # Well after both timeouts, every one of them must have been closed (a slow body gets
        # its 408 first).
        deadline = 4 * TIMEOUT_S + 2
        closed = {
            "idle": sum(await asyncio.gather(*(_closed_by_server(r, deadline) for r, _ in idle))),
            "headers": sum(
                await asyncio.gather(*(_closed_by_server(r, deadline) for r, _ in half_headers))
            ),
        }
        answers = []
        for reader, _ in half_bodies:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), deadline)
                answers.append(int(head[9:12]))
            except (TimeoutError, asyncio.IncompleteReadError):
                answers.append(0)
        for _, writer in [*idle, *half_headers, *half_bodies]:
            writer.close()
        closed["bodies_408"] = answers.count(408)
        return closed

    assert asyncio.run(run()) == {"idle": 20, "headers": 10, "bodies_408": 10}


def test_a_thousand_open_connections_are_all_served(crowded: Live) -> None:
    host, port = _address(crowded)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # this test process holds the thousand client ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))

    async def run() -> list[int]:
        conns = []
        for _ in range(1000):
            conns.append(await asyncio.open_connection(host, port))

        async def twice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
            first, _ = await _request(reader, writer, _get("/healthz"))
            second, _ = await _request(reader, writer, _get("/healthz"))  # same connection
            return first + second

        statuses = await asyncio.gather(*(twice(r, w) for r, w in conns))
        for _, writer in conns:
            writer.close()
        return statuses

    statuses = asyncio.run(run())
    assert statuses == [400] * 1000  # 200 + 200 on each of the 1,000 connections
