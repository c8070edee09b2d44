"""A throwaway PostgreSQL cluster of the test's own, for tests that make a database die or
restore one elsewhere, and the client tools those tests run (``pg_dump``, ``pg_restore``).

The machine's PostgreSQL serves other work too: a test never stops or restarts it. A test that
needs an outage runs ``initdb`` into a temporary folder, starts that cluster on a free port
(its socket in the same folder) and stops it with ``pg_ctl -m immediate``, the way a crash
would. Run as root (as CI does), the cluster's processes run as the ``postgres`` user, which
PostgreSQL insists on.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url


def postgres_binaries() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: Debian keeps them off the PATH."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for version in sorted(root.iterdir(), reverse=True):
            if (version / "bin" / "initdb").is_file():
                return version / "bin"
    return None


def postgres_tool(name: str) -> Path | None:
    """A PostgreSQL client program (``pg_dump``, ``pg_restore``): beside ``initdb``, in
    Debian's versioned folders, or on the PATH."""
    folders = [postgres_binaries()]
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        folders += [v / "bin" for v in sorted(root.iterdir(), reverse=True)]
    for folder in folders:
        if folder is not None and (folder / name).is_file():
            return folder / name
    found = shutil.which(name)
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ThrowawayCluster:
    """``initdb`` + ``pg_ctl`` on a folder of the test's; only this cluster is ever stopped."""

    root: Path
    bin: Path
    port: int = 0

    @classmethod
    def create(cls) -> ThrowawayCluster:
        """A new cluster in a fresh folder of the system's temporary directory (not pytest's:
        that one is private to the user running the tests, and the cluster runs as
        ``postgres``)."""
        binaries = postgres_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed")
        root = Path(tempfile.mkdtemp(prefix="aisle-pg-"))
        cluster = cls(root, binaries, _free_port())
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster._run(
            "initdb",
            "-D",
            str(cluster.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return cluster

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c shared_buffers=16MB -c max_connections=40"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def require_tools(*names: str) -> None:
    """Skip the test when one of PostgreSQL's programs ``names`` is not installed; fail it
    instead when ``CI`` is set (CI has them, and the PostgreSQL tests must run there)."""
    missing = [name for name in names if postgres_tool(name) is None]
    if missing:
        message = f"this test needs PostgreSQL's {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def throwaway_cluster(*needs: str) -> Iterator[ThrowawayCluster]:
    """A started cluster of the test's own, destroyed afterwards. Without PostgreSQL's programs
    (``initdb`` and ``needs``) the test is skipped, or fails when ``CI`` is set."""
    require_tools("initdb", "pg_ctl", *needs)
    own = ThrowawayCluster.create()
    own.start()
    try:
        yield own
    finally:
        own.destroy()


# --- the client side ----------------------------------------------------------------------------


def conninfo(url: str) -> str:
    """libpq's conninfo for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _libpq_args(url: str) -> list[str]:
    u = make_url(url)
    return [
        "-h",
        str(u.host),
        "-p",
        str(u.port or 5432),
        "-U",
        str(u.username),
        "-d",
        str(u.database),
    ]


def dump(url: str, path: Path) -> None:
    """``pg_dump -Fc`` of the database at ``url`` into ``path``."""
    tool = postgres_tool("pg_dump")
    assert tool is not None
    command = [str(tool), "-Fc", "-f", str(path), *_libpq_args(url)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def restore(path: Path, url: str) -> None:
    """``pg_restore`` of ``path`` into the (empty) database at ``url``."""
    tool = postgres_tool("pg_restore")
    assert tool is not None
    command = [str(tool), "--no-owner", "--exit-on-error", *_libpq_args(url), str(path)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def create_database(url: str, name: str) -> str:
    """A new database ``name`` on ``url``'s server; returns its URL."""
    with psycopg.connect(conninfo(url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return with_database(url, name)


def next_xid(url: str) -> int:
    """The transaction id the server at ``url`` hands out next."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
        ).fetchone()
        assert row is not None
        return int(row[0])


def advance_xids_to(url: str, target: int) -> None:
    """Move the server's transaction counter to at least ``target``, as a cloud that has lived
    would have it."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        while next_xid(url) < target:
            for _ in range(500):
                conn.execute("SELECT pg_current_xact_id()")
