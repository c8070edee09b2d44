"""``config/*.example.toml`` are exactly what ``aisle edge init`` / ``aisle cloud init`` write, and
every value they show is the one the code uses when the key is left out."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import cloud.cli
import cloud.settings
import edge.cli
import edge.settings

CONFIG = Path(__file__).resolve().parents[2] / "config"


@dataclass(frozen=True)
class Example:
    file: str
    template: str
    #: The values ``init`` formats into the template, as its options give them for the example.
    init_values: Mapping[str, Any]
    #: The keys ``init`` fills from its options: the example shows a chosen value, not a default.
    init_keys: frozenset[str]
    load: Callable[..., Any]
    #: What the file must hold at the least (settings without a default).
    required: Mapping[str, Any]


EXAMPLES = [
    Example(
        file="edge.example.toml",
        template=edge.cli.EDGE_TOML,
        init_values={
            "store_id": "S001",
            "name": "Aisle Demo Store",
            "currency": "CNY",
            "timezone": "Asia/Shanghai",
            "host": "0.0.0.0",
            "port": 8080,
        },
        init_keys=frozenset(
            {
                "store.id",
                "store.name",
                "store.currency",
                "store.timezone",
                "server.host",
                "server.port",
            }
        ),
        load=edge.settings.load_settings,
        required={"store.id": "S001"},
    ),
    Example(
        file="cloud.example.toml",
        template=cloud.cli.CLOUD_TOML,
        init_values={"database_url": "", "host": "0.0.0.0", "port": 9090},
        init_keys=frozenset({"database_url", "server.host", "server.port"}),
        load=cloud.settings.load_settings,
        required={},
    ),
]


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _get(settings: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


@pytest.fixture(params=EXAMPLES, ids=lambda e: e.file)
def example(request: pytest.FixtureRequest) -> Example:
    return request.param


def test_the_example_is_what_init_writes(example: Example) -> None:
    written = example.template.format(**example.init_values)
    assert (CONFIG / example.file).read_text(encoding="utf-8") == written, (
        f"config/{example.file} differs from the template init writes: update one or the other"
    )


def test_the_example_loads_as_it_is(example: Example) -> None:
    settings = example.load(CONFIG / example.file, environ={})
    assert settings.data_dir == CONFIG.resolve()


def test_every_value_the_template_shows_is_the_default(example: Example) -> None:
    shown = tomllib.loads((CONFIG / example.file).read_text(encoding="utf-8"))
    loaded = example.load(CONFIG / example.file, environ={})
    defaults = example.load(None, environ={}, overrides=example.required)
    keys = [key for key, _ in _leaves(shown) if key != "data_dir"]
    assert keys, "the example sets nothing"
    drift = {
        key: (_get(loaded, key), _get(defaults, key))
        for key in keys
        if key not in example.init_keys and _get(loaded, key) != _get(defaults, key)
    }
    assert not drift, (
        f"shown in config/{example.file} but not the default (shown, default): {drift}"
    )
