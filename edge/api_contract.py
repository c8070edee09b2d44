"""The device API's contract: each route declares its roles, connectivity class and schemas once.

``ApiBlueprint.endpoint`` registers a view together with what it promises. The same declaration
authenticates the caller, refuses the wrong role, parses and validates the JSON body with the
route's pydantic model (strict: no silent coercion of ``"2"`` into ``2``, unknown fields refused),
and feeds the OpenAPI document and the connectivity table. A route cannot exist without them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal, TypeVar

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, ValidationError

from edge.errors import BadRequest, Forbidden, Unprocessable

M = TypeVar("M", bound=BaseModel)
Connectivity = Literal["offline", "online_only", "offline_bounded"]
PUBLIC = frozenset[str]()
ALL_ROLES = frozenset({"kiosk", "phone", "handheld", "tablet", "manager", "exit"})


class RequestBody(BaseModel):
    """Base of every request schema: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True)
class RouteSpec:
    method: str
    rule: str
    endpoint: str
    summary: str
    roles: frozenset[str]
    connectivity: Connectivity
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    headers: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.rule.replace("<", "{").replace(">", "}")


@dataclass
class ApiBlueprint:
    """A Flask blueprint that records a :class:`RouteSpec` for each route it serves."""

    name: str
    url_prefix: str = ""
    specs: list[RouteSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.blueprint = Blueprint(self.name, __name__, url_prefix=self.url_prefix or None)

    def endpoint(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        roles: Iterable[str],
        connectivity: Connectivity = "offline",
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        headers: tuple[str, ...] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        roles = frozenset(roles)
        unknown = roles - ALL_ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}")

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            spec = RouteSpec(
                method=method,
                rule=self.url_prefix + rule,
                endpoint=f"{self.name}.{view.__name__}",
                summary=summary,
                roles=roles,
                connectivity=connectivity,
                body=body,
                response=response,
                status=status,
                headers=headers,
            )
            self.specs.append(spec)

            @wraps(view)
            def handler(**kwargs: Any) -> Any:
                with current_app.extensions["aisle"].gate.entered():
                    return work(**kwargs)

            def work(**kwargs: Any) -> Any:
                if roles:
                    principal = current_app.extensions["aisle"].authenticator.authenticate(
                        _bearer_token()
                    )
                    if principal.role not in roles:
                        raise Forbidden(
                            f"role {principal.role!r} may not {summary[0].lower()}{summary[1:]}",
                            details={"role": principal.role, "allowed": sorted(roles)},
                        )
                    kwargs["principal"] = principal
                if body is not None:
                    kwargs["body"] = parse_body(body)
                result = view(**kwargs)
                if isinstance(result, tuple):
                    return result
                return result, status

            self.blueprint.add_url_rule(rule, view.__name__, handler, methods=[method])
            return handler

        return decorate


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def parse_body(model: type[M]) -> M:
    """Decode the request's JSON object and validate it with ``model``; 400 or 422 on failure."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(
                "request body is not valid JSON",
                code="malformed_json",
                details={"reason": str(exc)},
            ) from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = []
        for err in exc.errors(include_url=False, include_input=False):
            fields.append(
                {
                    "field": ".".join(str(p) for p in err["loc"]) or "(body)",
                    "problem": err["msg"],
                    "type": err["type"],
                }
            )
        names = ", ".join(f["field"] for f in fields)
        raise Unprocessable(f"invalid request body: {names}", details={"fields": fields}) from None


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def openapi_document(specs: Iterable[RouteSpec], *, title: str, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 built from the route specs and their pydantic models."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    ref = "#/components/schemas/{model}"

    def schema_of(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=ref)
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = schema
        return {"$ref": ref.format(model=model.__name__)}

    for spec in sorted(specs, key=lambda s: (s.path, s.method)):
        op: dict[str, Any] = {
            "operationId": spec.endpoint.replace(".", "_"),
            "summary": spec.summary,
            "x-connectivity": spec.connectivity,
            "x-roles": sorted(spec.roles),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in _path_params(spec.rule)
            ]
            + [
                {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
                for h in spec.headers
            ],
            "responses": {
                str(spec.status): {
                    "description": "success",
                    "content": {
                        "application/json": {
                            "schema": schema_of(spec.response)
                            if spec.response
                            else {"type": "object"}
                        }
                    },
                },
                "default": {
                    "description": "error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if spec.roles:
            op["security"] = [{"bearer": []}]
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(spec.body)}},
            }
        paths.setdefault(spec.path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path_params(rule: str) -> list[str]:
    out = []
    for part in rule.split("<")[1:]:
        name = part.split(">", 1)[0]
        out.append(name.split(":")[-1])
    return out
