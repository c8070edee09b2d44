"""How many of a server process's request threads do store work at the same moment.

A worker process has more threads than it should run at once: extra threads keep devices served
while others wait on a card terminal, but threads that all work at once only queue on the GIL
and the store's write lock, and every request's latency grows with the queue. So a request holds
one of ``slots`` places while it works, taken first come first served, and steps out while it
waits on the network (a card authorization), letting another request work meanwhile.

Measured (BENCHMARKS.md, 32 devices scanning, 2 processes x 8 threads, 3 runs each): scan p99
53.7-58.0 ms without the gate, 44.5 ms with 4 slots handed out in order (an unfair semaphore
made it worse, 58.0 ms), at the same throughput.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class FairSemaphore:
    """A semaphore that hands a freed slot to the thread that has waited longest.

    ``threading.Semaphore`` wakes an arbitrary waiter, so under load some requests wait many
    turns while others go straight through: the tail latency grows. First come, first served
    keeps every request's wait close to the queue's length.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # release() handed this thread the slot

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1


class WorkGate:
    """A counting gate with a way out for threads that are only waiting."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a work gate needs at least one slot")
        self.slots = slots
        self._semaphore = FairSemaphore(slots)
        self._local = threading.local()

    def _inside(self) -> bool:
        return bool(getattr(self._local, "inside", False))

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Hold a slot for the duration (re-entering on the same thread is free)."""
        if self._inside():
            yield
            return
        self._semaphore.acquire()
        self._local.inside = True
        try:
            yield
        finally:
            self._local.inside = False
            self._semaphore.release()

    @contextmanager
    def stepped_out(self) -> Iterator[None]:
        """Give the slot up while waiting on something outside (a payment provider)."""
        if not self._inside():
            yield
            return
        self._local.inside = False
        self._semaphore.release()
        try:
            yield
        finally:
            self._semaphore.acquire()
            self._local.inside = True
