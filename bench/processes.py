"""Processes for the benchmarks: running commands, starting and stopping servers, sampling them.

A :class:`Server` is a process group started by a benchmark and stopped by signalling that group
only; a :class:`Sampler` follows its process tree (VmRSS, Pss, CPU ticks, client connections per
process). Also the machine the run is on (:func:`machine`, :func:`cpu_probe`,
:func:`wait_quiet`) and which code is under test (the work tree, or a ``git archive`` snapshot
made by :func:`use_code_snapshot`, with :func:`code_fingerprint` to notice edits during a run).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
# Where the code under test lives: the work tree, or a ``git archive`` of ``--code REV``.
CODE: dict[str, Any] = {"root": ROOT, "rev": None}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw: Any) -> str:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


FINGERPRINTS: list[str] = []
#: The packages a store server imports (``shared`` exists from its introduction on).
SERVER_PACKAGES = ("shared", "edge", "sync", "aisle")


def code_fingerprint() -> str:
    """A hash of the Python code the servers import (shared/, edge/, sync/, aisle/)."""
    h = hashlib.sha256()
    root = CODE["root"]
    for package in SERVER_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            with contextlib.suppress(OSError):
                h.update(path.read_bytes())
    return h.hexdigest()[:12]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parents() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def process_tree(root: int) -> list[int]:
    parents = _parents()
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(frontier)
    return tree


def vmrss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def system_busy_ticks() -> int:
    """Busy CPU ticks of the whole machine (all CPUs): everything but idle and iowait."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    return sum(values) - values[3] - values[4]


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f[9])
    return inodes


def connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    """How many of the server's established client connections each process holds."""
    inodes = established_inodes(port)
    out = {}
    for pid in pids:
        n = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        n += 1
        out[pid] = n
    return out


class Sampler(threading.Thread):
    """Samples the server's process tree: summed VmRSS and Pss, and CPU ticks, every 0.25 s."""

    def __init__(self, root: int, port: int | None = None) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.port = port
        # (time, {pid: established client connections}), every 2 s
        self.conn_splits: list[tuple[float, dict[int, int]]] = []
        self.samples: list[tuple[float, int, int, int, int, int]] = []
        self.rss_at_max: dict[int, int] = {}  # pid -> VmRSS kB, at the largest summed sample
        self._stop_event = threading.Event()
        self._pids = process_tree(root)
        self._pids_at = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = time.monotonic()
            if now - self._pids_at > 2:
                self._pids, self._pids_at = process_tree(self.root), now
                if self.port:
                    self.conn_splits.append((now, connections_by_process(self._pids, self.port)))
            per_pid = {p: vmrss_kb(p) for p in self._pids}
            rss = sum(per_pid.values())
            if rss > sum(self.rss_at_max.values()):
                self.rss_at_max = per_pid
            pss = sum(pss_kb(p) for p in self._pids)
            ticks = sum(cpu_ticks(p) for p in self._pids)
            busy = system_busy_ticks()
            self.samples.append((now, rss, pss, ticks, len(self._pids), busy))
            self._stop_event.wait(0.25)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def window(self, start: float, end: float) -> dict[str, Any]:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        return {
            "rss_max_mb": max(s[1] for s in inside) / 1024,
            "pss_max_mb": max(s[2] for s in inside) / 1024,
            "processes": max(s[4] for s in inside),
            "server_cpu_cores": (last[3] - first[3]) / CLK_TCK / (last[0] - first[0]),
            "machine_busy_cores": (last[5] - first[5]) / CLK_TCK / (last[0] - first[0]),
        }


class Server:
    """A server process group started by this script; stopped by signalling that group only."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.cmd, self.env, self.port = name, cmd, env, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> Server:
        FINGERPRINTS.append(code_fingerprint())
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=tempfile.gettempdir(),  # not the work tree: '' on sys.path must not shadow --code
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.output()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    time.sleep(0.5)  # let every worker finish booting
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz in 60 s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()


# --- the machine ---------------------------------------------------------------------------------


def cpu_probe() -> float:
    """Milliseconds for a fixed pure-Python loop (best of 3): shows a host that got slower."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        sum(i * i for i in range(200_000))
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def wait_quiet(limit: float) -> None:
    """Wait (at most ``limit`` s) until the machine is nearly idle before starting a server."""
    deadline = time.monotonic() + limit
    while limit > 0:
        b0, t0 = system_busy_ticks(), time.monotonic()
        time.sleep(1)
        busy = (system_busy_ticks() - b0) / CLK_TCK / (time.monotonic() - t0)
        if busy < 0.25:
            return
        if time.monotonic() > deadline:
            log(f"machine still busy ({busy:.2f} cores used by others); going ahead")
            return
        log(f"waiting for a quiet machine ({busy:.2f} cores busy)")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    commit = dirty = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        status = subprocess.run(
            # --no-optional-locks: read only, never refreshes the index.
            ["git", "--no-optional-locks", "status", "--porcelain", "--", *SERVER_PACKAGES],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        dirty = "clean" if not status.strip() else f"{len(status.splitlines())} files modified"
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "commit": commit,
        "worktree_edge_sync_aisle": dirty,
        "wrk": shutil.which("wrk") or "not installed",
        "loadavg_at_start": os.getloadavg(),
        "code_under_test": (
            f"git archive of {CODE['rev']}" if CODE["rev"] else "work tree (as found on disk)"
        ),
    }


# --- the code under test ------------------------------------------------------------------------


def use_code_snapshot(rev: str, tmp: Path) -> str:
    """Extract shared/, edge/, sync/, aisle/, devices/ at ``rev`` (read-only ``git archive``;
    those of them that exist there) and make this process and every child import them instead
    of the work tree. Returns the short sha."""
    sha = run(["git", "rev-parse", "--short", f"{rev}^{{commit}}"], cwd=ROOT).strip()
    target = tmp / "code"
    target.mkdir()
    present = set(run(["git", "ls-tree", "--name-only", sha], cwd=ROOT).split())
    packages = [p for p in (*SERVER_PACKAGES, "devices") if p in present]
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha, *packages],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(target), os.environ.get("PYTHONPATH")])
    )
    sys.path.insert(0, str(target))
    CODE["root"], CODE["rev"] = target, sha
    return sha


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="aisle-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
