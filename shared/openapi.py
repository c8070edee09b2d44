"""An OpenAPI 3.1 document from route declarations, for both servers.

Each server turns its own route declarations into :class:`Operation` values (who may call, what
the body and the answer are, which refusals can come and why) and this module writes the
document: paths, parameters, pydantic models as component schemas, the one error shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.errors import ERROR_SCHEMA

_RULE_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_REF = "#/components/schemas/{model}"


def openapi_path(rule: str) -> str:
    """A Flask rule (``/stores/<store_id>/sales``) as an OpenAPI path (``{store_id}``)."""
    return _RULE_PARAMETER.sub(r"{\1}", rule)


def rule_parameters(rule: str) -> list[str]:
    """The names of a Flask rule's path parameters, in order."""
    return _RULE_PARAMETER.findall(rule)


@dataclass(frozen=True)
class Operation:
    """One route as the document shows it.

    ``body`` is a JSON request validated with a pydantic model; a body that is not plain JSON
    is described by ``request_content`` instead (media type: media type object). ``errors``
    maps each refusal status the route can answer to why. ``security`` names the security
    schemes that admit a caller (any one of them); empty for a public route.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    status: int = 200
    response: type[BaseModel] | None = None
    text_response: bool = False
    body: type[BaseModel] | None = None
    request_content: Mapping[str, Any] | None = None
    parameters: tuple[Mapping[str, Any], ...] = ()
    errors: Mapping[int, str] = field(default_factory=dict)
    security: tuple[str, ...] = ()
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extensions: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    # Other successes answered with the same schema, and when (an answer that finds what a
    # creation would have made: 200 beside 201).
    other_successes: Mapping[int, str] = field(default_factory=dict)
    # Answers with no body, and when (304 to a conditional read).
    bodiless: Mapping[int, str] = field(default_factory=dict)


def path_parameters(
    names: Iterable[str], schemas: Mapping[str, Mapping[str, Any]], default: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Path parameters as OpenAPI parameters: the schema ``schemas`` names for each, else
    ``default``."""
    return [
        {"name": name, "in": "path", "required": True, "schema": schemas.get(name, default)}
        for name in names
    ]


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The fields of a query-string model as OpenAPI query parameters."""
    schema = model.model_json_schema()
    return [
        {
            "name": name,
            "in": "query",
            "required": name in schema.get("required", []),
            "schema": {k: v for k, v in prop.items() if k != "title"},
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def openapi_document(
    operations: Iterable[Operation],
    *,
    title: str,
    version: str,
    security_schemes: Mapping[str, Any],
    description: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``; models become component schemas."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def schema_of(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=_REF)
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = schema
        return {"$ref": _REF.format(model=model.__name__)}

    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for spec in sorted(operations, key=lambda s: (s.path, s.method)):
        success: dict[str, Any] = {
            "application/json": {
                "schema": schema_of(spec.response) if spec.response else {"type": "object"}
            }
        }
        if spec.text_response:
            success["text/plain"] = {"schema": {"type": "string"}}
        responses: dict[str, Any] = {
            str(spec.status): {"description": "success", "content": success}
        }
        for status, why in spec.other_successes.items():
            responses[str(status)] = {"description": why, "content": success}
        for status, why in spec.bodiless.items():
            responses[str(status)] = {"description": why}
        if spec.links:
            responses[str(spec.status)]["links"] = {
                name: dict(link) for name, link in spec.links.items()
            }
        for status in sorted(spec.errors):
            responses[str(status)] = {"description": spec.errors[status], "content": error}
        op: dict[str, Any] = {"operationId": spec.operation_id, "summary": spec.summary}
        if spec.description:
            op["description"] = spec.description
        op.update(spec.extensions)
        op["parameters"] = [dict(p) for p in spec.parameters]
        op["responses"] = responses
        if spec.security:
            op["security"] = [{name: []} for name in spec.security]
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(spec.body)}},
            }
        elif spec.request_content is not None:
            op["requestBody"] = {"required": True, "content": dict(spec.request_content)}
        paths.setdefault(spec.path, {})[spec.method.lower()] = op
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": dict(security_schemes)},
    }
