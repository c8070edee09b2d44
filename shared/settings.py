"""Settings read once from TOML plus ``AISLE_*`` environment overrides (shared by edge and cloud).

An override names its key with double underscores between levels: ``AISLE_SERVER__PORT=8081``.
Every value remembers where it came from, so a bad one is reported against its real source:
``AISLE_SERVER__PORT (environment): ...`` for an override, ``server.port in edge.toml: ...`` for
the file. A model is validated as a whole and every problem is listed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

#: ``AISLE_*`` variables that are not settings: the config file's name, the test suite's and the
#: crash tests' own switches (``shared.faults``).
NOT_SETTINGS = ("AISLE_CONFIG", "AISLE_TEST_", "AISLE_FAULT_")

M = TypeVar("M", bound=BaseModel)


class SettingsError(Exception):
    """The configuration cannot be used; the message names the bad key and where it was set."""


class Section(BaseModel):
    """A table of settings: frozen once read, and an unknown key in it is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataFile:
    """A file in the settings' ``data_dir``, declared in one line:
    ``key_path: ClassVar[DataFile] = DataFile("cloud_key.pem", "what it holds")``."""

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.__doc__ = doc

    def __get__(self, settings: Any, owner: Any = None) -> Path:
        if settings is None:
            raise AttributeError(f"{self.name} is a file of a settings object's data_dir")
        data_dir: Path = settings.data_dir
        return data_dir / self.name


def is_override(name: str) -> bool:
    """Whether ``name`` overrides a setting (``AISLE_SECTION__KEY``)."""
    return name.startswith("AISLE_") and not name.startswith(NOT_SETTINGS)


def env_name(key: str) -> str:
    """The environment variable that overrides the dotted ``key``."""
    return "AISLE_" + key.replace(".", "__").upper()


def _set(tree: dict[str, Any], parts: list[str], value: Any, source: str) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SettingsError(f"{source}: {part} is not a section, it holds a value")
    node[parts[-1]] = value


def _blame(key: str, sources: Mapping[str, str], file_label: str | None) -> str:
    """Where the value at ``key`` (or under it, or above it) was set."""
    names = [
        source
        for where, source in sources.items()
        if where == key or where.startswith(key + ".") or key.startswith(where + ".")
    ]
    if names:
        return f"{key} from {', '.join(sorted(names))}"
    if file_label and key:
        return f"{key} in {file_label}"
    return key or "(settings)"


def load_layered(
    model: type[M],
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> M:
    """Read ``path`` (TOML), apply ``AISLE_*`` overrides from ``environ`` (the process's
    environment when None), then ``overrides`` (dotted keys, from code), and validate with
    ``model``; :class:`SettingsError` otherwise.

    ``data_dir`` is resolved relative to the file that names it.
    """
    if environ is None:
        environ = os.environ
    raw: dict[str, Any] = {}
    base = Path.cwd()
    file_label: str | None = None
    if path is not None:
        path = Path(path)
        file_label = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"configuration file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
        base = path.parent
    sources: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if is_override(name):
            parts = name.removeprefix("AISLE_").lower().split("__")
            if not all(parts):
                raise SettingsError(f"{name} (environment): an empty key between '__'")
            _set(raw, parts, value, f"{name} (environment)")
            sources[".".join(parts)] = f"{name} (environment)"
    for dotted, value in (overrides or {}).items():
        _set(raw, dotted.split("."), value, dotted)
        sources[dotted] = f"{dotted} (given by the caller)"
    for key, value in (defaults or {}).items():
        raw.setdefault(key, value)
    raw.setdefault("data_dir", ".")
    data_dir = Path(str(raw["data_dir"]))
    raw["data_dir"] = data_dir if data_dir.is_absolute() else (base / data_dir).resolve()
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"{_blame(key, sources, file_label)}: {err['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
