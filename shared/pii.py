"""Personal data at rest: sealed with AES-GCM under a key with an id, found by a keyed blind
index, shown masked.

A :class:`Keyring` holds the sealing keys by id (one of them current) and one index key. Each
side keeps its own keyring in a file beside its database (the cloud's, each store's), so a copy
of a database file alone reads no phone number or name.

* :meth:`Keyring.seal` encrypts a text with the current key; the sealed bytes name the key, so
  :meth:`Keyring.open` still reads what older keys sealed. ``context`` (the row and the field)
  is authenticated with it: a sealed value copied onto another row or field does not open.
* :meth:`Keyring.rotate` adds a new current key; what the old ones sealed stays readable until
  it is sealed again (:meth:`Keyring.needs_resealing`). A process that meets a key it does not
  hold (another rotated the file) reads it from the file; it seals with its own current key
  until it restarts.
* :meth:`Keyring.blind_index` is an HMAC-SHA256 of a normalised value under the index key: equal
  values find each other, and the index says nothing of the value to whoever lacks the key. The
  index key never rotates (every index would have to be rebuilt with it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.exceptions import CryptoError
from nacl.public import SealedBox
from nacl.signing import SigningKey, VerifyKey

from shared.secret_files import SecretFileExists, write_secret

#: The layout of sealed bytes: version, key id length, key id, nonce, ciphertext with its tag.
SEAL_VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID_MAX = 32


class KeyringError(Exception):
    """A keyring file that cannot be used, or sealed bytes that do not open."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    current: str
    index_key: bytes
    # The file it was read from: a key this process does not hold yet (another process
    # rotated) is read from there when something sealed with it must be opened.
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyringError(f"the current key {self.current!r} is not in the keyring")
        for key_id, key in self.keys.items():
            if not (0 < len(key_id) <= KEY_ID_MAX and key_id.isascii() and key_id.isalnum()):
                raise KeyringError(f"key id {key_id!r} must be 1-32 ASCII letters or digits")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id!r} is not {KEY_BYTES} bytes")
        if len(self.index_key) != KEY_BYTES:
            raise KeyringError(f"the index key is not {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> Keyring:
        return cls(
            keys={"k1": AESGCM.generate_key(bit_length=256)},
            current="k1",
            index_key=secrets.token_bytes(KEY_BYTES),
        )

    # -- the file ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                keys={k: base64.b64decode(v, validate=True) for k, v in doc["keys"].items()},
                current=doc["current"],
                index_key=base64.b64decode(doc["index_key"], validate=True),
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, KeyringError) as exc:
            raise KeyringError(f"cannot read the keyring {path}: {exc}") from None

    @classmethod
    def load_or_create(cls, path: Path) -> Keyring:
        """The keyring in ``path``, made (readable by its owner only) on first use. Processes
        starting together agree: the first to link its file in wins, the others read it."""
        if not path.exists():
            with contextlib.suppress(SecretFileExists):
                write_secret(path, cls.generate().to_bytes())
        return cls.load(path)

    def to_bytes(self) -> bytes:
        doc = {
            "current": self.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "index_key": base64.b64encode(self.index_key).decode(),
        }
        return json.dumps(doc, indent=1).encode()

    def save(self, path: Path) -> None:
        """Write the keyring over ``path`` (a rotation), whole or not at all."""
        write_secret(path, self.to_bytes(), replace=True)

    def rotate(self) -> Keyring:
        """This keyring with a new current key; the old keys stay to open what they sealed."""
        number = 1 + max(int(k[1:]) for k in self.keys if k[:1] == "k" and k[1:].isdigit())
        key_id = f"k{number}"
        keys = {**self.keys, key_id: AESGCM.generate_key(bit_length=256)}
        return Keyring(keys=keys, current=key_id, index_key=self.index_key, path=self.path)

    # -- sealing ---------------------------------------------------------------------------

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """``plaintext`` encrypted with the current key, bound to ``context``."""
        key_id = self.current.encode("ascii")
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.current]).encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        return bytes([SEAL_VERSION, len(key_id)]) + key_id + nonce + sealed

    def open(self, sealed: bytes, *, context: str) -> str:
        """The text :meth:`seal` sealed with ``context``; :class:`KeyringError` otherwise."""
        key_id = sealed_key_id(sealed)
        key = self.keys.get(key_id)
        if key is None and self.path is not None:
            self.keys.update(Keyring.load(self.path).keys)  # rotated by another process
            key = self.keys.get(key_id)
        if key is None:
            raise KeyringError(f"sealed with key {key_id!r}, which this keyring does not hold")
        start = 2 + len(key_id)
        nonce, body = sealed[start : start + NONCE_BYTES], sealed[start + NONCE_BYTES :]
        try:
            return AESGCM(key).decrypt(nonce, body, context.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise KeyringError(
                "sealed bytes do not open: altered, or sealed for another field"
            ) from None

    def needs_resealing(self, sealed: bytes) -> bool:
        """Whether ``sealed`` was sealed with a key other than the current one."""
        return sealed_key_id(sealed) != self.current

    def blind_index(self, kind: str, value: str) -> str:
        """The keyed index of a normalised ``value`` of ``kind`` (e.g. ``phone``), in hex."""
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()


def sealed_key_id(sealed: bytes) -> str:
    """The id of the key that sealed ``sealed``."""
    if (
        len(sealed) < 2
        or sealed[0] != SEAL_VERSION
        or len(sealed) < 2 + sealed[1] + NONCE_BYTES + 16
    ):
        raise KeyringError("not sealed bytes of a known version")
    try:
        return sealed[2 : 2 + sealed[1]].decode("ascii")
    except UnicodeDecodeError:
        raise KeyringError("not sealed bytes of a known version") from None


# -- sealed to the cloud ---------------------------------------------------------------------
#
# What a store sends the cloud about a member (the phone a sign-up was made with) must not sit
# in clear in the store's outbox either. The store seals it to the cloud's own Ed25519 key,
# pinned at enrollment, turned into its Curve25519 form: libsodium's sealed box (an ephemeral
# X25519 key agreement and XSalsa20-Poly1305), through PyNaCl. Only the cloud's private key
# opens it; the store that wrote it cannot read it back.


def seal_for(public_key_b64: str, plaintext: str) -> str:
    """``plaintext`` sealed to the holder of the Ed25519 key ``public_key_b64``, as base64."""
    try:
        verify_key = VerifyKey(base64.b64decode(public_key_b64, validate=True))
        box = SealedBox(verify_key.to_curve25519_public_key())
    except (ValueError, CryptoError) as exc:
        raise KeyringError(f"not an Ed25519 public key: {exc}") from None
    return base64.b64encode(box.encrypt(plaintext.encode("utf-8"))).decode("ascii")


def open_sealed(private_seed: bytes, sealed_b64: str) -> str:
    """What :func:`seal_for` sealed to the Ed25519 key whose 32-byte seed is ``private_seed``."""
    box = SealedBox(SigningKey(private_seed).to_curve25519_private_key())
    try:
        return box.decrypt(base64.b64decode(sealed_b64, validate=True)).decode("utf-8")
    except (ValueError, CryptoError):
        raise KeyringError("the sealed value does not open with this key") from None
