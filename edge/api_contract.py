"""The device API's contract: each route declares its roles, connectivity class and schemas once.

``ApiBlueprint.endpoint`` registers a view together with what it promises. The same declaration
authenticates the caller, refuses the wrong role, parses and validates the JSON body with the
route's pydantic model (strict: no silent coercion of ``"2"`` into ``2``, unknown fields refused),
and feeds the OpenAPI document and the connectivity table. A route cannot exist without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from flask import current_app, request
from pydantic import BaseModel, Field
from werkzeug.routing import BaseConverter

from edge.auth.staff import STAFF_COOKIE, STAFF_HEADER, with_staff
from edge.errors import Forbidden, NotFound
from edge.idempotency import (
    KEY_MAX,
    KEY_PATTERN,
    FirstAnswer,
    Retryable,
    SameKeyInFlight,
    check_key,
    first_answer,
)
from shared.errors import ERROR_SCHEMA
from shared.openapi import openapi_document as build_openapi_document
from shared.openapi import path_parameters, query_parameters
from shared.screens import request_token
from shared.text import FREE_TEXT_PATTERN
from shared.web import DeclaredBlueprint, DeclaredRoute, RequestBody, parse_query
from shared.web import parse_body as parse_json_body

__all__ = ["ERROR_SCHEMA", "RequestBody", "parse_query"]

M = TypeVar("M", bound=BaseModel)
Connectivity = Literal["offline", "online_only", "offline_bounded"]
Idempotency = Literal["required", "optional"]
PUBLIC = frozenset[str]()
ALL_ROLES = frozenset({"kiosk", "phone", "handheld", "tablet", "manager", "exit"})


def free_text(*, max_length: int, min_length: int = 0, default: Any = ...) -> Any:
    """A free-text field (a reason, a note): bounded, with no control or bidirectional
    characters (:mod:`shared.text`); the OpenAPI document shows the same pattern."""
    return Field(
        default=default, min_length=min_length, max_length=max_length, pattern=FREE_TEXT_PATTERN
    )


@dataclass(frozen=True)
class HeaderParam:
    """A request header a route reads, with the schema the server enforces on it."""

    name: str
    required: bool
    schema: dict[str, Any]
    description: str


def idempotency_key(*, required: bool) -> HeaderParam:
    """The ``Idempotency-Key`` header of a write a device may retry."""
    return HeaderParam(
        "Idempotency-Key",
        required,
        # The key's own rule (edge/idempotency.py), around which HTTP allows spaces and tabs
        # that are not part of the value.
        {"type": "string", "pattern": "^[ \\t]*" + KEY_PATTERN[1:-1] + "[ \\t]*$"},
        f"1 to {KEY_MAX} visible ASCII characters the device makes for this write; a retry with "
        "the same key and request gets the first answer, the key with another request is 409",
    )


#: Path parameters by name: the schema the OpenAPI document shows and the server holds to
#: (longer ids, barcodes and SKUs than these cannot exist, so they are simply not found).
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "code": {"type": "string", "minLength": 1, "maxLength": 128},
    # ``/stock/movements`` is its own route: no SKU may be called that (see SkuConverter).
    "sku": {"type": "string", "minLength": 1, "maxLength": 64, "not": {"const": "movements"}},
}


class SkuConverter(BaseConverter):
    """A SKU in a path: any segment but the words other routes at that place use."""

    regex = r"(?!movements(?:/|$))[^/]+"


ID_PARAMETER: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}

#: Why each error status can come, for the OpenAPI document.
ERROR_STATUSES = {
    400: "malformed request (not JSON, or not an object)",
    401: "no token, or an unknown, revoked or expired one",
    402: "the card or wallet payment was declined or timed out; nothing was written",
    403: "this role may not do this",
    404: "no such resource (or not one this device may see)",
    405: "this path is another route's, which takes other methods (see Allow)",
    408: "the request's body did not arrive in time",
    409: "the resource is not in a state that allows this",
    413: "the request body is too large",
    422: "the request is well-formed but cannot be applied: see error.code",
    503: "what was asked only the cloud knows, and it cannot be reached now: retry later",
}


@dataclass(frozen=True)
class RouteSpec(DeclaredRoute):
    roles: frozenset[str]
    connectivity: Connectivity
    headers: tuple[HeaderParam, ...] = ()
    query: type[BaseModel] | None = None
    text_response: bool = False  # the route may also answer text/plain
    # OpenAPI links from this route's answer to the next calls a device makes with it:
    # {name: (operationId, {parameter: runtime expression})}.
    links: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = ()
    # A write a device may retry: "required" or "optional" Idempotency-Key (edge/idempotency.py).
    idempotency: Idempotency | None = None
    # Its success writes an outbox event for the cloud: the sync is kicked to push it soon.
    writes_events: bool = False

    ERROR_TEXTS: ClassVar[Mapping[int, str]] = ERROR_STATUSES

    def error_statuses(self) -> list[int]:
        """Every 4xx this route can answer: implied by its declaration, plus its own."""
        statuses = set(self.errors)
        if self.roles:
            statuses |= {401, 403}
        if self.body is not None:
            statuses |= {400, 408, 413, 422}
        if self.query is not None or any(h.required for h in self.headers):
            statuses.add(422)
        if self.idempotency is not None:
            statuses |= {409, 422}
        if self.path_parameters:
            statuses.add(404)
        return sorted(statuses)

    def document_parameters(self) -> list[dict[str, Any]]:
        parameters = path_parameters(self.path_parameters, PATH_PARAMETERS, ID_PARAMETER)
        parameters += [
            {
                "name": h.name,
                "in": "header",
                "required": h.required,
                "description": h.description,
                "schema": h.schema,
            }
            for h in self.headers
        ]
        if self.query is not None:
            parameters += query_parameters(self.query)
        return parameters

    def document_specifics(self) -> dict[str, Any]:
        return {
            "text_response": self.text_response,
            "security": ("bearer",) if self.roles else (),
            "links": {
                name: {"operationId": op, "parameters": dict(params)}
                for name, op, params in self.links
            },
            "extensions": {"x-connectivity": self.connectivity, "x-roles": sorted(self.roles)},
            "bodiless": (
                {304: "not modified: the ETag the caller sent is still the answer's"}
                if any(h.name == "If-None-Match" for h in self.headers)
                else {}
            ),
        }


@dataclass
class ApiBlueprint(DeclaredBlueprint[RouteSpec]):
    """A Flask blueprint that records a :class:`RouteSpec` for each route it serves."""

    @property
    def specs(self) -> list[RouteSpec]:
        """The declarations of the routes served, in the order they were declared."""
        return self.routes

    def endpoint(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        roles: Iterable[str],
        connectivity: Connectivity,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        headers: tuple[HeaderParam, ...] = (),
        query: type[BaseModel] | None = None,
        errors: tuple[int, ...] = (),
        text_response: bool = False,
        links: dict[str, tuple[str, dict[str, str]]] | None = None,
        idempotency: Idempotency | None = None,
        replay: Callable[[str], Any] | None = None,
        writes_events: bool = False,
        operation_id: str | None = None,
        description: str = "",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``view`` for ``method rule`` with what it promises.

        With ``idempotency`` the route takes an ``Idempotency-Key``: a retry gets the first
        answer, which the view's service stored with its write (the view receives ``retry``
        to pass on); ``replay`` rebuilds an answer stored as a resource id (a sale).
        ``writes_events``: a success writes an outbox event (the app kicks the sync).
        ``operation_id``: the OpenAPI operationId, when not the endpoint's name."""
        if idempotency is not None:
            headers = (*headers, idempotency_key(required=idempotency == "required"))
        roles = frozenset(roles)
        unknown = roles - ALL_ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}")

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            spec = self.declare(
                RouteSpec,
                method,
                rule,
                view,
                summary=summary,
                roles=roles,
                connectivity=connectivity,
                body=body,
                response=response,
                status=status,
                headers=headers,
                query=query,
                errors=errors,
                text_response=text_response,
                links=tuple(
                    (name, op, tuple(params.items()))
                    for name, (op, params) in (links or {}).items()
                ),
                idempotency=idempotency,
                writes_events=writes_events,
                operation_id=operation_id,
                description=description,
            )

            def run(**kwargs: Any) -> Any:
                with current_app.extensions["aisle"].gate.entered():
                    return work(**kwargs)

            def work(**kwargs: Any) -> Any:
                if roles:
                    ctx = current_app.extensions["aisle"]
                    principal = ctx.authenticator.authenticate(request_token(), now=ctx.clock.now())
                    principal = with_staff(ctx.db, principal, staff_token(), now=ctx.clock.now())
                    if principal.role not in roles:
                        raise Forbidden(
                            f"role {principal.role!r} may not {summary[0].lower()}{summary[1:]}",
                            details={"role": principal.role, "allowed": sorted(roles)},
                        )
                    kwargs["principal"] = principal
                for name in spec.path_parameters:
                    _check_path_parameter(name, kwargs[name])
                if query is not None:
                    kwargs["query"] = parse_query(query)
                retry = None
                if idempotency is not None:
                    retry = _retryable(spec, kwargs["principal"])
                    if retry is not None:
                        found = first_answer(current_app.extensions["aisle"].db, retry)
                        if found is not None:
                            return _replayed(found, replay)
                    kwargs["retry"] = retry
                if body is not None:
                    kwargs["body"] = parse_body(body)
                try:
                    result = view(**kwargs)
                except SameKeyInFlight:
                    assert retry is not None
                    found = first_answer(current_app.extensions["aisle"].db, retry)
                    assert found is not None
                    return _replayed(found, replay)
                return result

            return self.serve(spec, rule, view, run, status=status)

        return decorate


def staff_token() -> str | None:
    """The staff session a tablet's or handheld's request names: its header, or a page's
    cookie."""
    return request.headers.get(STAFF_HEADER) or request.cookies.get(STAFF_COOKIE) or None


def _retryable(spec: RouteSpec, principal: Any) -> Retryable | None:
    key = check_key(request.headers.get("Idempotency-Key"), required=spec.idempotency == "required")
    if key is None:
        return None
    return Retryable.of(
        principal.device_id,
        key,
        spec.endpoint,
        request.method,
        request.path,
        request.get_data(cache=True),
    )


def _replayed(found: FirstAnswer, replay: Callable[[str], Any] | None) -> tuple[Any, int]:
    if found.body is not None or found.resource_id is None:
        return found.body, found.status
    assert replay is not None, "an answer stored by resource needs the route's replay"
    return replay(found.resource_id), found.status


def _check_path_parameter(name: str, value: str) -> None:
    # Nothing longer than its schema allows can exist: answer as for any unknown id.
    schema = PATH_PARAMETERS.get(name, ID_PARAMETER)
    if len(value) > schema["maxLength"]:
        raise NotFound(f"no {name} {value[:64]}...", details={name: value[:64]})


def parse_body(model: type[M]) -> M:
    """Decode the request's JSON object and validate it with ``model``; 400 or 422 on failure.
    A JSON number without a fraction counts as an integer, as JSON Schema says (no request
    field of the store is a float)."""
    return parse_json_body(model, integral_floats=True)


def openapi_document(specs: Iterable[RouteSpec], *, title: str, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 built from the route specs and their pydantic models."""
    return build_openapi_document(
        [s.operation() for s in specs],
        title=title,
        version=version,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
    )
