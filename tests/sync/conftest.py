"""One real cloud process per test module and backend; each test enrolls its own stores.

Tests marked ``store_faults`` (the store killed, its power cut, its scheduler) exercise the store,
not the cloud's database: with PostgreSQL configured they run against that backend alone (the
cloud's production target) instead of a second time on SQLite; without it, on SQLite.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_ENV
from tests.sync.harness import CloudProcess, cloud_database

_store_numbers = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get(PG_ENV):
        return
    kept, once = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("cloud") if params is not None else None
        if item.get_closest_marker("store_faults") and backend == "sqlite":
            once.append(item)
        else:
            kept.append(item)
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = kept


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CloudProcess]:
    root = tmp_path_factory.mktemp(f"cloud-{request.param}")
    with (
        cloud_database(request.param, root) as url,
        CloudProcess(root / "cloud", url).init().start() as process,
    ):
        yield process


@pytest.fixture
def store_id() -> str:
    """A store id no other test of the session uses (they share the module's cloud)."""
    return f"T{next(_store_numbers):03d}"


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
