"""Raising and listing reconciliation exceptions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import Database
from cloud.reconciliation.models import ReconciliationException


def raise_exception(
    session: Session,
    *,
    kind: str,
    store_id: str | None,
    subject_id: str,
    amount: int,
    unit: str,
    origin_id: str,
    details: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Record that ``origin_id`` broke the rule ``kind`` by ``amount``, once: False when it
    is already recorded."""
    found = session.execute(
        select(ReconciliationException.id).where(
            ReconciliationException.kind == kind, ReconciliationException.origin_id == origin_id
        )
    ).first()
    if found is not None:
        return False
    session.add(
        ReconciliationException(
            kind=kind,
            store_id=store_id,
            subject_id=subject_id,
            amount=amount,
            unit=unit,
            origin_id=origin_id,
            details=json.dumps(dict(details), sort_keys=True),
            created_at=now,
        )
    )
    return True


def exception_dict(row: ReconciliationException) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "store_id": row.store_id,
        "subject_id": row.subject_id,
        "amount": row.amount,
        "unit": row.unit,
        "origin_id": row.origin_id,
        "details": json.loads(row.details),
        "created_at": row.created_at.isoformat(),
    }


def list_exceptions(
    db: Database,
    *,
    store_id: str | None = None,
    kind: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Exceptions in the order they were raised, after ``after_id``."""
    query = select(ReconciliationException).where(ReconciliationException.id > after_id)
    if store_id is not None:
        query = query.where(ReconciliationException.store_id == store_id)
    if kind is not None:
        query = query.where(ReconciliationException.kind == kind)
    with db.read() as session:
        rows = session.execute(query.order_by(ReconciliationException.id).limit(limit)).scalars()
        return [exception_dict(r) for r in rows]
