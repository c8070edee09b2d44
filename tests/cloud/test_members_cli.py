"""``aisle cloud members`` and ``aisle cloud exceptions`` on a real database: a key rotation
seals every member again under the new key (each still reads back), lots past their date
expire, and an offline overdraft is listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from aisle.cli import main
from cloud.db import Database
from cloud.members import ledger, registry
from cloud.members.ledger import Origin
from cloud.members.models import Member
from cloud.settings import load_settings
from shared.ids import new_id
from shared.pii import Keyring, sealed_key_id


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_rotate_reseal_expire_and_list_exceptions(tmp_path: Path, database_url: str) -> None:
    root = tmp_path / "hq"
    _cli("cloud", "init", str(root), "--database-url", database_url)
    config = str(root / "cloud.toml")
    settings = load_settings(root / "cloud.toml")
    keyring = Keyring.load_or_create(settings.members_keyring_path)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    db = Database.open(settings.resolved_database_url)
    try:
        with db.write() as uow:
            ids = [
                registry.register(
                    uow.session,
                    keyring,
                    registry.SignUp(phone=f"1380013{n:04d}", name=f"Member {n}"),
                    region="CN",
                    now=long_ago,
                ).member.id
                for n in range(3)
            ]
            ledger.earn(
                uow.session,
                ids[0],
                points=40,
                spend=4_000,
                origin=Origin("sale", new_id()),
                store_id="S001",
                at=long_ago,
                expiry=timedelta(days=365),
                now=long_ago,
            )
            ledger.burn(
                uow.session,
                ids[1],
                points=25,
                origin=Origin("sale", "offline-1"),
                store_id="S001",
                at=long_ago,
                now=long_ago,
            )
            uow.commit()
        listed = _cli("cloud", "exceptions", "list", "--config", config)
        assert "points_overdraft" in listed and "25 points" in listed and "offline-1" in listed

        assert "1 lot(s) expired" in _cli("cloud", "members", "expire-points", "--config", config)
        assert "0 lot(s) expired" in _cli("cloud", "members", "expire-points", "--config", config)

        old = keyring.current
        assert "new key k2" in _cli("cloud", "members", "rotate-key", "--config", config)
        assert "3 member(s) sealed again under k2" in _cli(
            "cloud", "members", "reseal", "--config", config
        )
        assert "0 member(s) sealed again" in _cli("cloud", "members", "reseal", "--config", config)
        rotated = Keyring.load(settings.members_keyring_path)
        with db.read() as session:
            assert ledger.balance(session, ids[0]) == 0
            members = session.execute(select(Member).order_by(Member.id)).scalars().all()
            for member in members:
                assert sealed_key_id(member.phone_sealed) == "k2" != old
                assert registry.name_of(rotated, member).startswith("Member ")
            # The process that sealed them first reads the new seals too (from the file).
            assert {registry.phone_of(keyring, m) for m in members} == {
                f"+86138001300{n:02d}" for n in range(3)
            }
    finally:
        db.dispose()
