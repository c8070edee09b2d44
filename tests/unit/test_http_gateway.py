"""The gateway between granian and the WSGI app: the environ it builds and the bodies it takes.

granian's RSGI scope and protocol objects are replaced by small stand-ins that behave the same
way (a scope with the request's fields, a protocol that yields the body in chunks, possibly
slowly, and records the one answer).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, request

from edge.http_gateway import Gateway


class Headers:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def get(self, key: str, default: Any = None) -> Any:
        return next((v for k, v in self._items if k == key), default)

    def __contains__(self, key: str) -> bool:
        return any(k == key for k, _ in self._items)


@dataclass
class Scope:
    method: str = "POST"
    path: str = "/echo"
    query_string: str = ""
    headers: Headers = field(default_factory=lambda: Headers([]))
    proto: str = "http"
    http_version: str = "1.1"
    scheme: str = "http"
    server: str = "127.0.0.1:8080"
    client: str = "10.0.0.7:51234"


class Proto:
    def __init__(self, chunks: list[bytes], delay: float = 0.0) -> None:
        self.chunks, self.delay = chunks, delay
        self.answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    async def _gen(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await asyncio.sleep(self.delay)
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen()

    async def __call__(self) -> bytes:
        return b"".join([chunk async for chunk in self._gen()])

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, headers, body)


def echo_app() -> Flask:
    app = Flask("echo")

    @app.route("/<path:anything>", methods=["GET", "POST"])
    def echo(anything: str) -> dict[str, Any]:
        return {
            "path": request.path,
            "args": request.args.to_dict(flat=False),
            "body": request.get_data(as_text=True),
            "x": request.headers.get("X-Test"),
            "cookie": request.headers.get("Cookie"),
            "remote": request.remote_addr,
            "length": request.content_length,
        }

    return app


def serve(scope: Scope, proto: Proto, **kw: Any) -> tuple[int, dict[str, str], Any]:
    options = {"threads": 2, "max_body": 1000, "body_timeout_s": 1.0, **kw}
    gateway = Gateway(echo_app(), **options)
    asyncio.run(gateway.__rsgi__(scope, proto))
    gateway.pool.shutdown()
    assert proto.answer is not None
    status, headers, body = proto.answer
    lowered = {k.lower(): v for k, v in headers}
    parsed = json.loads(body) if body else None
    return status, lowered, parsed


def test_the_app_sees_the_request_as_any_wsgi_server_would_give_it():
    scope = Scope(
        path="/a/€ b/c",  # granian hands the path percent-decoded, as UTF-8 text
        query_string="q=%E2%82%AC&q=2&x=%20",
        headers=Headers(
            [
                ("content-length", "11"),
                ("x-test", "1"),
                ("x-test", "2"),
                ("cookie", "a=1"),
                ("cookie", "b=2"),
            ]
        ),
    )
    status, _, body = serve(scope, Proto([b"hello", b" world"]))
    assert status == 200
    assert body["path"] == "/a/€ b/c"
    assert body["args"] == {"q": ["€", "2"], "x": [" "]}
    assert body["body"] == "hello world"
    assert body["x"] == "1, 2"
    assert body["cookie"] == "a=1; b=2"
    assert body["remote"] == "10.0.0.7"
    assert body["length"] == 11


def test_a_body_larger_than_the_app_takes_is_refused_before_it_is_read():
    proto = Proto([b"x" * 10])
    status, headers, body = serve(
        Scope(headers=Headers([("content-length", "5000")])), proto, max_body=1000
    )
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert headers["connection"] == "close"


def test_a_chunked_body_that_grows_too_large_is_refused():
    proto = Proto([b"x" * 600, b"x" * 600])
    status, _, body = serve(Scope(headers=Headers([("transfer-encoding", "chunked")])), proto)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")


def test_a_body_that_drips_is_answered_408_without_the_app():
    proto = Proto([b"{"] * 50, delay=0.05)  # 2.5 s of body against a 0.5 s bound
    status, headers, body = serve(
        Scope(headers=Headers([("content-length", "50")])), proto, body_timeout_s=0.5
    )
    assert (status, body["error"]["code"]) == (408, "request_timeout")
    assert set(body["error"]) == {"code", "message", "details"}
    assert headers["connection"] == "close"


def test_a_content_length_that_is_not_a_number_is_a_400():
    status, _, body = serve(Scope(headers=Headers([("content-length", "²")])), Proto([]))
    assert (status, body["error"]["code"]) == (400, "bad_request")


def test_a_get_without_a_body_never_waits_for_one():
    proto = Proto([b"never read"], delay=10)
    status, _, body = serve(Scope(method="GET", path="/x"), proto, body_timeout_s=0.5)
    assert status == 200
    assert body["body"] == ""
