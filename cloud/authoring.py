"""What HQ authors in bulk (promotions, coupon campaigns): read from a JSON or TOML file and
checked item by item, refused naming the first wrong item and its field."""

from __future__ import annotations

import json
import tomllib
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from cloud.errors import Unprocessable

T = TypeVar("T")


def read_list(name: str, data: bytes, key: str) -> list[Any]:
    """The items of a JSON or TOML file: ``{key: [...]}`` (TOML: ``[[key]]`` tables), or, in
    JSON, the list alone. ``ValueError`` saying what is wrong."""
    kind = "TOML" if name.endswith(".toml") else "JSON"
    try:
        doc: Any = tomllib.loads(data.decode()) if kind == "TOML" else json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: not valid {kind}: {exc}") from None
    if isinstance(doc, dict):
        doc = doc.get(key)
    if not isinstance(doc, list):
        raise ValueError(f'{name}: expected {{"{key}": [...]}} or a list of {key}')
    return doc


def checked(adapter: TypeAdapter[list[T]], doc: list[Any], *, noun: str, most: int) -> list[T]:
    """``doc`` read as a list of items by ``adapter``; ``Unprocessable`` (``too_many_<noun>s``,
    ``invalid_<noun>``) naming the first that is wrong and its field."""
    if len(doc) > most:
        raise Unprocessable(
            f"at most {most} {noun}s in one write",
            code=f"too_many_{noun}s",
            details={"max": most, "sent": len(doc)},
        )
    try:
        return adapter.validate_python(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = first["loc"]
        index = where[0] if where and isinstance(where[0], int) else None
        raise Unprocessable(
            f"{noun} {index}: {first['msg']}" if index is not None else f"{noun}s: {first['msg']}",
            code=f"invalid_{noun}",
            details={"index": index, "field": ".".join(str(p) for p in where[1:])},
        ) from None
