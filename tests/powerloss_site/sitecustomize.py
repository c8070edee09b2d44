"""Installs the power-loss VFS (tests/powerloss.py) in a process started with its environment."""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "aisle_powerloss", Path(__file__).resolve().parents[1] / "powerloss.py"
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module
_spec.loader.exec_module(_module)
_module.install_from_env()
