"""Between granian's event loop and the WSGI app: only whole requests reach a thread.

granian (see :mod:`edge.server`) reads connections and headers in Rust and bounds how long
headers may take. Its own WSGI mode then lets the app read the body from a request thread, and
a client that sends ``Content-Length: 1000`` and then a byte every few seconds holds that thread
for as long as it likes: sixteen such clients stop a store. So the store uses granian's RSGI
interface instead, and this gateway, in the worker's event loop:

1. refuses a declared body larger than the app accepts (413) before reading it;
2. reads the body within ``body_timeout_s`` of the headers (408 otherwise) and at most
   ``max_body`` bytes (413), costing no thread while it waits;
3. then runs the WSGI app on one of ``threads`` threads with the body in memory, and sends
   its answer.

The WSGI environ follows PEP 3333: ``PATH_INFO`` and ``QUERY_STRING`` are the request's bytes
as latin-1 text, header names are ``HTTP_*`` with repeated headers joined by commas. The app
sees the same environ any WSGI server would give it, so it runs unchanged under a plain WSGI
server in tests.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]

_JSON = ("content-type", "application/json")
_CLOSE = ("connection", "close")


def _error(code: str, message: str) -> bytes:
    # The store's one error shape, written by hand: this runs before the app.
    return (f'{{"error": {{"code": "{code}", "message": "{message}", "details": {{}}}}}}').encode()


def _wsgi_text(value: str) -> str:
    """A str the server decoded as UTF-8, as WSGI's "bytes as latin-1" str."""
    try:
        return value.encode("utf-8").decode("latin-1")
    except UnicodeEncodeError:  # lone surrogates: not bytes any client sent
        return value.encode("utf-8", "surrogateescape").decode("latin-1")


def _host_port(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), port


class BodyError(Exception):
    """The body cannot be taken: too large, too slow, or malformed; ``status`` says which."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Gateway:
    """An RSGI application (``__rsgi__``) that runs a WSGI app on whole requests."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        threads: int,
        max_body: int,
        body_timeout_s: float,
        environ: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout_s = body_timeout_s
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="aisle-request")
        self.base: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "SCRIPT_NAME": "",
            **(environ or {}),
        }

    # --- RSGI ---------------------------------------------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called once per worker by granian; nothing to prepare."""

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called when the worker stops: let running requests finish."""
        self.pool.shutdown(wait=True, cancel_futures=False)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            proto.response_bytes(400, [_JSON, _CLOSE], _error("bad_request", "HTTP only"))
            return
        try:
            body = await self._body(scope, proto)
        except BodyError as exc:
            proto.response_bytes(exc.status, [_JSON, _CLOSE], _error(exc.code, exc.message))
            return
        except Exception:  # the client went away mid-body: nobody to answer
            return
        environ = self.environ(scope, body)
        # The request thread sends the answer itself: the client need not wait for this event
        # loop to win the GIL back before its answer leaves.
        await asyncio.wrap_future(self.pool.submit(self._serve, environ, proto))

    def _serve(self, environ: dict[str, Any], proto: Any) -> None:
        status, headers, payload = self._call(environ)
        proto.response_bytes(status, headers, payload)

    async def _body(self, scope: Any, proto: Any) -> bytes:
        declared = scope.headers.get("content-length")
        chunked = "transfer-encoding" in scope.headers
        if declared is not None and not chunked:
            text = declared.strip()
            if not (text.isascii() and text.isdigit()):
                raise BodyError(400, "bad_request", "Content-Length must be a whole number")
            if int(text) > self.max_body:
                raise BodyError(
                    413, "payload_too_large", f"a request body is at most {self.max_body} bytes"
                )
            if int(text) == 0:
                return b""
        elif not chunked:
            return b""  # no length and not chunked: HTTP/1.1 says there is no body
        try:
            async with asyncio.timeout(self.body_timeout_s):
                if chunked:
                    return await self._read_chunks(proto)
                return bytes(await proto())  # the declared length, already bounded
        except TimeoutError:
            raise BodyError(
                408, "request_timeout", f"the body did not arrive within {self.body_timeout_s:g} s"
            ) from None

    async def _read_chunks(self, proto: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > self.max_body:
                raise BodyError(
                    413, "payload_too_large", f"a request body is at most {self.max_body} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    # --- WSGI ---------------------------------------------------------------------------------

    def environ(self, scope: Any, body: bytes) -> dict[str, Any]:
        """The PEP 3333 environ of a request whose body has arrived."""
        server_name, server_port = _host_port(scope.server)
        remote_addr, remote_port = _host_port(scope.client)
        environ = dict(self.base)
        environ.update(
            {
                "REQUEST_METHOD": scope.method,
                "PATH_INFO": _wsgi_text(scope.path),
                "QUERY_STRING": _wsgi_text(scope.query_string),
                "SERVER_NAME": server_name,
                "SERVER_PORT": server_port,
                "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
                "REMOTE_ADDR": remote_addr,
                "REMOTE_PORT": remote_port,
                "wsgi.url_scheme": scope.scheme,
                "wsgi.input": io.BytesIO(body),
                "CONTENT_LENGTH": str(len(body)),
            }
        )
        for name, value in scope.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue  # the body is whole: its length is what the app reads
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            text = _wsgi_text(value)
            if key in environ:
                text = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + text
            environ[key] = text
        return environ

    def _call(self, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
        """Run the app on this thread; its whole answer as (status, headers, body)."""
        answer: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(status: str, headers: Headers, exc_info: Any = None) -> Any:
            if exc_info is not None and answer:
                raise exc_info[1].with_traceback(exc_info[2])
            answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers
            return written.append

        try:
            chunks = self.app(environ, start_response)
            try:
                body = b"".join([*written, *chunks])
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("the app failed outside its own error handling")
            return 500, [_JSON], _error("internal_error", "internal error; nothing was applied")
        return answer["status"], answer["headers"], body
