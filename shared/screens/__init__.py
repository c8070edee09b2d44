"""A page's token (a store's paired device, HQ's token at the cloud): kept in an HttpOnly
cookie, set when the page signs in, never seen by the page's scripts; every write a page sends
carries the CSRF token of a second cookie in a header.

A request with ``Authorization: Bearer`` is an API client and uses its header only. A request
with the cookie alone came from a page in a browser: its writes must also send
``X-CSRF-Token`` equal to the ``aisle_csrf`` cookie, which another site's page cannot read, so
it cannot forge a write with the server's cookie (both cookies are also ``SameSite=Strict``).
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, Response, request

from shared.errors import Forbidden
from shared.web import bearer_token

#: The cookie holding a page's token: the store's device token, or HQ's at the cloud.
TOKEN_COOKIE = "aisle_device"  # noqa: S105 (a cookie's name, not a secret)
CSRF_COOKIE = "aisle_csrf"
CSRF_HEADER = "X-CSRF-Token"
#: A page's cookies last as long as its token: until it is revoked.
MAX_AGE_S = 400 * 24 * 3600
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def request_token() -> str | None:
    """The caller's token: its bearer header, or else a page's cookie (a write from a page with
    a CSRF token that does not match is 403 ``csrf_failed``)."""
    token = bearer_token()
    if token is not None:
        return token
    token = request.cookies.get(TOKEN_COOKIE) or None
    if token is not None and request.method not in _SAFE:
        sent = request.headers.get(CSRF_HEADER, "")
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden(
                "a page's write must send the X-CSRF-Token header its sign-in set",
                code="csrf_failed",
            )
    return token


def set_token_cookies(response: Response, token: str) -> None:
    """The page's cookies, once signed in: the token (HttpOnly) and a fresh CSRF token."""
    secure = request.is_secure
    response.set_cookie(
        TOKEN_COOKIE,
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


#: Every answer's security headers: pages load only the server's own scripts, styles and
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


def clear_token_cookies(response: Response) -> None:
    """Sign the page out: both cookies go."""
    for name in (TOKEN_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="Strict")


#: The scripts and styles every page shares (the API helper, money, the base styles), served
#: by the store and the cloud alike at ``/screens/common/``.
common = Blueprint(
    "common_screens",
    __name__,
    static_folder="static",
    static_url_path="/screens/common",
)
