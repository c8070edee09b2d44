"""The HTTP layer both servers share: JSON bodies into pydantic models, bearer tokens, and the
one set of Flask error handlers that renders every refusal in the shape of :mod:`shared.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ClassVar, Generic, TypeVar

from flask import Blueprint, Flask, request
from pydantic import BaseModel, ConfigDict, ValidationError
from werkzeug.exceptions import HTTPException

from shared.errors import ApiError, BadRequest, Unprocessable
from shared.http_errors import http_error
from shared.openapi import Operation, openapi_path, rule_parameters
from shared.text import FREE_TEXT_PATTERN
from shared.untrusted import UntrustedInputError, loads_json

M = TypeVar("M", bound=BaseModel)

#: What a handler of an unexpected exception answers: (body, status, headers), or None to let
#: the generic 500 answer.
ErrorAnswer = tuple[dict[str, Any], int, dict[str, str]]

FREE_TEXT_PROBLEM = "contains a control or text-direction character, which is not allowed"


class RequestBody(BaseModel):
    """Base of every request schema: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


def whole_numbers(value: Any) -> Any:
    """JSON numbers without a fraction as ints: JSON Schema counts ``3.0`` as the integer 3, so
    a contract checked against it does too, while ``3.5`` stays a float and is refused where an
    int is due."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def validation_fields(exc: ValidationError, *, empty: str | None = None) -> list[dict[str, str]]:
    """Each problem of ``exc`` as ``{field, problem, type}`` for an error's details; a free-text
    field's pattern is named for what it refuses rather than shown as a regex."""
    fields = []
    for err in exc.errors(include_url=False, include_input=False):
        problem = err["msg"]
        if (
            err["type"] == "string_pattern_mismatch"
            and (err.get("ctx") or {}).get("pattern") == FREE_TEXT_PATTERN
        ):
            problem = FREE_TEXT_PROBLEM
        field = ".".join(str(p) for p in err["loc"])
        fields.append({"field": field or (empty or ""), "problem": problem, "type": err["type"]})
    return fields


def parse_body(model: type[M], *, integral_floats: bool = False) -> M:
    """Decode the request's JSON object and validate it with ``model``; 400 ``malformed_json``
    or 422 ``validation_error`` naming each bad field. With ``integral_floats`` a number such as
    ``3.0`` counts as the integer 3 (see :func:`whole_numbers`)."""
    raw = request.get_data(cache=True)
    try:
        data: Any = loads_json(raw) if raw.strip() else {}
    except UntrustedInputError as exc:
        raise BadRequest(
            "request body is not valid JSON", code="malformed_json", details={"reason": str(exc)}
        ) from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="malformed_json")
    try:
        return model.model_validate(whole_numbers(data) if integral_floats else data)
    except ValidationError as exc:
        fields = validation_fields(exc, empty="(body)")
        names = ", ".join(f["field"] for f in fields)
        raise Unprocessable(f"invalid request body: {names}", details={"fields": fields}) from None


def parse_query(model: type[M]) -> M:
    """Validate the query string with ``model`` (strings only); 422 naming each bad parameter."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        fields = validation_fields(exc)
        names = ", ".join(f["field"] for f in fields)
        raise Unprocessable(f"invalid query: {names}", details={"fields": fields}) from None


def bearer_token() -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@dataclass(frozen=True, kw_only=True)
class DeclaredRoute:
    """What every route declaration says: its method, its full rule, its Flask endpoint
    (``blueprint.view``), a summary, what it reads and answers, and the refusals of its own.
    Each server adds what its callers and document need, and says which refusals the
    declaration implies (:meth:`error_statuses`) and why each can come (``ERROR_TEXTS``)."""

    method: str
    rule: str
    endpoint: str
    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()  # refusals of its own, beyond those the declaration implies
    description: str | None = None
    # The operation's id in the document; by default its endpoint's (``blueprint_view``). A
    # route moved to another blueprint keeps the id it was published with.
    operation_id: str | None = None

    #: Why each refusal can come, as the server's document says it.
    ERROR_TEXTS: ClassVar[Mapping[int, str]] = {}

    @property
    def path(self) -> str:
        return openapi_path(self.rule)

    @property
    def path_parameters(self) -> list[str]:
        return rule_parameters(self.rule)

    def error_statuses(self) -> list[int]:
        """Every refusal this route can answer: its own and those its declaration implies."""
        return sorted(self.errors)

    def document_parameters(self) -> list[dict[str, Any]]:
        """Its path, header and query parameters as the OpenAPI document lists them."""
        return []

    def document_specifics(self) -> dict[str, Any]:
        """What else of :class:`~shared.openapi.Operation` this server's routes say (security,
        extensions, links...)."""
        return {}

    def operation(self) -> Operation:
        """The route as the OpenAPI document shows it."""
        return Operation(
            method=self.method,
            path=self.path,
            operation_id=self.operation_id or self.endpoint.replace(".", "_"),
            summary=self.summary,
            description=self.description,
            status=self.status,
            response=self.response,
            body=self.body,
            parameters=tuple(self.document_parameters()),
            errors={status: self.ERROR_TEXTS[status] for status in self.error_statuses()},
            **self.document_specifics(),
        )


R = TypeVar("R", bound=DeclaredRoute)


@dataclass
class DeclaredBlueprint(Generic[R]):
    """A Flask blueprint that records the declaration of each route it serves.

    A server's own kind (the edge's ``ApiBlueprint``, the cloud's ``CloudApi``) builds the
    declaration and what runs before the view (authentication, parsing) and hands both to
    :meth:`serve`."""

    name: str
    url_prefix: str = ""
    routes: list[R] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.blueprint = Blueprint(
            self.name, type(self).__module__, url_prefix=self.url_prefix or None
        )

    def declare(
        self, kind: type[R], method: str, rule: str, view: Callable[..., Any], **fields: Any
    ) -> R:
        """The declaration of ``view`` served at ``method rule`` (below the prefix): its full
        rule, its Flask endpoint, and ``fields``, the rest of what ``kind`` says."""
        return kind(
            method=method,
            rule=self.url_prefix + rule,
            endpoint=f"{self.name}.{view.__name__}",
            **fields,
        )

    def serve(
        self,
        spec: R,
        rule: str,
        view: Callable[..., Any],
        run: Callable[..., Any],
        *,
        status: int,
    ) -> Callable[..., Any]:
        """Record ``spec`` and serve ``rule`` (below the prefix) with ``run``, which receives
        the path parameters and calls ``view``. An answer that is not a ``(body, status...)``
        tuple gets the declared ``status``."""
        self.routes.append(spec)

        @wraps(view)
        def handler(**kwargs: Any) -> Any:
            result = run(**kwargs)
            if isinstance(result, tuple):
                return result
            return result, status

        self.blueprint.add_url_rule(rule, view.__name__, handler, methods=[spec.method])
        return handler


def install_error_handlers(
    app: Flask,
    log: logging.Logger,
    *,
    unexpected: Callable[[Exception], ErrorAnswer | None] | None = None,
) -> None:
    """Render domain errors, werkzeug's HTTP refusals and anything unexpected (500, logged) in
    the one error shape. ``unexpected`` may answer an exception otherwise a 500 first."""

    @app.errorhandler(ApiError)
    def _domain_error(exc: ApiError) -> tuple[dict[str, Any], int]:
        return exc.to_dict(), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ErrorAnswer:
        return http_error(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ErrorAnswer:
        if unexpected is not None:
            answer = unexpected(exc)
            if answer is not None:
                return answer
        log.exception("unhandled error")
        return ApiError("internal error; the request was not applied").to_dict(), 500, {}
