"""Which ``AISLE_*`` environment variables are settings overrides (shared by edge and cloud)."""

from __future__ import annotations

#: ``AISLE_*`` variables that are not settings: the config file's name, the test suite's and the
#: crash tests' own switches (``sync.faults``).
NOT_SETTINGS = ("AISLE_CONFIG", "AISLE_TEST_", "AISLE_FAULT_")


def is_override(name: str) -> bool:
    """Whether ``name`` overrides a setting (``AISLE_SECTION__KEY``)."""
    return name.startswith("AISLE_") and not name.startswith(NOT_SETTINGS)
