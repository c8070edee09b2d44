"""Every device route over HTTP against real ``aisle edge serve`` processes, one folder per
capability as in ``edge/``.

The tests of this package share one store server (``live``) and one store whose card provider
declines every payment (``declining``): each is started once for the whole package, not once per
module. So tests that count (outbox, day report, sale numbers) compare before/after values
rather than absolute ones, and the error cases compare what they must leave alone before and
after their request.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.conftest import Live, served_store
from tests.functional.device_api.error_shape import World, build_world


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A fresh store, served by a real ``aisle edge serve`` process, for the whole package."""
    with served_store(tmp_path_factory.mktemp("store")) as server:
        yield server


@pytest.fixture(scope="package")
def declining(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A store of its own whose payment provider declines every card."""
    with served_store(
        tmp_path_factory.mktemp("declining"), AISLE_PAYMENTS__DECLINE_RATE_BP="10000"
    ) as server:
        yield server


@pytest.fixture(scope="package")
def world(live: Live) -> World:
    """What the error cases aim at: carts, lines and sales made once on ``live``."""
    return build_world(live)
