"""The store's link to its cloud: enrollment, the pinned key, a signed client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge.db import Database
from edge.errors import Conflict, Unprocessable
from edge.settings import EdgeSettings
from edge.sync_client.models import CloudLink
from edge.sync_client.state import sync_state
from edge.sync_client.transport import CloudClient
from sync import keys
from sync.protocol import PROTOCOL_VERSION, cloud_compatible

#: Refusals that stop pushing until a person acts (re-enrol, upgrade, investigate a restore).
# --- the link -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    cloud_url: str
    store_id: str
    cloud_public_key: str
    protocol_version: int
    max_batch_events: int
    max_batch_bytes: int


_LINK = (
    "SELECT cloud_url, store_id, cloud_public_key, protocol_version, max_batch_events, "
    "max_batch_bytes FROM cloud_link WHERE id = 1"
)


def link_of(db: Database) -> Link | None:
    """The cloud this store is enrolled with, if any (read on a bare cursor: every member call
    asks)."""
    with db.raw_read() as tx:
        row = tx.one(_LINK)
    return None if row is None else Link(*row)


def client_for(settings: EdgeSettings, link: Link) -> CloudClient:
    """A signed client for the enrolled cloud, with the pinned key."""
    return CloudClient(
        link.cloud_url,
        store_id=link.store_id,
        store_key=keys.load_private_key(settings.sync_key_path),
        cloud_key=keys.load_public_key_b64(link.cloud_public_key),
        timeout=(settings.sync.connect_timeout_s, settings.sync.read_timeout_s),
    )


@dataclass(frozen=True, slots=True)
class Enrollment:
    store_id: str
    cloud_url: str
    cloud_public_key: str
    protocol_version: int


def enroll(
    settings: EdgeSettings,
    db: Database,
    *,
    cloud_url: str,
    code: str,
    now: datetime,
    client: CloudClient | None = None,
) -> Enrollment:
    """Create this store's sync key, register it with the cloud and pin the cloud's key."""
    if link_of(db) is not None:
        raise Conflict(
            "this store is already enrolled with a cloud", code="already_enrolled", details={}
        )
    path = settings.sync_key_path
    # A key left by an enrollment that failed half-way is reused: the cloud never saw it work.
    key = keys.load_private_key(path) if path.exists() else keys.generate_private_key()
    if not path.exists():
        keys.write_private_key(path, key)
    public = keys.public_key_b64(key.public_key())
    client = client or CloudClient(
        cloud_url, store_id=settings.store.id, store_key=key, cloud_key=None
    )
    answer = client.enroll(code=code, store_public_key=public, now=now)
    try:
        cloud_key_text = str(answer["cloud_public_key"])
        keys.load_public_key_b64(cloud_key_text)  # checked by the transport too
        store_id = str(answer["store_id"])
        accepted = [int(v) for v in answer.get("accepted_protocol_versions", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise Unprocessable(f"the cloud's enrollment answer is malformed: {exc}") from None
    if store_id != settings.store.id:
        raise Conflict(
            f"the code enrolls store {store_id}, but this server is store {settings.store.id}",
            code="store_mismatch",
            details={"cloud_store_id": store_id, "store_id": settings.store.id},
        )
    if not cloud_compatible(accepted):
        raise Conflict(
            f"the cloud speaks protocol versions {accepted}; this store speaks "
            f"{PROTOCOL_VERSION}: upgrade the older side",
            code="unsupported_protocol_version",
            details={"accepted": accepted, "current": PROTOCOL_VERSION},
        )
    with db.write() as uow:
        uow.session.add(
            CloudLink(
                id=1,
                cloud_url=cloud_url.rstrip("/"),
                store_id=store_id,
                cloud_public_key=cloud_key_text,
                protocol_version=int(answer.get("protocol_version", PROTOCOL_VERSION)),
                max_batch_events=int(answer.get("max_batch_events", 1000)),
                max_batch_bytes=int(answer.get("max_batch_bytes", 2 * 1024 * 1024)),
                enrolled_at=now,
            )
        )
        sync_state(uow.session)
        uow.commit()
    return Enrollment(store_id, cloud_url, cloud_key_text, PROTOCOL_VERSION)
