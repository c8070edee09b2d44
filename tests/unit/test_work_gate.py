import threading
import time

import pytest

from edge.work_gate import WorkGate


def _until(condition, timeout: float = 5.0) -> None:
    """Wait for another thread to reach a state (a liveness bound, not a timing assumption)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the other threads never got there"
        time.sleep(0.001)


def test_no_more_than_the_slots_work_at_once_and_waiters_step_out():
    gate = WorkGate(2)
    working = peak = outside = 0
    lock = threading.Lock()
    stepped_out = threading.Event()

    def work(wait_outside: bool) -> None:
        nonlocal working, peak, outside
        with gate.entered():
            with lock:
                working += 1
                peak = max(peak, working)
            if wait_outside:
                with lock:
                    working -= 1
                with gate.stepped_out():
                    with lock:
                        outside += 1
                    stepped_out.wait(10)
                with lock:
                    working += 1
            with lock:
                working -= 1

    waiters = [threading.Thread(target=work, args=(True,)) for _ in range(2)]
    for t in waiters:
        t.start()
    _until(lambda: outside == 2)
    # Both slots' holders are waiting outside: others get in meanwhile.
    workers = [threading.Thread(target=work, args=(False,)) for _ in range(6)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(10)
    # The two slot holders are still waiting outside: had they kept their slots, no worker
    # could have finished.
    assert not any(t.is_alive() for t in workers), "work was blocked by threads waiting outside"
    assert not stepped_out.is_set()
    stepped_out.set()
    for t in waiters:
        t.join(2)
    assert peak <= 2


def test_entering_twice_on_one_thread_takes_one_slot():
    gate = WorkGate(1)
    with gate.entered(), gate.entered():
        pass
    with pytest.raises(ValueError):
        WorkGate(0)


def test_slots_go_to_the_longest_waiting_thread_first():
    gate = WorkGate(1)
    order: list[int] = []
    ready = []
    with gate.entered():
        threads = []
        for n in range(5):
            arrived = threading.Event()
            ready.append(arrived)

            def work(n: int = n, arrived: threading.Event = arrived) -> None:
                arrived.set()
                with gate.entered():
                    order.append(n)

            t = threading.Thread(target=work)
            t.start()
            arrived.wait(1)
            # Wait until it is queued behind the ones before it.
            _until(lambda n=n: len(gate._semaphore._waiters) == n + 1)
            threads.append(t)
    for t in threads:
        t.join(2)
    assert order == [0, 1, 2, 3, 4]
