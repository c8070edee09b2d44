"""Serving the cloud app with gunicorn: several worker processes, a few threads each. Workers
are stateless; PostgreSQL (or the SQLite file) is the only shared state."""

from __future__ import annotations

import gc
from typing import Any

from gunicorn.app.base import BaseApplication

from cloud.settings import CloudSettings


class CloudServer(BaseApplication):
    """gunicorn, configured from the cloud's settings; each worker builds its own app."""

    def __init__(self, settings: CloudSettings, *, host: str, port: int, workers: int) -> None:
        self.settings = settings
        self.bind = f"{host}:{port}"
        self.workers = workers
        # Import the code in the master so forked workers share its pages; engines and
        # connections are made in each worker (they must not cross a fork).
        import cloud.app

        del cloud
        gc.collect()
        gc.freeze()
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": self.bind,
            "workers": self.workers,
            "worker_class": "gthread",
            "threads": self.settings.server.threads,
            "keepalive": 75,  # edges keep their connection between pushes
            # Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads
            # new connections over them. On one shared socket, whichever worker woke first took
            # a burst of connections, and kept-alive stores then all queued on one worker.
            "reuse_port": True,
            "timeout": 120,
            "graceful_timeout": 20,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "aisle-cloud",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from cloud.app import create_app

        app = create_app(self.settings)
        # What the worker holds from now on is never garbage either: the full collections that
        # a busy worker's requests trigger then walk only what the requests made.
        gc.collect()
        gc.freeze()
        return app
