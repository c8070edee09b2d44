"""Files that hold secrets (signing keys, the keys that seal personal data): written whole or
not at all, readable by their owner only, and made once by whichever process gets there first."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class SecretFileExists(Exception):
    """The file is there already and was not to be replaced."""


def write_secret(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` to ``path`` with mode 0600: to a temporary file, synced, then linked into
    place (refused with :class:`SecretFileExists` if ``path`` exists) or, with ``replace``,
    renamed over it. The folder is synced after, so the name survives a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise SecretFileExists(f"{path} exists; refusing to overwrite it") from None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
