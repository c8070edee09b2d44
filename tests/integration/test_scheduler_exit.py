"""A server process whose background job is in progress still stops when told to.

Granian stops a worker by letting its serving loop return; the interpreter then waits for every
non-daemon thread. APScheduler's default executor runs jobs in a ``concurrent.futures`` pool,
whose threads the interpreter joins at exit: a job in progress (a WAL checkpoint waiting for
readers, a cloud that does not answer) kept a stopping worker alive until the server killed it.
Every job of the store is safe to stop at any point (each is crash-safe), so the scheduler runs
them in threads that never hold the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent(
    """
    import threading, time
    from datetime import UTC, datetime
    from edge.sync_client.scheduler import background_scheduler

    started = threading.Event()

    def slow_job():
        started.set()
        time.sleep(120)

    scheduler = background_scheduler()
    scheduler.add_job(slow_job, next_run_time=datetime.now(UTC))
    scheduler.start()
    assert started.wait(10), "the job never started"
    print("job running; main returns", flush=True)
    """
)


def test_a_job_in_progress_does_not_keep_the_process_alive() -> None:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert "job running; main returns" in done.stdout
    assert took < 30, f"the process waited {took:.1f} s for its job"  # the job sleeps 120 s
