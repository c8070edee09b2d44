"""What every request of the cloud app needs, built once per process by ``create_app``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.db import Database
from cloud.settings import CloudSettings
from shared.clock import Clock
from shared.pii import Keyring


@dataclass
class CloudContext:
    settings: CloudSettings
    db: Database
    clock: Clock
    cloud_key: Ed25519PrivateKey
    protocol_version: int
    accepted_versions: Collection[int]
    members_keyring: Keyring
