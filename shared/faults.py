"""Named fault points for crash tests: a process dies right there, as if the power went.

A test starts a real process with ``AISLE_FAULT_POINT=<name>``; when the code passes
:func:`fault_point` with that name the process sends itself SIGKILL (no cleanup, no flush, no
``finally``). ``AISLE_FAULT_AFTER=N`` lets the point pass N times first. With
``AISLE_FAULT_FILE=<path>`` the point fires only while that file exists and deletes it as it
fires, so among the processes of a server (whose master restarts a killed worker with the same
environment) exactly one dies. Unset (production), a fault point costs one lookup.
"""

from __future__ import annotations

import os
import signal
import threading

ENV_POINT = "AISLE_FAULT_POINT"
ENV_AFTER = "AISLE_FAULT_AFTER"
ENV_FILE = "AISLE_FAULT_FILE"

_passes: dict[str, int] = {}
_lock = threading.Lock()


def fault_point(name: str) -> None:
    """Die here if this process was started to die at ``name``."""
    if os.environ.get(ENV_POINT) != name:
        return
    with _lock:
        seen = _passes.get(name, 0)
        _passes[name] = seen + 1
    if seen < int(os.environ.get(ENV_AFTER, "0")):
        return
    once = os.environ.get(ENV_FILE)
    if once:
        try:
            os.unlink(once)  # whoever deletes it is the one that dies
        except FileNotFoundError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
