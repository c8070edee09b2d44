"""A stop signal that reaches a store server's worker while it starts stops it at once.

granian's master handles SIGTERM by setting a flag in its own memory; a worker forked from it
inherits that handler until granian sets the worker's own, so a SIGTERM in between was lost and
the worker ran on until the master killed it after the grace period. The server resets the
signals right after each fork, and holds them back from just before the fork until that reset:
the interpreter's own fork hooks (threading's, logging's) run Python code in the child first,
and the inherited handler could swallow a signal there. Each check runs in a process of its
own: the reset applies to every fork of the process that asks for it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from edge.server import default_stop_signals_in_forks

    flags = []
    signal.signal(signal.SIGTERM, lambda *_: flags.append("stop"))  # as granian's master does
    if sys.argv[1] == "early":
        def early():  # stands for the interpreter's own hooks, which run before the reset
            os.kill(os.getpid(), signal.SIGTERM)  # the master's stop, a moment after the fork
            for _ in range(100_000):  # Python code: the inherited handler would run here
                pass
        os.register_at_fork(after_in_child=early)
    if sys.argv[1] in ("reset", "early"):
        default_stop_signals_in_forks()
    pid = os.fork()
    if pid == 0:  # a worker that has not yet set handlers of its own
        if sys.argv[1] != "early":
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        os._exit(0)  # still running: the signal was lost
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    print("killed" if killed else "ran on")
    """
)


def _fork_and_stop(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_a_worker_stopped_while_it_starts_stops_at_once() -> None:
    assert _fork_and_stop("reset") == "killed"


def test_a_stop_that_arrives_during_the_fork_hooks_stops_the_worker() -> None:
    """The master stops a worker it has just forked (the stop came while it respawned one)."""
    assert _fork_and_stop("early") == "killed"


def test_without_the_reset_the_inherited_handler_swallows_the_signal() -> None:
    """The failure the reset prevents, on the same child: the signal is lost."""
    assert _fork_and_stop("inherit") == "ran on"
