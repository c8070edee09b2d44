"""One real cloud process per test module and backend; each test enrolls its own stores."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync.harness import CloudProcess, cloud_database

_store_numbers = itertools.count(1)


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
