"""A power cut for SQLite: only what was fsynced survives.

SIGKILL is not a power cut: the kernel keeps every byte a killed process wrote, fsynced or not.
To lose what had not reached the disk, this module registers a SQLite VFS (through ctypes, on the
very libsqlite3 the ``sqlite3`` module uses) that wraps the default ``unix`` one and changes one
thing: when SQLite syncs a watched file, the file as it now is becomes that file's *durable
image* (copied beside it). A power cut is then: stop every process using the files (SIGKILL, or
drop the connections of this process while the disk is "off"), and put the durable images back
in place of the files, deleting those never synced. Whatever SQLite wrote without syncing is gone,
exactly as after a real power cut in the worst case the kernel allows.

An unlink is metadata: SQLite deletes a rollback journal (to commit, in DELETE mode) or the WAL
(at the last close) and syncs the folder only when asked to (``synchronous=EXTRA``). Such an
unlink reaches the disk with the next sync of any file of the database (a journaling file system
writes its metadata in order, and an fsync commits what came before it); until then a power cut
brings the file back as it was last synced.

Only the files of the watched database (``<db>``, ``<db>-wal``, ``<db>-journal``) are imaged; the
shared-memory index (``-shm``) is never durable and is deleted. Other SQLite files of the process
(an acquirer's books, other stores) pass through untouched.

Use it in this process with :func:`watch`, or in a server process by starting it with
:func:`server_env` (a ``sitecustomize`` on ``PYTHONPATH`` installs the VFS at interpreter start,
before any connection is opened; granian's forked workers inherit it).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

ENV_DATABASE = "AISLE_TEST_POWERLOSS_DATABASE"
SITE_DIR = Path(__file__).with_name("powerloss_site")
SUFFIXES = ("", "-wal", "-journal")
SQLITE_OK = 0
SQLITE_IOERR = 10

_c_int_p = ctypes.POINTER(ctypes.c_int)
_XOPEN = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, _c_int_p
)
_XSYNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_XDELETE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int)


class _Vfs(ctypes.Structure):
    """``struct sqlite3_vfs`` (version 3); the methods we only pass on are opaque pointers."""

    _fields_ = [
        ("iVersion", ctypes.c_int),
        ("szOsFile", ctypes.c_int),
        ("mxPathname", ctypes.c_int),
        ("pNext", ctypes.c_void_p),
        ("zName", ctypes.c_char_p),
        ("pAppData", ctypes.c_void_p),
        ("xOpen", ctypes.c_void_p),
        *[
            (name, ctypes.c_void_p)
            for name in [
                "xDelete",
                "xAccess",
                "xFullPathname",
                "xDlOpen",
                "xDlError",
                "xDlSym",
                "xDlClose",
                "xRandomness",
                "xSleep",
                "xCurrentTime",
                "xGetLastError",
                "xCurrentTimeInt64",
                "xSetSystemCall",
                "xGetSystemCall",
                "xNextSystemCall",
            ]
        ],
    ]


class _IoMethods(ctypes.Structure):
    """``struct sqlite3_io_methods`` (version 3)."""

    _fields_ = [
        ("iVersion", ctypes.c_int),
        *[
            (name, ctypes.c_void_p)
            for name in [
                "xClose",
                "xRead",
                "xWrite",
                "xTruncate",
                "xSync",
                "xFileSize",
                "xLock",
                "xUnlock",
                "xCheckReservedLock",
                "xFileControl",
                "xSectorSize",
                "xDeviceCharacteristics",
                "xShmMap",
                "xShmLock",
                "xShmBarrier",
                "xShmUnmap",
                "xFetch",
                "xUnfetch",
            ]
        ],
    ]


def image_dir(database: Path) -> Path:
    return database.with_name(database.name + ".durable")


@dataclass
class Disk:
    """The disk under one watched database: its durable images, and whether it has power."""

    database: Path
    powered: bool = True
    syncs: int = 0
    unlinked: set[str] = field(default_factory=set)  # unlinks not yet on the disk
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def images(self) -> Path:
        return image_dir(self.database)

    def owns(self, path: str) -> bool:
        return any(path == f"{self.database}{suffix}" for suffix in SUFFIXES)

    def synced(self, path: str) -> None:
        """``path`` was just synced: as it is now, it survives a power cut."""
        with self.lock:
            if not self.powered:
                return  # the power is off: nothing more reaches the disk
            self._unlinks_reach_the_disk()
            image = self.images / Path(path).name
            partial = image.with_name(image.name + ".partial")
            try:
                shutil.copyfile(path, partial)
            except FileNotFoundError:
                return
            os.replace(partial, image)
            self.syncs += 1

    def deleted(self, path: str, *, folder_synced: bool) -> None:
        """``path`` was just unlinked; on the disk only once the folder or a file is synced."""
        with self.lock:
            if not self.powered:
                return
            self.unlinked.add(path)
            if folder_synced:
                self._unlinks_reach_the_disk()

    def _unlinks_reach_the_disk(self) -> None:
        for path in self.unlinked:
            (self.images / Path(path).name).unlink(missing_ok=True)
        self.unlinked.clear()

    def cut(self) -> None:
        """From now on nothing reaches the disk (until :meth:`restore`)."""
        with self.lock:
            self.powered = False

    def restore(self) -> None:
        """After every process using the files has stopped: the files as the disk held them."""
        with self.lock:
            restore_images(self.database)
            self.unlinked.clear()
            self.powered = True


def restore_images(database: Path) -> None:
    """Put the durable images of ``database`` in place of its files (a file never synced is
    gone) and drop the shared-memory index; run only once nothing has the files open."""
    images = image_dir(database)
    for suffix in SUFFIXES:
        path = Path(f"{database}{suffix}")
        image = images / path.name
        if image.exists():
            shutil.copyfile(image, path)
        else:
            path.unlink(missing_ok=True)
    Path(f"{database}-shm").unlink(missing_ok=True)


def start_images(database: Path) -> None:
    """What the files hold now is on the disk (they are fsynced first): the starting images."""
    images = image_dir(database)
    images.mkdir(parents=True, exist_ok=True)
    for suffix in SUFFIXES:
        path = Path(f"{database}{suffix}")
        stale = images / path.name
        if path.exists():
            with path.open("rb+") as f:
                os.fsync(f.fileno())
            shutil.copyfile(path, stale)
        else:
            stale.unlink(missing_ok=True)


class _PowerLossVfs:
    """The registered VFS; one per process, watching any number of databases."""

    NAME = b"powerloss"

    def __init__(self) -> None:
        self.lib = _libsqlite3()
        self.lib.sqlite3_vfs_find.restype = ctypes.POINTER(_Vfs)
        self.lib.sqlite3_vfs_find.argtypes = [ctypes.c_char_p]
        self.lib.sqlite3_vfs_register.argtypes = [ctypes.POINTER(_Vfs), ctypes.c_int]
        real = self.lib.sqlite3_vfs_find(b"unix")
        if not real:
            raise RuntimeError("this SQLite has no unix VFS")
        self.real = real
        self._real_open = _XOPEN(real.contents.xOpen)
        self.disks: dict[str, Disk] = {}
        self._paths: dict[int, tuple[Disk, str]] = {}  # sqlite3_file address -> what it is
        self._methods: dict[int, tuple[_IoMethods, int]] = {}  # original -> (patched, xSync)
        self._real_delete = _XDELETE(real.contents.xDelete)
        self._open_cb = _XOPEN(self._open)
        self._sync_cb = _XSYNC(self._sync)
        self._delete_cb = _XDELETE(self._delete)
        vfs = _Vfs.from_buffer_copy(real.contents)
        vfs.zName = self.NAME
        vfs.pNext = None
        vfs.xOpen = ctypes.cast(self._open_cb, ctypes.c_void_p).value
        vfs.xDelete = ctypes.cast(self._delete_cb, ctypes.c_void_p).value
        self.vfs = vfs
        rc = self.lib.sqlite3_vfs_register(ctypes.byref(vfs), 1)  # the default from now on
        if rc != SQLITE_OK:
            raise RuntimeError(f"sqlite3_vfs_register failed: {rc}")

    def _open(self, _vfs, name, file, flags, out_flags) -> int:
        self._paths.pop(file, None)  # a closed file's struct may be reused for any other file
        rc = self._real_open(ctypes.cast(self.real, ctypes.c_void_p), name, file, flags, out_flags)
        if rc != SQLITE_OK or not name:
            return rc
        try:
            path = ctypes.string_at(name).decode()
            disk = next((d for d in self.disks.values() if d.owns(path)), None)
            if disk is None:
                return rc
            slot = ctypes.c_void_p.from_address(file)
            if not slot.value:
                return rc
            patched = self._patched(slot.value)
            slot.value = ctypes.addressof(patched)
            self._paths[file] = (disk, path)
        except Exception:  # a failure here must not pass as a working file
            return SQLITE_IOERR
        return rc

    def _delete(self, _vfs, name, sync_dir) -> int:
        rc = self._real_delete(ctypes.cast(self.real, ctypes.c_void_p), name, sync_dir)
        if rc != SQLITE_OK or not name:
            return int(rc)
        try:
            path = name.decode()
            disk = next((d for d in self.disks.values() if d.owns(path)), None)
            if disk is not None:
                disk.deleted(path, folder_synced=bool(sync_dir))
        except Exception:
            return SQLITE_IOERR
        return SQLITE_OK

    def _patched(self, original: int) -> _IoMethods:
        known = self._methods.get(original)
        if known is None:
            methods = _IoMethods.from_buffer_copy(
                (ctypes.c_char * ctypes.sizeof(_IoMethods)).from_address(original)
            )
            real_sync = methods.xSync or 0
            methods.xSync = ctypes.cast(self._sync_cb, ctypes.c_void_p).value
            known = self._methods[original] = (methods, real_sync)
            self._methods[ctypes.addressof(methods)] = known
        return known[0]

    def _sync(self, file, flags, _pointer=ctypes.c_void_p, _call=_XSYNC) -> int:
        # The defaults keep what this needs reachable while the interpreter shuts down (a
        # connection closed then still syncs).
        methods = _pointer.from_address(file).value or 0
        rc = _call(self._methods[methods][1])(file, flags)
        if rc != 0:
            return int(rc)
        known = self._paths.get(file)
        if known is not None:
            try:
                known[0].synced(known[1])
            except Exception:
                return 10  # SQLITE_IOERR
        return 0


_installed: list[_PowerLossVfs] = []  # at most one per process
_install_lock = threading.Lock()


def _libsqlite3() -> ctypes.CDLL:
    """The libsqlite3 the ``sqlite3`` module is linked to (a VFS registered in another copy of
    SQLite would never be used)."""
    import _sqlite3

    for line in Path("/proc/self/maps").read_text().splitlines():
        if "libsqlite3" in line:
            return ctypes.CDLL(line.split()[-1])
    raise RuntimeError(
        f"the sqlite3 module ({_sqlite3.__file__}) is not linked to a shared libsqlite3: "
        "the power-loss VFS cannot be installed"
    )


def install() -> _PowerLossVfs:
    with _install_lock:
        if not _installed:
            sqlite3.connect(":memory:").close()  # load the library
            _installed.append(_PowerLossVfs())
        return _installed[0]


def watch(database: Path) -> Disk:
    """Image ``database`` from now on in this process; returns its disk, to cut and restore."""
    vfs = install()
    start_images(database)
    disk = vfs.disks[str(database)] = Disk(database)
    return disk


def unwatch(disk: Disk) -> None:
    """Stop imaging ``disk``'s database (its files as they are stay)."""
    if _installed:
        _installed[0].disks.pop(str(disk.database), None)


def server_env(database: Path) -> dict[str, str]:
    """Environment for a server process whose ``database`` loses what it did not sync."""
    start_images(database)
    path = os.environ.get("PYTHONPATH")
    return {
        ENV_DATABASE: str(database),
        "PYTHONPATH": f"{SITE_DIR}{os.pathsep}{path}" if path else str(SITE_DIR),
    }


def install_from_env() -> None:
    """For ``sitecustomize``: watch the database named in the environment, if any."""
    database = os.environ.get(ENV_DATABASE)
    if database:
        vfs = install()
        vfs.disks[database] = Disk(Path(database))
