"""A typed HTTP client for the edge's device API (v1), as a kiosk, phone or handheld uses it.

Exceptions form one tree so a device can branch on what went wrong::

    AisleClientError              anything this client raises on purpose
    +-- AisleHTTPError            the server answered with a 4xx/5xx; carries status, code,
    |                             message and details from ``{"error": {...}}``
    +-- AisleConnectionError      no answer: refused, reset, DNS, or a timeout
    +-- AisleProtocolError        a 2xx answer whose body is not the JSON the contract promises

Only :meth:`AisleClient.checkout` retries by itself: it carries an ``Idempotency-Key`` and the
server promises that a retry with the same key returns the first result, so a lost answer can be
asked for again without selling twice. Other writes are not retried, because without that promise
a retry could apply them twice.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

#: ``(operation, seconds)``: called once per HTTP exchange that got an answer, whatever its status.
LatencySink = Callable[[str, float], None]

#: Connections kept open per host; a device has at most a few requests in flight.
POOL_MAXSIZE = 4

#: Extra attempts :meth:`AisleClient.checkout` makes after a connection error or timeout.
CHECKOUT_RETRIES = 3

#: First pause between checkout attempts; doubles each time (0.1 s, 0.2 s, 0.4 s).
CHECKOUT_BACKOFF_S = 0.1


class AisleClientError(Exception):
    """Base of every error this client raises, so a device can catch them all in one place."""


class AisleHTTPError(AisleClientError):
    """The server answered with an error status; ``code`` is stable and meant for branching."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    @classmethod
    def from_body(cls, status: int, body: bytes | str | dict[str, Any] | None) -> AisleHTTPError:
        """Build the error from a response body in the contract's ``{"error": {...}}`` shape.

        A body in another shape (a proxy's HTML page, an empty 502) still gives an error, with
        the code ``http_<status>``, so callers never have to handle a second kind of failure.
        """
        fallback = f"http_{status}"
        data: Any = body
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        if isinstance(body, str):
            try:
                data = json.loads(body) if body.strip() else None
            except ValueError:
                return cls(status, fallback, body.strip()[:200] or f"HTTP {status}")
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            return cls(status, fallback, f"HTTP {status} without an error body")
        code = error.get("code")
        message = error.get("message")
        details = error.get("details")
        return cls(
            status,
            code if isinstance(code, str) and code else fallback,
            message if isinstance(message, str) else f"HTTP {status}",
            details if isinstance(details, dict) else {},
        )


class AisleConnectionError(AisleClientError):
    """No answer from the server: connection refused or reset, name lookup failed, or timeout."""


class AisleProtocolError(AisleClientError):
    """A success status with a body that is not a JSON object; the server broke the contract."""


class AisleClient:
    """One device's connection to an edge server; every method returns the decoded JSON object.

    The client keeps a small connection pool (a device talks to one server, a few requests at a
    time) and sets a timeout on every request, because a kiosk must never hang on a dead server.
    Pass ``session`` to swap the transport (tests, proxies); the client then does not close it.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        latency_sink: LatencySink | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.latency_sink = latency_sink
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            # max_retries=0: retrying is a decision about idempotency, made per method below.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_MAXSIZE, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session

    def close(self) -> None:
        """Close the pooled connections, if this client created the session."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> AisleClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and decode its answer; map every failure into the exception tree."""
        all_headers = {"Accept": "application/json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if headers:
            all_headers.update(headers)
        url = self.base_url + path
        started = time.perf_counter()
        try:
            response = self.session.request(
                method, url, json=json_body, headers=all_headers, timeout=self.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AisleConnectionError(f"{method} {path}: {exc}") from exc
        except requests.RequestException as exc:
            # Bad URL, too many redirects...: a setup mistake rather than a flaky network.
            raise AisleClientError(f"{method} {path}: {exc}") from exc
        if self.latency_sink is not None:
            self.latency_sink(operation, time.perf_counter() - started)
        if response.status_code >= 400:
            raise AisleHTTPError.from_body(response.status_code, response.content)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            raise AisleProtocolError(
                f"{method} {path}: {response.status_code} answer is not JSON"
            ) from exc
        if not isinstance(data, dict):
            raise AisleProtocolError(f"{method} {path}: answer is not a JSON object")
        return data

    @staticmethod
    def _seg(value: str | int) -> str:
        """Quote one path segment, so a scanned code can never change the route."""
        return quote(str(value), safe="")

    # -- health and catalog -----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: the server is up and its database answers."""
        return self._request("health", "GET", "/healthz")

    def product_by_barcode(self, code: str) -> dict[str, Any]:
        """Look up the product and price for a scanned code (404 unknown, 422 bad check digit)."""
        return self._request(
            "product_by_barcode", "GET", f"/api/v1/products/by-barcode/{self._seg(code)}"
        )

    # -- carts ------------------------------------------------------------------------------

    def create_cart(self, channel: str) -> dict[str, Any]:
        """Open a cart on ``channel`` (``kiosk`` or ``scan_to_buy``); returns the empty cart."""
        return self._request("create_cart", "POST", "/api/v1/carts", json_body={"channel": channel})

    def get_cart(self, cart_id: str) -> dict[str, Any]:
        """The cart as the server prices it now."""
        return self._request("get_cart", "GET", f"/api/v1/carts/{self._seg(cart_id)}")

    def add_line(self, cart_id: str, barcode: str, quantity: int | None = None) -> dict[str, Any]:
        """Add a scanned item (the server defaults the quantity to 1); returns the repriced cart."""
        body: dict[str, Any] = {"barcode": barcode}
        if quantity is not None:
            body["quantity"] = quantity
        return self._request(
            "add_line", "POST", f"/api/v1/carts/{self._seg(cart_id)}/lines", json_body=body
        )

    def update_line(self, cart_id: str, line_id: str, quantity: int) -> dict[str, Any]:
        """Change a line's quantity; returns the repriced cart."""
        return self._request(
            "update_line",
            "PATCH",
            f"/api/v1/carts/{self._seg(cart_id)}/lines/{self._seg(line_id)}",
            json_body={"quantity": quantity},
        )

    def remove_line(self, cart_id: str, line_id: str) -> dict[str, Any]:
        """Remove a line; returns the repriced cart (``{}`` if the server answers 204)."""
        return self._request(
            "remove_line",
            "DELETE",
            f"/api/v1/carts/{self._seg(cart_id)}/lines/{self._seg(line_id)}",
        )

    def approve(self, cart_id: str) -> dict[str, Any]:
        """Attendant approval of age-restricted items; needs a tablet or manager token."""
        return self._request(
            "approve", "POST", f"/api/v1/carts/{self._seg(cart_id)}/approvals", json_body={}
        )

    def checkout(
        self,
        cart_id: str,
        payments: list[dict[str, Any]],
        idempotency_key: str | None = None,
        *,
        retries: int = CHECKOUT_RETRIES,
    ) -> dict[str, Any]:
        """Pay and close the cart; returns ``{"sale", "receipt", "exit_pass"}``.

        A connection error or timeout is retried up to ``retries`` times with the same
        ``Idempotency-Key`` (a fresh uuid4 when none is given): the first attempt may have sold
        and only its answer been lost, and the server answers a repeat with the first result.
        HTTP errors are not retried; they are answers.
        """
        key = idempotency_key or str(uuid.uuid4())
        path = f"/api/v1/carts/{self._seg(cart_id)}/checkout"
        body = {"payments": payments}
        attempt = 0
        while True:
            try:
                return self._request(
                    "checkout", "POST", path, json_body=body, headers={"Idempotency-Key": key}
                )
            except AisleConnectionError:
                if attempt >= retries:
                    raise
                time.sleep(CHECKOUT_BACKOFF_S * 2**attempt)
                attempt += 1

    # -- members and points -----------------------------------------------------------------

    def sign_up_member(self, phone: str, name: str | None = None) -> dict[str, Any]:
        """Sign a member up (works offline); a phone the store or the chain knows answers its
        member. Returns ``{id, code, masked_phone, tier, balance, provisional}``."""
        body: dict[str, Any] = {"phone": phone}
        if name is not None:
            body["name"] = name
        return self._request("sign_up_member", "POST", "/api/v1/members", json_body=body)

    def attach_member(self, cart_id: str, phone_or_code: str) -> dict[str, Any]:
        """Attach the member a phone number or member code names; returns the cart, whose
        ``member.offline`` says whether the balance is the cloud's now or the store's copy."""
        return self._request(
            "attach_member",
            "PUT",
            f"/api/v1/carts/{self._seg(cart_id)}/member",
            json_body={"member_code": phone_or_code},
        )

    def spend_points(self, cart_id: str, points: int) -> dict[str, Any]:
        """Let the cart's member pay part of it in points (0: none); returns the cart, whose
        ``due`` is what is left to pay. 409 ``points_insufficient`` or ``points_offline_limit``
        say how many may be spent."""
        return self._request(
            "spend_points",
            "PUT",
            f"/api/v1/carts/{self._seg(cart_id)}/points",
            json_body={"points": points},
        )

    # -- coupons ---------------------------------------------------------------------------

    def claim_coupon(self, member_id: str, claim: str) -> dict[str, Any]:
        """Claim a coupon for the member with what a campaign's claim QR holds (online only);
        returns the coupon with its ``code``, ``typed_id`` and ``qr_svg``."""
        return self._request(
            "claim_coupon",
            "POST",
            f"/api/v1/members/{self._seg(member_id)}/coupons",
            json_body={"claim": claim},
        )

    def member_coupons(self, member_id: str) -> dict[str, Any]:
        """The member's coupons at the chain: ``{"coupons": [...]}``."""
        return self._request(
            "member_coupons", "GET", f"/api/v1/members/{self._seg(member_id)}/coupons"
        )

    def apply_coupon(self, cart_id: str, code: str) -> dict[str, Any]:
        """Put a coupon on the cart by its code (its QR, its typed id, or a campaign's public
        code); returns the cart with ``coupons`` and the offer among ``discounts``."""
        return self._request(
            "apply_coupon",
            "POST",
            f"/api/v1/carts/{self._seg(cart_id)}/coupons",
            json_body={"code": code},
        )

    def remove_coupon(self, cart_id: str, coupon_id: str) -> dict[str, Any]:
        return self._request(
            "remove_coupon",
            "DELETE",
            f"/api/v1/carts/{self._seg(cart_id)}/coupons/{self._seg(coupon_id)}",
        )

    # -- exit, sales, returns ---------------------------------------------------------------

    def verify_exit_pass(self, token: str) -> dict[str, Any]:
        """Check a scan-to-buy exit pass at the door: ``valid``, ``sale_id``, ``audit``."""
        return self._request(
            "verify_exit_pass", "POST", "/api/v1/exit-passes/verify", json_body={"token": token}
        )

    def get_sale(self, sale_id: str) -> dict[str, Any]:
        """A completed sale with its lines."""
        return self._request("get_sale", "GET", f"/api/v1/sales/{self._seg(sale_id)}")

    def create_return(
        self,
        sale_id: str,
        lines: list[dict[str, Any]],
        reason: str,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Refund ``[{"line_id", "quantity"}]`` of a sale; stock, points and coupons follow.

        Sent with an ``Idempotency-Key`` so the caller may repeat it safely with the same key;
        not retried automatically.
        """
        return self._request(
            "create_return",
            "POST",
            f"/api/v1/sales/{self._seg(sale_id)}/returns",
            json_body={"lines": lines, "reason": reason},
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )

    # -- stock, sync, reports ---------------------------------------------------------------

    def stock(self, sku: str) -> dict[str, Any]:
        """On-hand quantity of one SKU."""
        return self._request("stock", "GET", f"/api/v1/stock/{self._seg(sku)}")

    def stock_movement(
        self,
        sku: str,
        quantity: int,
        kind: str,
        reason: str,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Record a receipt, shrink or adjustment; ``kind`` and ``reason`` are the server's codes.

        Sent with an ``Idempotency-Key`` so the caller may repeat it safely with the same key;
        not retried automatically.
        """
        return self._request(
            "stock_movement",
            "POST",
            "/api/v1/stock/movements",
            json_body={"sku": sku, "quantity": quantity, "kind": kind, "reason": reason},
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )

    # -- pairing (a manager's, a tablet's) --------------------------------------------------

    def pairing_code(self, role: str, name: str = "", ttl_s: int | None = None) -> dict[str, Any]:
        """``POST /api/v1/pairing-codes``: six digits that pair one new device of ``role``."""
        body: dict[str, Any] = {"role": role, "name": name}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self._request(
            "pairing_code",
            "POST",
            "/api/v1/pairing-codes",
            json_body=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )

    def store_qr(self) -> dict[str, Any]:
        """``POST /api/v1/store-qr``: the door poster's scan-and-go link (the old one retires)."""
        return self._request(
            "store_qr", "POST", "/api/v1/store-qr", headers={"Idempotency-Key": uuid.uuid4().hex}
        )

    def sync_status(self) -> dict[str, Any]:
        """The store's link to the cloud: ``online``, ``outbox_pending`` and last push/pull."""
        return self._request("sync_status", "GET", "/api/v1/sync/status")

    def day_report(self) -> dict[str, Any]:
        """Today's totals: sales, items, revenue, returns, stock movements, outbox depth."""
        return self._request("day_report", "GET", "/api/v1/reports/day")
