"""Serving the store app: granian's event-driven HTTP server in front of the WSGI app.

A store holds hundreds of device connections: 30 kiosks, 50 handhelds and tablets, a few hundred
phones on scan-to-buy, each keeping its connection open between scans, and now and then a
broken or hostile client that opens a connection and sends nothing, or sends a byte at a time.
A thread-per-connection server (gunicorn's gthread worker, used before) gives such a client a
thread, so a few dozen idle sockets freeze the store; capping connections per worker makes the
next device wait instead. Here connections live in granian's event loop (Rust, tokio), which
holds thousands of them for a few kilobytes each. Headers must arrive within
``server.header_timeout_s``, and a kept-alive connection that stays quiet that long is closed
(the device reconnects at its next scan); a body must follow within ``server.body_timeout_s``
(:mod:`edge.http_gateway` reads it in the event loop). So neither an idle flood nor clients that
send a byte at a time can pile up or hold a thread. The measurements that chose this are in
BENCHMARKS.md and ``bench/run_open_loop_bench.py``.

Each worker process (the GIL caps one at a core) runs the WSGI app on ``server.threads``
threads, given whole requests by :class:`edge.http_gateway.Gateway`; ``server.work_slots`` of
them do store work at once (``edge/work_gate.py``), the others wait on card terminals.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal
import sys
import threading
from typing import Any

from edge.http_gateway import Gateway
from edge.settings import EdgeSettings

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005
#: glibc's malloc gives each thread that allocates its own arena (up to 8 per core); eight
#: request threads per worker then hold several mostly empty arenas. Two are plenty here
#: (Python's small objects have their own allocator): about 5 MB less per worker, measured.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h
#: Descriptors a server process may open: every device connection takes one.
WANTED_FILES = 65_536
DEFAULT_MAX_BODY = 256 * 1024


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


def raise_open_files_limit(wanted: int = WANTED_FILES) -> int:
    """Lift the soft limit on open files toward ``wanted`` (never above the hard limit).

    Many systems start services with a soft limit of 1,024 descriptors: a store's devices and
    a flood of stray connections would reach it. Returns the limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_held = threading.local()  # the forking thread's signal mask from before the fork


def _hold_stop_signals() -> None:
    _held.mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


def _release_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, getattr(_held, "mask", set()))


def _default_stop_signals() -> None:
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    finally:
        _release_stop_signals()  # one that came meanwhile is delivered now: the child stops


def default_stop_signals_in_forks() -> None:
    """Every process forked from here on starts with the default action for SIGTERM and SIGINT.

    A forked worker inherits the master's handlers, which only set a flag in the master's
    memory: a stop signal that arrived while the worker started (before granian set the
    worker's own handlers) was lost, and the worker was killed after the grace period. Reset
    right after the fork, the default applies until granian sets its handlers: a starting
    worker serves no one, and stops at once. The signals are held back from just before the
    fork until that reset, because the interpreter's own fork hooks (threading's, logging's)
    run Python code in the child first, where the inherited handler would swallow a stop the
    master sent to the worker it had just forked (as it does when told to stop while
    respawning one). The master, held back only while it forks, gets its own right after."""
    os.register_at_fork(
        before=_hold_stop_signals,  # hooks run before a fork in reverse order: this one first
        after_in_parent=_release_stop_signals,
        after_in_child=_default_stop_signals,  # in order after a fork: this one last
    )


class EdgeServer:
    """granian, configured from the store's settings; each worker builds its own app."""

    def __init__(self, settings: EdgeSettings, *, host: str, port: int, workers: int) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.workers = workers

    def _preload(self) -> None:
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

    def granian(self) -> Any:
        """The granian server object (not started)."""
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP1Settings
        from granian.log import LogLevels
        from granian.server import Server

        s = self.settings.server
        return Server(
            "edge.server:EdgeServer",  # a label: the app comes from the loader given to serve()
            address=self.host,
            port=self.port,
            interface=Interfaces.RSGI,
            workers=self.workers,
            runtime_threads=1,
            http=HTTPModes.http1,
            websockets=False,
            backlog=s.backlog,
            backpressure=s.max_connections,
            http1_settings=HTTP1Settings(
                header_read_timeout=int(s.header_timeout_s * 1000), keep_alive=True
            ),
            log_level=LogLevels.warning,
            respawn_failed_workers=True,
            respawn_interval=1.0,
            workers_kill_timeout=20,
        )

    def worker_app(self) -> Any:
        """One worker's WSGI app, with the store's background sync started in it.

        Runs in each worker after the fork: SQLite connections, keys and the scheduler's
        threads belong to the process that uses them.
        """
        from edge.app import create_app

        settings = self.settings
        # A thread holding the store's write lock gives up the GIL at every SQLite call and
        # must win it back from threads busy with other requests; the default 5 ms switch
        # interval turns that into a convoy where scans queue behind the lock. 0.5 ms keeps
        # it moving.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        app = create_app(settings)
        from edge.sync_client.scheduler import SyncRunner, SyncScheduler

        # Maintenance always; pushing and pulling when sync is enabled.
        ctx = app.extensions["aisle"]
        scheduler = SyncScheduler(SyncRunner(settings, ctx.db, ctx.clock), payments=ctx.payments)
        scheduler.start()
        if settings.sync.enabled:
            app.extensions["aisle_sync"] = scheduler
        return app

    def worker_gateway(self) -> Gateway:
        """What granian serves in a worker: the app behind its gateway."""
        app = self.worker_app()
        # The master froze the code; what the worker built (the app, its engines and caches)
        # is never garbage either: kept out of the collector's reach, the full collections that
        # a busy worker's requests trigger no longer walk the whole heap each time.
        gc.collect()
        gc.freeze()
        return Gateway(
            app,
            threads=self.settings.server.threads,
            max_body=int(app.config.get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_BODY),
            body_timeout_s=self.settings.server.body_timeout_s,
        )

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM; a worker that dies is started again."""
        limit_malloc_arenas()  # before any thread exists; the forked workers inherit it
        files = raise_open_files_limit()
        if files < self.workers * self.settings.server.max_connections + 256:
            log.warning("only %d open files allowed: devices may be refused connections", files)
        self._preload()
        default_stop_signals_in_forks()
        # Workers are forked, so the loader is this very object's method.
        self.granian().serve(target_loader=self.worker_gateway, wrap_loader=False)
