"""A fault-injecting HTTP proxy between a store and the cloud, on real sockets.

Each request the store sends gets the next fault from a plan: pass it through, drop it, drop the
answer after the cloud acted on it, send it twice, hold it and deliver it later (after newer
ones: reordering), delay it past the client's timeout, cut the answer short, or answer 502/503
itself. The proxy speaks just enough HTTP/1.1 for ``requests`` and gunicorn: Content-Length
bodies, keep-alive connections.
"""

from __future__ import annotations

import contextlib
import random
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable

FAULTS = (
    "pass",
    "drop_request",
    "drop_response",
    "duplicate",
    "hold",
    "delay",
    "truncate",
    "bad_gateway",
    "unavailable",
)


def _read_message(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """One HTTP message (head + Content-Length body) from ``sock``; None when it closed."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    head_end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buffer) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    message = bytes(buffer[: head_end + length])
    del buffer[: head_end + length]
    return message


def _canned(status: int, reason: str) -> bytes:
    body = f"<html><body>{status} {reason}</body></html>".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class FaultProxy:
    """``with FaultProxy(upstream_port, plan) as proxy: proxy.url ...``"""

    def __init__(
        self,
        upstream_port: int,
        plan: Callable[[], str] | None = None,
        *,
        delay_s: float = 2.0,
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.plan = plan or (lambda: "pass")
        self.delay_s = delay_s
        self.seen: Counter[str] = Counter()
        self._held: list[bytes] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, request: bytes) -> bytes | None:
        with socket.create_connection(self.upstream, timeout=30) as upstream:
            upstream.sendall(request)
            return _read_message(upstream, bytearray())

    def _deliver_held(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for request in held:
            with contextlib.suppress(OSError):
                self._forward(request)

    def _serve(self, client: socket.socket) -> None:
        buffer = bytearray()
        while True:
            try:
                request = _read_message(client, buffer)
            except OSError:
                return
            if request is None:
                return
            with self._lock:
                fault = self.plan()
                self.seen[fault] += 1
            if fault == "drop_request":
                return  # the connection closes: the store never hears back
            if fault == "hold":
                with self._lock:
                    self._held.append(request)  # delivered after a newer request
                client.sendall(_canned(503, "Service Unavailable"))
                return
            if fault in ("bad_gateway", "unavailable"):
                status = (502, "Bad Gateway") if fault == "bad_gateway" else (503, "Unavailable")
                client.sendall(_canned(*status))
                return
            if fault == "delay":
                time.sleep(self.delay_s)  # longer than the store waits; the cloud still acts
            try:
                response = self._forward(request)
                if fault == "duplicate":
                    self._forward(request)
            except OSError:
                return
            self._deliver_held()
            if response is None or fault in ("drop_response", "delay"):
                return
            try:
                if fault == "truncate":
                    client.sendall(response[: max(1, len(response) * 2 // 3)])
                    return
                client.sendall(response)
            except OSError:
                return


def random_plan(seed: int, *, pass_share: float = 0.4) -> Callable[[], str]:
    """Faults drawn at random, with ``pass_share`` of requests going through untouched."""
    rng = random.Random(seed)
    faults = [f for f in FAULTS if f != "pass"]

    def next_fault() -> str:
        return "pass" if rng.random() < pass_share else rng.choice(faults)

    return next_fault


class Link:
    """A proxy's plan set by hand: the fault ``fault`` names for every request until changed
    (``pass``, or ``unavailable`` for a link that is down)."""

    def __init__(self) -> None:
        self.fault = "pass"

    def __call__(self) -> str:
        return self.fault
