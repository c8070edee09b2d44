"""Running ``aisle`` commands and servers as child processes, for the demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from devices.client import AisleClient, AisleClientError

HEALTH_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 120.0
# The checkout this file lives in, so the subprocesses run this code whatever the working directory.
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class DemoError(Exception):
    """A setup step failed; the message says which and shows what the command printed."""


def aisle_cmd() -> list[str]:
    return [sys.executable, "-m", "aisle"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # the server log is read while it runs
    return env


def aisle(*args: str) -> list[str]:
    """Run ``aisle ARGS`` to completion; returns its stdout lines, or raises DemoError."""
    cmd = [*aisle_cmd(), *args]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=child_env(), timeout=CLI_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise DemoError(
            f"`aisle {' '.join(args)}` took longer than {CLI_TIMEOUT_S:.0f} s"
        ) from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise DemoError(f"`aisle {' '.join(args)}` exited with {done.returncode}:\n{output}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise DemoError(f"`aisle {' '.join(args)}` printed nothing")
    return lines


def free_port() -> int:
    # The port could be taken again before the server binds it; on this machine that is rare and
    # the health check then reports the server's own error.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(base_url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last = "no answer yet"
    with AisleClient(base_url, None, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise DemoError(
                    f"the server exited with {server.returncode} while starting:\n{tail(log_path)}"
                )
            try:
                client.health()
                return
            except AisleClientError as exc:
                last = str(exc)
            time.sleep(0.2)
    raise DemoError(
        f"the server was not healthy after {HEALTH_TIMEOUT_S:.0f} s ({last}):\n{tail(log_path)}"
    )


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM for a graceful stop; after STOP_TIMEOUT_S, SIGKILL the server's process group."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # The group holds only what this server started (its session is its own).
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            server.kill()
        server.wait()
