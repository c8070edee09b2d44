"""Suite-wide set-up: the store fixture, and whether the PostgreSQL half runs.

The cloud and sync suites run on SQLite and on PostgreSQL. ``AISLE_TEST_POSTGRES_URL`` names the
server; when it is unset and a PostgreSQL server answers at the default address
(``postgresql+psycopg://postgres@127.0.0.1:5432/test``, as on CI and on the project's machines),
that one is used. When none answers, the PostgreSQL tests are left out and one line says so and
how to run them; with ``CI`` set they are never left out (their fixtures then fail).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.builders import Store, make_store

PG_ENV = "AISLE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_LEFT_OUT = pytest.StashKey[int]()


def _answers(url: str) -> bool:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        psycopg.connect(conninfo, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(PG_ENV) and _answers(DEFAULT_POSTGRES_URL):
        os.environ[PG_ENV] = DEFAULT_POSTGRES_URL  # the servers the tests start inherit it


def _needs_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in [str(v) for v in callspec.params.values()]:
        return True
    return item.get_closest_marker("postgres") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(PG_ENV) or os.environ.get("CI"):
        return
    left_out = [item for item in items if _needs_postgres(item)]
    if left_out:
        items[:] = [item for item in items if not _needs_postgres(item)]
        config.hook.pytest_deselected(items=left_out)
        config.stash[_LEFT_OUT] = len(left_out)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Under pytest-xdist the workers collect and leave tests out; the count is theirs, and the
    # controller, which writes this summary, knows only that no server answered.
    left_out = terminalreporter.config.stash.get(_LEFT_OUT, 0)
    if left_out or not (os.environ.get(PG_ENV) or os.environ.get("CI")):
        count = f" ({left_out} tests)" if left_out else ""
        terminalreporter.write_line(
            f"PostgreSQL half not run{count}: no server at 127.0.0.1:5432; run it "
            f"with {PG_ENV}=postgresql+psycopg://USER@HOST:PORT/DB make test",
            yellow=True,
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store on a real SQLite file in tmp_path, migrated, with a small catalog."""
    s = make_store(tmp_path / "store")
    yield s
    s.ctx.db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium, driven by Playwright (``executable_path``: no browser download)."""
    from playwright.sync_api import sync_playwright

    from tests.functional.screens import CHROMIUM, SHOTS

    if not Path(CHROMIUM).exists():
        raise AssertionError(
            "Debian's chromium is needed for the screen tests (make installs it: apt-get "
            "install chromium)"
        )
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()
