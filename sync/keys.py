"""Ed25519 key files and the wire form of public keys.

Private keys live in PEM (PKCS#8, unencrypted) files of mode 0600, written atomically and never
overwritten. Public keys travel as the standard base64 of their 32 raw bytes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.secret_files import SecretFileExists, write_secret
from sync.protocol import b64decode, b64encode

PUBLIC_KEY_BYTES = 32


class KeyFileError(Exception):
    """A key file that is missing, unreadable, not Ed25519 or readable by others."""


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write ``key`` to ``path`` with mode 0600; refuses to replace an existing file.

    The file appears whole or not at all (:func:`shared.secret_files.write_secret`).
    """
    try:
        write_secret(path, private_key_pem(key))
    except SecretFileExists as exc:
        raise KeyFileError(f"{path} exists; refusing to overwrite a key") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key PEM; refuses a file that group or others may read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise KeyFileError(f"key file {path} has mode {mode:o}; it must be 600")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return key


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """The key at ``path``, created first if the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        with contextlib.suppress(KeyFileError):
            write_private_key(path, generate_private_key())
    return load_private_key(path)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public half as base64 of its 32 raw bytes (the form enrollment sends)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    return b64encode(raw)


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    """Inverse of :func:`public_key_b64`; ``ValueError`` for anything that is not such a key."""
    try:
        raw = b64decode(text.strip())
    except (ValueError, UnicodeEncodeError):
        raise ValueError("public key is not base64") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)
