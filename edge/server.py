"""Serving the store app with gunicorn: several processes (the GIL caps one at a core), each
with a few threads for devices that wait on the payment provider."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from edge.settings import EdgeSettings


class EdgeServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured from the store's settings; each worker builds its own app."""

    def __init__(self, settings: EdgeSettings, *, host: str, port: int, workers: int) -> None:
        self.settings = settings
        self.bind = f"{host}:{port}"
        self.workers = workers
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": self.bind,
            "workers": self.workers,
            "worker_class": "gthread",
            "threads": self.settings.server.threads,
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

        return create_app(self.settings)
