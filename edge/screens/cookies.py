"""A page's device token: kept in an HttpOnly cookie, set when the page pairs, never seen by the
page's scripts; every write a page sends carries the CSRF token of a second cookie in a header.

A request with ``Authorization: Bearer`` is a device's own client and uses its header only. A
request with the cookie alone came from a page in a browser: its writes must also send
``X-CSRF-Token`` equal to the ``aisle_csrf`` cookie, which another site's page cannot read, so
it cannot forge a write with the store's cookie (both cookies are also ``SameSite=Strict``).
"""

from __future__ import annotations

import hmac
import secrets

from flask import Response, request

from edge.errors import Forbidden
from shared.web import bearer_token

DEVICE_COOKIE = "aisle_device"
CSRF_COOKIE = "aisle_csrf"
CSRF_HEADER = "X-CSRF-Token"
#: A paired page's cookies last as long as a paired token: until the device is revoked.
MAX_AGE_S = 400 * 24 * 3600
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def request_token() -> str | None:
    """The caller's device token: its bearer header, or else a page's cookie (a write from a
    page with a CSRF token that does not match is 403 ``csrf_failed``)."""
    token = bearer_token()
    if token is not None:
        return token
    token = request.cookies.get(DEVICE_COOKIE) or None
    if token is not None and request.method not in _SAFE:
        sent = request.headers.get(CSRF_HEADER, "")
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden(
                "a page's write must send the X-CSRF-Token header its pairing set",
                code="csrf_failed",
            )
    return token


def set_device_cookies(response: Response, token: str) -> None:
    """The page's cookies, once paired: the token (HttpOnly) and a fresh CSRF token."""
    secure = request.is_secure
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="Strict",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        max_age=MAX_AGE_S,
        httponly=False,
        samesite="Strict",
        secure=secure,
        path="/",
    )


#: Every answer's security headers: pages load only the store's own scripts, styles and
#: images, are never framed, and send no referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
