from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import Store, make_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store on a real SQLite file in tmp_path, migrated, with a small catalog."""
    s = make_store(tmp_path / "store")
    yield s
    s.ctx.db.dispose()
