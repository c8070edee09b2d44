"""The cloud's route contract: each route declares its caller, body and answer once.

``CloudApi.route`` registers a view together with what it promises: which kind of caller it
admits (an HQ bearer token, a channel's, a store's signed request, a store enrolling, anyone),
the pydantic model of its JSON body, the model of its answer and the refusals it can give. The
same declaration authenticates the caller, parses and validates the body, and feeds the OpenAPI
document (:func:`openapi_document`). A route cannot exist without them.

How a kind of caller is authenticated is not this module's business: the feature that knows
each kind registers a function for it with :func:`register_caller` (``cloud.stores`` HQ's and
the channels' tokens, ``cloud.ingest`` a store's signed requests), so this layer imports no feature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypedDict, TypeVar, Unpack

from flask import current_app, request
from pydantic import BaseModel

from cloud.context import CloudContext
from cloud.errors import Unprocessable
from shared.idempotency import KEY_PATTERN
from shared.openapi import openapi_document as build_openapi_document
from shared.openapi import path_parameters
from shared.untrusted import whole_number
from shared.web import DeclaredBlueprint, DeclaredRoute, RequestBody, parse_body

__all__ = [
    "CALLERS",
    "CloudApi",
    "CloudRoute",
    "QueryParam",
    "RequestBody",
    "ctx",
    "int_arg",
    "openapi_document",
    "parse_body",
    "register_caller",
    "request_target",
]

M = TypeVar("M", bound=BaseModel)

#: Who may call a route:
#:  ``hq``        an HQ bearer token (``aisle cloud token --role hq``);
#:  ``channel``   another sales channel's bearer token (an online shop, a mini-program:
#:                ``aisle cloud token --role channel --name NAME``);
#:  ``store``     a request signed by an enrolled store's key (sync);
#:  ``enrolling`` a store registering its key with a one-time code (the view checks the
#:                signature against the key being registered);
#:  ``public``    anyone.
Caller = Literal["hq", "channel", "store", "enrolling", "public"]
CALLERS: tuple[Caller, ...] = ("hq", "channel", "store", "enrolling", "public")
#: The callers authenticated before the view runs; it receives what the authenticator returned.
AUTHENTICATED: tuple[Caller, ...] = ("hq", "channel", "store")

#: The function authenticating each kind of caller; what it returns reaches the view as
#: ``caller``. Registered by the feature that knows the callers.
_AUTHENTICATORS: dict[str, Callable[[], Any]] = {}

#: Why each refusal can come, for the OpenAPI document.
ERROR_STATUSES = {
    400: "malformed request: not JSON, not an object, a bad batch or cursor (see error.code)",
    401: "unsigned, badly signed, stale or replayed request, unknown store, or no valid token",
    403: "this caller may not: a revoked store, another store's code, a token of another role",
    404: "no such store, feed, recovery or resource",
    409: "the resource is not in a state that allows this, or an Idempotency-Key was used for "
    "another request (see error.code)",
    413: "the request body is too large",
    422: "the request is well-formed but cannot be applied: see error.code and details",
    426: "the request's protocol version is not one this cloud accepts",
    503: "the database is unavailable; nothing was applied, retry after Retry-After",
}

#: The refusals each kind of caller implies.
CALLER_ERRORS: dict[str, tuple[int, ...]] = {
    "hq": (401, 403),
    "channel": (401, 403),
    "store": (401, 403, 426),
    "enrolling": (401, 403, 426),
    "public": (),
}

#: The security scheme each kind of caller shows in the OpenAPI document.
CALLER_SECURITY: dict[str, tuple[str, ...]] = {
    "hq": ("hqToken",),
    "channel": ("channelToken",),
    "store": ("storeSignature",),
    "enrolling": ("storeSignature",),
    "public": (),
}

SECURITY_SCHEMES: dict[str, Any] = {
    "hqToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "an HQ API token (`aisle cloud token --role hq`)",
    },
    "channelToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "a sales channel's API token, e.g. an online shop's "
        "(`aisle cloud token --role channel --name shop`); its Idempotency-Keys are its own",
    },
    "storeSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Aisle-Signature",
        "description": "an Ed25519 signature of the request by the store's key, with the "
        "X-Aisle-Store, X-Aisle-Timestamp, X-Aisle-Nonce and X-Aisle-Protocol headers it covers "
        "(sync/signing.py); the answer is signed with the cloud's key, bound to the nonce. On "
        "enrollment the request is signed with the key being registered",
    },
}

#: The header of a write its caller may retry (:func:`shared.idempotency.check_key`).
IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": KEY_PATTERN},
    "description": "the caller's key for this write: sent again with the same request, the "
    "first answer comes back and nothing is applied twice; with another request, 409 "
    "idempotency_key_reused",
}

#: Path parameters by name, as the document shows them.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "store_id": {"type": "string", "minLength": 1, "maxLength": 32},
}


@dataclass(frozen=True)
class QueryParam:
    """A query-string parameter a view reads, with the schema it holds to."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False


def whole_number_param(name: str, *, low: int, high: int, description: str = "") -> QueryParam:
    """A whole-number query parameter read with :func:`int_arg`."""
    return QueryParam(name, {"type": "integer", "minimum": low, "maximum": high}, description)


@dataclass(frozen=True)
class CloudRoute(DeclaredRoute):
    """A cloud route's declaration."""

    caller: Caller
    query: tuple[QueryParam, ...] = ()
    # A body that is not a JSON object validated with a model (a push batch): media type ->
    # OpenAPI media type object.
    request_content: Mapping[str, Any] | None = None
    # A write its caller may retry: it needs an Idempotency-Key header, and a key used again for
    # another request is refused (409).
    idempotent: bool = False
    # Other successes than ``status``, with the same answer schema, and when each comes.
    other_successes: Mapping[int, str] | None = None

    ERROR_TEXTS: ClassVar[Mapping[int, str]] = ERROR_STATUSES

    def error_statuses(self) -> list[int]:
        """Every refusal this route can answer: implied by its declaration, plus its own."""
        statuses = set(self.errors) | set(CALLER_ERRORS[self.caller]) | {503}
        if self.body is not None:
            statuses |= {400, 413, 422}
        if self.request_content is not None:
            statuses |= {400, 413}
        if any(q.schema.get("type") == "integer" or q.required for q in self.query):
            statuses.add(422)
        if self.idempotent:
            statuses |= {409, 422}
        return sorted(statuses)

    def document_parameters(self) -> list[dict[str, Any]]:
        parameters = path_parameters(self.path_parameters, PATH_PARAMETERS, {"type": "string"})
        for q in self.query:
            param: dict[str, Any] = {
                "name": q.name,
                "in": "query",
                "required": q.required,
                "schema": dict(q.schema),
            }
            if q.description:
                param["description"] = q.description
            parameters.append(param)
        if self.idempotent:
            parameters.append(IDEMPOTENCY_HEADER)
        return parameters

    def document_specifics(self) -> dict[str, Any]:
        return {
            "request_content": self.request_content,
            "security": CALLER_SECURITY[self.caller],
            "extensions": {"x-caller": self.caller},
            "other_successes": dict(self.other_successes or {}),
        }


class CloudRouteOptions(TypedDict, total=False):
    """What a cloud route may declare besides its method, rule, summary and caller: the
    fields of :class:`CloudRoute` with the same names."""

    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    query: tuple[QueryParam, ...]
    request_content: Mapping[str, Any] | None
    idempotent: bool
    other_successes: Mapping[int, str] | None
    description: str | None
    operation_id: str | None


@dataclass
class CloudApi(DeclaredBlueprint[CloudRoute]):
    """A Flask blueprint that records a :class:`CloudRoute` for each route it serves."""

    url_prefix: str = "/api/v1"

    def route(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        caller: Caller,
        before_caller: Callable[[], None] | None = None,
        **declared: Unpack[CloudRouteOptions],
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``view`` for ``method rule``, with what ``declared`` says of it (see
        :class:`CloudRoute`). The view receives ``caller`` (what the caller's authenticator
        returned; not for ``public`` and ``enrolling``) and ``body`` (the parsed model) besides
        its path parameters. ``before_caller`` runs first (a size check that must not wait for
        the signature)."""
        if caller not in CALLERS:
            raise ValueError(f"unknown caller kind {caller!r}")

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            spec = self.declare(
                CloudRoute, method, rule, view, summary=summary, caller=caller, **declared
            )

            def run(**kwargs: Any) -> Any:
                if before_caller is not None:
                    before_caller()
                if caller in AUTHENTICATED:
                    kwargs["caller"] = authenticate(caller)
                if spec.body is not None:
                    kwargs["body"] = parse_body(spec.body)
                return view(**kwargs)

            return self.serve(spec, rule, view, run, status=spec.status)

        return decorate


def register_caller(kind: Caller, authenticate: Callable[[], Any]) -> None:
    """Say how a kind of caller is authenticated: ``authenticate()`` runs in the request and
    returns who called, or raises the refusal (401, 403, 426)."""
    _AUTHENTICATORS[kind] = authenticate


def authenticate(kind: str) -> Any:
    """The caller of this request, by the function registered for ``kind``."""
    try:
        check = _AUTHENTICATORS[kind]
    except KeyError:
        raise RuntimeError(f"no authenticator registered for {kind!r} callers") from None
    return check()


def missing_authenticators(routes: Iterable[CloudRoute]) -> set[str]:
    """Caller kinds some route admits that nobody registered an authenticator for."""
    kinds: set[str] = {r.caller for r in routes if r.caller in AUTHENTICATED}
    return kinds - set(_AUTHENTICATORS)


def openapi_document(
    routes: Iterable[CloudRoute], *, title: str, version: str, description: str | None = None
) -> dict[str, Any]:
    """The cloud's OpenAPI 3.1 document, from the route declarations."""
    return build_openapi_document(
        [r.operation() for r in routes],
        title=title,
        version=version,
        security_schemes=SECURITY_SCHEMES,
        description=description,
    )


def ctx() -> CloudContext:
    context: CloudContext = current_app.extensions["aisle_cloud"]
    return context


def request_target() -> str:
    """The path and query exactly as the client sent them (what it signed)."""
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def int_arg(name: str, *, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within bounds; 422 otherwise."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    value = whole_number(text)
    if value is None or not low <= value <= high:
        raise Unprocessable(
            f"{name} must be a whole number from {low} to {high}", details={"field": name}
        )
    return value
