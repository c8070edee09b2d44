"""HTTP-level refusals (404, 405, 413, ...) in the one error shape, for both servers.

Werkzeug raises these before any view runs; each server renders them as
``{"error": {"code", "message", "details"}}`` with the headers the status calls for (a 405
names the methods the route takes in ``Allow``, as RFC 9110 asks).
"""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import HTTPException

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
}


def http_error(exc: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """(body, status, headers) for a werkzeug HTTP exception."""
    status = exc.code or 500
    code = HTTP_CODES.get(status, "http_error")
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    valid = getattr(exc, "valid_methods", None)
    if status == 405 and valid:
        details["allowed"] = sorted(valid)
        headers["Allow"] = ", ".join(sorted(valid))
    body = {"error": {"code": code, "message": exc.description or exc.name, "details": details}}
    return body, status, headers
