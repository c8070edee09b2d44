"""The chain's promotions: one row each, the JSON of :class:`sync.contract.PromotionItem`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base


class Promotion(Base):
    """A promotion as HQ last wrote it; a withdrawn one stays (``active`` false) so that every
    store's feed carries the withdrawal."""

    __tablename__ = "promotions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doc: Mapped[str] = mapped_column(Text)
    active: Mapped[bool]
    updated_at: Mapped[datetime]
