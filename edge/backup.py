"""Backups of a store while it trades, and putting one back in place.

A backup is a folder: ``edge.sqlite3`` (a consistent copy made with SQLite's online backup API:
one read snapshot, so devices go on selling while it is taken), the store's keys and its
``edge.toml``, and ``manifest.json``, which says what the copy holds (sales, the last sale, the
outbox and what the cloud had acknowledged) and carries the copy's SHA-256. The folder is made
0700 and its files 0600: the keys sign exit passes and the store's requests to the cloud.

Restoring puts the copy in place of the store's database, with the server stopped (the server
holds ``server.lock`` while it runs, and restoring needs it). Nothing is deleted: the database
that was there moves into ``replaced-<time>/`` beside it. The store's own keys are kept when it
has them (a store re-enrolled after the backup signs with its new key); the backup's are used
only where the store has none (new hardware).

A restored store is usually behind what the cloud already holds from it. The first push finds
out and stops (the store's numbers would otherwise mean other sales); ``aisle edge recover``
moves it onto a new stream once HQ approves (:mod:`edge.sync_client.recovery`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.settings import EdgeSettings

MANIFEST = "manifest.json"
DATABASE = "edge.sqlite3"
FORMAT = 1


class BackupError(Exception):
    """A backup that cannot be taken or put back; the message says why."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds."""

    format: int
    store_id: str
    taken_at: str
    schema_revision: str | None
    sales: int
    last_sale_number: str | None
    last_sale_at: str | None
    outbox_last_seq: int
    acked_seq: int
    pending_events: int
    products: int
    database_bytes: int
    sha256: str
    files: list[str]

    def summary(self) -> str:
        last = (
            f"last sale {self.last_sale_number} at {self.last_sale_at}"
            if self.last_sale_number
            else "no sales"
        )
        return (
            f"store {self.store_id}, taken {self.taken_at}: {self.sales} sales ({last}); "
            f"{self.products} products; outbox up to seq {self.outbox_last_seq}, "
            f"{self.pending_events} not yet acknowledged by the cloud (acknowledged up to "
            f"{self.acked_seq}); database {self.database_bytes:,} bytes, schema "
            f"{self.schema_revision}"
        )


@contextlib.contextmanager
def server_lock(settings: EdgeSettings, *, purpose: str) -> Iterator[int]:
    """Hold ``server.lock``: one server on a store's files at a time, and none while a backup
    is put back. Raises :class:`BackupError` naming ``purpose`` when another process has it."""
    path = settings.data_dir / "server.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"a store server is running on {settings.data_dir}: stop it before {purpose}"
            ) from None
        yield fd
    finally:
        os.close(fd)


def _new_folder(parent: Path, name: str) -> Path:
    """``parent/name`` created (0700), or ``name-2``, ``name-3``... if it is taken: two restores
    in one second keep both replaced databases."""
    for n in range(1, 1000):
        folder = parent / (name if n == 1 else f"{name}-{n}")
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return folder
    raise BackupError(f"{parent} holds too many {name}* folders")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _to_wal(database: Path) -> None:
    """Switch the copy (one self-contained file) back to WAL mode, as the store runs it, before
    it goes in place: the switch goes through a rollback journal, and that journal's unlink is
    made durable here (the folder is synced after the move), not left to the server's first
    start, where a power cut could bring it back hot over a database that had moved on."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=EXTRA")  # the folder is synced once the journal is gone
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise BackupError(f"the copy at {database} cannot be put in WAL mode ({mode})")
    finally:
        db.close()  # the last connection: checkpointed, its WAL and index deleted


def _describe(database: Path) -> dict[str, Any]:
    """What the copy at ``database`` holds, read from the copy itself."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy at {database} is damaged: {check}")

        def one(sql: str) -> Any:
            return db.execute(sql).fetchone()

        last = one("SELECT number, created_at FROM sales ORDER BY created_at DESC, number DESC")
        return {
            "schema_revision": one("SELECT version_num FROM alembic_version")[0],
            "sales": one("SELECT COUNT(*) FROM sales")[0],
            "last_sale_number": last[0] if last else None,
            "last_sale_at": last[1] if last else None,
            "outbox_last_seq": one(
                "SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'outbox'"
            )[0],
            "acked_seq": one("SELECT COALESCE(MAX(acked_seq), 0) FROM sync_state")[0],
            "products": one("SELECT COUNT(*) FROM products")[0],
        }
    finally:
        db.close()


def take_backup(settings: EdgeSettings, destination: Path, *, now: datetime) -> Manifest:
    """Copy the store into ``destination`` (a new folder) while it trades; returns the manifest."""
    if destination.exists() and any(destination.iterdir()):
        raise BackupError(f"{destination} exists and is not empty; choose a new folder")
    source = settings.database_path
    if not source.exists():
        raise BackupError(f"no store database at {source}")
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(destination, 0o700)
    copy = destination / DATABASE
    try:
        src = sqlite3.connect(source)
        dst = sqlite3.connect(copy)
        try:
            # One step: one read snapshot of the source (WAL mode lets writers go on meanwhile),
            # so the copy is exactly the store at one instant.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
            src.close()
        os.chmod(copy, 0o600)
        facts = _describe(copy)
        files = [DATABASE]
        for extra in (
            settings.store_key_path,
            settings.sync_key_path,
            settings.data_dir / "edge.toml",
        ):
            if extra.exists():
                shutil.copyfile(extra, destination / extra.name)
                os.chmod(destination / extra.name, 0o600)
                files.append(extra.name)
        manifest = Manifest(
            format=FORMAT,
            store_id=settings.store.id,
            taken_at=now.isoformat(),
            pending_events=max(0, facts["outbox_last_seq"] - facts["acked_seq"]),
            database_bytes=copy.stat().st_size,
            sha256=_sha256(copy),
            files=files,
            **facts,
        )
        (destination / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        os.chmod(destination / MANIFEST, 0o600)
        for name in [*files, MANIFEST]:
            _fsync(destination / name)
        _fsync(destination)
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    return manifest


def read_manifest(backup: Path) -> Manifest:
    try:
        raw = json.loads((backup / MANIFEST).read_text())
        return Manifest(**raw)
    except FileNotFoundError:
        raise BackupError(f"{backup} is not a store backup (no {MANIFEST})") from None
    except (ValueError, TypeError) as exc:
        raise BackupError(f"{backup / MANIFEST} cannot be read: {exc}") from None


@dataclass(frozen=True, slots=True)
class RestoreReport:
    manifest: Manifest
    moved_aside: Path | None
    keys_restored: list[str]
    keys_kept: list[str]


def restore_backup(settings: EdgeSettings, backup: Path, *, now: datetime) -> RestoreReport:
    """Put ``backup`` in place of the store's database; the server must be stopped."""
    manifest = read_manifest(backup)
    if manifest.store_id != settings.store.id:
        raise BackupError(
            f"{backup} is a backup of store {manifest.store_id}, not of {settings.store.id}"
        )
    copy = backup / DATABASE
    if not copy.exists() or _sha256(copy) != manifest.sha256:
        raise BackupError(f"{copy} is missing or not the copy its manifest describes")
    _describe(copy)  # and whole
    data = settings.data_dir
    with server_lock(settings, purpose="restoring a backup"):
        target = settings.database_path
        present = [
            p for p in (target, *(Path(f"{target}{s}") for s in ("-wal", "-shm"))) if p.exists()
        ]
        aside = None
        if present:
            aside = _new_folder(data, f"replaced-{now.strftime('%Y%m%dT%H%M%SZ')}")
            for path in present:
                os.replace(path, aside / path.name)
        incoming = target.with_name(target.name + ".restoring")
        shutil.copyfile(copy, incoming)
        os.chmod(incoming, 0o600)
        _to_wal(incoming)
        _fsync(incoming)
        os.replace(incoming, target)
        _fsync(data)
        restored, kept = [], []
        for key in (settings.store_key_path, settings.sync_key_path):
            theirs = backup / key.name
            if not theirs.exists():
                continue
            if key.exists():
                kept.append(key.name)
            else:
                shutil.copyfile(theirs, key)
                os.chmod(key, 0o600)
                restored.append(key.name)
    return RestoreReport(manifest, aside, restored, kept)
