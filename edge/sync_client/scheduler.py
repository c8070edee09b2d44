"""Background work inside the store server: APScheduler jobs that push, pull and maintain, and
release card payments a crashed checkout left open.

Every server process runs the jobs, and each run first takes ``sync.lock`` (``flock``, not
waiting): whichever process holds it talks to the cloud, the others skip that run. So exactly one
process pushes at a time, and if it dies the kernel drops its lock and another takes over on its
next run. A write in any process calls :meth:`SyncScheduler.kick`, which brings the next push
forward to ``push_debounce_s`` from now, so a burst of sales becomes one batch.

Nothing here runs on a request thread: a sale never waits for the network.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers.background import BackgroundScheduler

from edge.checkout import payment_intents
from edge.checkout.payments import PaymentProvider
from edge.db import Database
from edge.maintenance import run_maintenance
from edge.settings import EdgeSettings
from edge.sync_client import recovery, service
from edge.sync_client.transport import CloudClient, CloudLinkError
from shared.clock import Clock
from sync.keys import KeyFileError
from sync.protocol import ERR_DIVERGED

log = logging.getLogger(__name__)

#: What a run says when another process holds the sync lock.
BUSY = "another process is syncing"
#: How soon a push is tried again when the lock was busy or a write came in during a run.
RETRY_S = 0.5


@contextlib.contextmanager
def sync_lock(path: Path, *, wait: bool = False) -> Iterator[bool]:
    """Hold the store's sync lock; yields False (and holds nothing) if another process has it
    and ``wait`` is false."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class SyncRunner:
    """One push-and-pull exchange with the cloud, under the sync lock, with backoff."""

    def __init__(
        self,
        settings: EdgeSettings,
        db: Database,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        client_factory: Callable[[EdgeSettings, service.Link], CloudClient] = service.client_for,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.rng = rng or random.Random()
        self._client_factory = client_factory
        self._client: CloudClient | None = None
        self._client_link: service.Link | None = None

    def _client_for(self, link: service.Link) -> CloudClient:
        if self._client is None or self._client_link != link:
            if self._client is not None:
                self._client.close()
            self._client = self._client_factory(self.settings, link)
            self._client_link = link
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def run(self, *, push: bool = True, pull: bool = False, force: bool = False) -> str:
        """Push (drain the outbox) and/or pull once; returns what happened, for logs and CLI.

        ``force`` ignores the backoff (``aisle edge sync-now``) and waits for the lock.
        """
        link = service.link_of(self.db)
        if link is None:
            return "not enrolled"
        now = self.clock.now()
        if not force and not service.may_attempt(
            self.db, now, max_s=self.settings.sync.backoff_max_s
        ):
            return "backing off"
        with sync_lock(self.settings.sync_lock_path, wait=force) as held:
            if not held:
                return BUSY
            try:
                client = self._client_for(link)
            except KeyFileError as exc:
                return f"cannot sync: {exc}"
            parts = []
            try:
                if push and service.halted(self.db) == ERR_DIVERGED:
                    # Restored or replaced: nothing goes out under numbers the cloud gave to
                    # other events; once HQ approves the store's recovery it is applied here.
                    waiting = recovery.resume_if_approved(
                        self.db, client, store_id=link.store_id, now=self.clock.now()
                    )
                    if waiting is not None:
                        parts.append(waiting)
                        push = False
                if push:
                    report = service.drain(
                        self.db,
                        client,
                        link,
                        batch_events=self.settings.sync.batch_events,
                        now_fn=self.clock.now,
                        pause_s=self.settings.sync.batch_pause_s,
                    )
                    parts.append(
                        f"pushed {report.sent} events, cloud holds up to {report.acked_seq}"
                    )
                if pull:
                    pulled = service.pull_all(self.db, client, now=self.clock.now())
                    parts.append("pulled " + ", ".join(f"{feed} {n}" for feed, n in pulled.items()))
            except CloudLinkError as exc:
                wait = service.record_failure(
                    self.db,
                    exc,
                    now=self.clock.now(),
                    initial_s=self.settings.sync.backoff_initial_s,
                    max_s=self.settings.sync.backoff_max_s,
                    rng=self.rng,
                )
                parts.append(f"failed ({exc.code}): {exc.message}; next try in {wait:.1f} s")
            return "; ".join(parts)


class DaemonThreadExecutor(BaseExecutor):
    """Runs each job run in a daemon thread of its own.

    APScheduler's default executor is a ``concurrent.futures`` pool, whose threads the
    interpreter joins at exit: a job in progress (a checkpoint waiting for readers, a cloud
    that does not answer) kept a stopping worker alive until the server killed it after its
    grace period. Every job here is safe to stop at any point (each is as crash-safe as a
    SIGKILL requires), so none may hold the process. ``max_instances=1`` on each job keeps
    runs from piling up."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def work() -> None:
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)

        threading.Thread(target=work, name=f"job-{job.id}", daemon=True).start()


def background_scheduler() -> BackgroundScheduler:
    """The scheduler of one server process's jobs, which never keep the process alive."""
    return BackgroundScheduler(
        timezone=UTC, daemon=True, executors={"default": DaemonThreadExecutor()}
    )


class SyncScheduler:
    """The APScheduler jobs of one server process."""

    def __init__(self, runner: SyncRunner, *, payments: PaymentProvider | None = None) -> None:
        self.runner = runner
        self.payments = payments
        self.settings = runner.settings.sync
        self._scheduler = background_scheduler()
        self._kick_lock = threading.Lock()
        self._kicked = threading.Event()

    def start(self) -> None:
        jitter = random.random()  # processes started together do not run in lockstep
        now = datetime.now(UTC)
        maintenance = self.runner.settings.maintenance
        self._scheduler.add_job(
            self._maintain,
            "interval",
            seconds=maintenance.interval_s,
            id="maintenance",
            next_run_time=now + timedelta(seconds=5 + jitter),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        # A checkout a worker's crash abandoned holds the shopper's money until released.
        grace = maintenance.abandoned_payment_grace_s
        self._scheduler.add_job(
            self._release_payments,
            "interval",
            seconds=max(5.0, grace),
            id="payments",
            next_run_time=now + timedelta(seconds=max(5.0, grace) + jitter),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        if not self.runner.settings.sync.enabled:
            self._scheduler.start()
            return
        self._scheduler.add_job(
            self._push,
            "interval",
            seconds=self.settings.push_interval_s,
            id="push",
            next_run_time=now + timedelta(seconds=jitter),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.add_job(
            self._pull,
            "interval",
            seconds=self.settings.pull_interval_s,
            id="pull",
            next_run_time=now + timedelta(seconds=1 + jitter),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.start()

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=False)
        self.runner.close()

    def kick(self) -> None:
        """Something was written: push soon (debounced), without waiting for the interval."""
        self._kicked.set()
        self._bring_forward(self.settings.push_debounce_s)

    def _bring_forward(self, delay_s: float) -> None:
        soon = datetime.now(UTC) + timedelta(seconds=delay_s)
        with self._kick_lock:
            job = self._scheduler.get_job("push")
            if job is not None and job.next_run_time is not None and job.next_run_time > soon:
                job.modify(next_run_time=soon)

    def _push(self) -> None:
        self._kicked.clear()
        outcome = self._run(push=True, pull=False)
        if outcome == BUSY or self._kicked.is_set():
            # Another process held the lock (it may be pulling, not pushing), or a sale came in
            # while this run was going: APScheduler drops a run that would overlap a running
            # one, so ask again shortly rather than at the next interval.
            self._bring_forward(max(self.settings.push_debounce_s, RETRY_S))

    def _pull(self) -> None:
        self._run(push=False, pull=True)

    def _release_payments(self) -> None:
        settings = self.runner.settings
        if self.payments is None:
            return
        try:
            with sync_lock(settings.data_dir / "payments.lock") as held:
                if held:
                    payment_intents.reconcile(
                        self.runner.db,
                        self.payments,
                        now=self.runner.clock.now(),
                        older_than=payment_intents.abandoned_after(settings),
                    )
        except Exception:  # a bug (or an acquirer down) must not stop the schedule
            log.exception("releasing abandoned card payments failed")

    def _maintain(self) -> None:
        settings = self.runner.settings
        lock = settings.data_dir / "maintenance.lock"
        try:
            with sync_lock(lock) as held:
                if held:
                    run_maintenance(
                        self.runner.db,
                        now=self.runner.clock.now(),
                        keep_days=settings.maintenance.outbox_keep_days,
                    )
        except Exception:  # a bug must not stop the schedule; the next run tries again
            log.exception("maintenance run failed")

    def _run(self, *, push: bool, pull: bool) -> str:
        try:
            outcome = self.runner.run(push=push, pull=pull)
        except Exception:  # a bug must not stop the schedule; the next run tries again
            log.exception("sync run failed")
            return "failed (bug)"
        if outcome.startswith("failed"):
            log.warning("sync: %s", outcome)
        return outcome
