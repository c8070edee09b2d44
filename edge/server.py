"""Serving the store app with gunicorn: several processes (the GIL caps one at a core), each
with a few threads for devices that wait on the payment provider."""

from __future__ import annotations

import gc
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from edge.settings import EdgeSettings

SWITCH_INTERVAL_S = 0.0005
#: glibc's malloc gives each thread that allocates its own arena (up to 8 per core); eight
#: request threads per worker then hold several mostly empty arenas. Two are plenty here
#: (Python's small objects have their own allocator): about 5 MB less per worker, measured.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc malloc arenas for this process and the workers it forks; False elsewhere."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt arenas)
        return False


class EdgeServer(BaseApplication):
    """gunicorn, configured from the store's settings; each worker builds its own app."""

    def __init__(self, settings: EdgeSettings, *, host: str, port: int, workers: int) -> None:
        self.settings = settings
        self.bind = f"{host}:{port}"
        self.workers = workers
        limit_malloc_arenas()  # before any thread exists; the forked workers inherit it
        # Import the app's code in the master and freeze it out of the collector's reach, so
        # the forked workers share those pages instead of each holding a copy. The app itself
        # (database engines, keys) is still built in each worker: SQLite connections must not
        # cross a fork.
        import edge.app
        import edge.route_table
        import edge.sync_client.scheduler  # APScheduler, requests: shared, not per worker

        edge.route_table.all_specs()
        del edge
        gc.collect()
        gc.freeze()
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": self.bind,
            "workers": self.workers,
            "worker_class": "gthread",
            "threads": self.settings.server.threads,
            "worker_connections": self.settings.server.worker_connections,
            "keepalive": 75,  # devices hold their connection between scans
            "timeout": 60,
            "graceful_timeout": 20,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": f"aisle-edge-{self.settings.store.id}",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from edge.app import create_app

        # A thread holding the store's write lock gives up the GIL at every SQLite call and
        # must win it back from threads busy parsing requests; the default 5 ms switch interval
        # turns that into a convoy where scans queue behind the lock. 0.5 ms keeps it moving.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        app = create_app(self.settings)
        if self.settings.sync.enabled:
            from edge.sync_client.scheduler import SyncRunner, SyncScheduler

            ctx = app.extensions["aisle"]
            scheduler = SyncScheduler(SyncRunner(self.settings, ctx.db, ctx.clock))
            scheduler.start()
            app.extensions["aisle_sync"] = scheduler
        return app
