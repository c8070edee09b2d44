"""``aisle cloud ...``: set up, run and look after the chain's cloud service."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from cloud.settings import CloudSettings, SettingsError, load_settings
from shared import cli as shared_cli

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cloud.db import Database
    from sync.protocol import Recovery

T = TypeVar("T")

CLOUD_TOML = """\
# Aisle cloud configuration. Every key can be overridden by an environment variable:
# AISLE_<KEY> or AISLE_<SECTION>__<KEY>, e.g. AISLE_SERVER__PORT=9091. Unknown keys are refused.

# Where the cloud keeps its signing key (and the embedded database), relative to this file.
data_dir = "."

# Empty: the embedded SQLite database in data_dir (a laptop or a demo).
# Production: PostgreSQL through psycopg 3, e.g.
#   database_url = "postgresql+psycopg://aisle:secret@db.internal:5432/aisle"
database_url = "{database_url}"

[server]
host = "{host}"
port = {port}
workers = 2               # processes; the workers are stateless, add one per core
threads = 4               # per process
token_cache_s = 5.0       # a worker trusts an HQ or channel token it checked for this long

[sync]
timestamp_window_s = 300  # a signed request older or newer than this is refused (clock skew)
max_batch_events = 1000   # events in one push batch
max_batch_bytes = 2097152 # compressed size of one push batch
max_pull_limit = 1000     # changes in one pull page
feed_retention_days = 90  # change history kept; an older cursor gets a paged snapshot

[enrollment]
code_ttl_s = 86400        # a one-time enrollment code expires after this many seconds

[members]
default_region = "CN"     # a phone number typed without +country code is read in this region
points_expiry_days = 365  # earned points expire this long after the sale that earned them
hold_ttl_s = 900          # a store's online hold on a cart's points lapses after this long
"""


def _load(config: str | None) -> CloudSettings:
    return shared_cli.load_config(load_settings, config)


config_option = shared_cli.config_option("the cloud's cloud.toml")


def _migrate(settings: CloudSettings) -> str | None:
    from cloud.db import Database
    from cloud.migrations import current_revision, upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from cloud.changes.log import ensure_epoch
    from shared.db import utcnow

    with shared_cli.using(Database.open(settings.resolved_database_url)) as db:
        upgrade(db.writer)
        # A database restored into another cluster starts a new feed epoch before it serves.
        epoch, started = ensure_epoch(db, now=utcnow())
        if started and epoch > 1:
            click.echo(f"feeds: epoch {epoch} started ({started}); stores re-read a snapshot")
        return current_revision(db.writer)


def _database(settings: CloudSettings) -> AbstractContextManager[Database]:
    """The cloud's database for one command (see :func:`shared.cli.using`)."""
    from cloud.db import Database

    return shared_cli.using(Database.open(settings.resolved_database_url))


@click.group("cloud")
def cloud() -> None:
    """The chain's cloud service."""


@cloud.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--database-url", default="", help="PostgreSQL URL; empty for embedded SQLite")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9090, show_default=True, type=int)
def init(directory: str, database_url: str, host: str, port: int) -> None:
    """Create DIRECTORY/cloud.toml, the cloud's signing key and the (migrated) database."""
    from sync.keys import load_or_create_private_key, public_key_b64

    root = Path(directory)
    target = root / "cloud.toml"
    if target.exists():
        raise click.ClickException(f"{target} exists; refusing to overwrite a cloud")
    root.mkdir(parents=True, exist_ok=True)
    text = CLOUD_TOML.format(database_url=database_url.replace('"', ""), host=host, port=port)
    # It may hold the database's password: readable by the service's user only, from the
    # moment it exists (created 0600, not chmod-ed after).
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as fh:
        fh.write(text)
    try:
        load_settings(target, environ={})  # the file as written must be valid on its own
        # ... and the database is the one the service will use: AISLE_* overrides count, as
        # for every other command (AISLE_DATABASE_URL pointing at PostgreSQL, say).
        settings = load_settings(target)
    except SettingsError as exc:
        target.unlink()
        raise click.ClickException(str(exc)) from None
    revision = _migrate(settings)
    key = load_or_create_private_key(settings.key_path)
    click.echo(f"cloud created in {root} (database at revision {revision})")
    click.echo(f"cloud public key: {public_key_b64(key)}")
    click.echo(f"config: {target}")


@cloud.command("migrate")
@config_option
def migrate(config: str | None) -> None:
    """Upgrade the cloud database to this version's schema (safe to run again)."""
    click.echo(f"database at revision {_migrate(_load(config))}")


@cloud.command("serve")
@config_option
@shared_cli.server_options
def serve(config: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Migrate the database, then serve the cloud API with the production server."""
    from cloud.server import CloudServer

    settings = _load(config)
    _migrate(settings)
    bind_host, bind_port = host or settings.server.host, port or settings.server.port
    click.echo(f"cloud serving on {bind_host}:{bind_port}")
    CloudServer(
        settings, host=bind_host, port=bind_port, workers=workers or settings.server.workers
    ).run()


@cloud.command("token")
@click.option("--role", required=True, type=click.Choice(["hq", "channel"]))
@click.option(
    "--name",
    default="",
    help="hq: a label, e.g. 'finance dashboard'; channel: the channel's name, e.g. 'shop'",
)
@config_option
def token(role: str, name: str, config: str | None) -> None:
    """Issue an API token, HQ's or a sales channel's (an online shop, a mini-program: its
    members API); prints it on the last line (shown once)."""
    from cloud.stores.service import issue_token
    from shared.clock import SystemClock

    with _database(_load(config)) as db:
        value = issue_token(db, role=role, name=name, now=SystemClock().now())
    click.echo(f"issued {role} token")
    click.echo(value)


@cloud.command("add-store")
@click.argument("store_id")
@click.option("--name", default="", help="defaults to the id")
@click.option(
    "--format",
    "store_format",
    default="supermarket",
    show_default=True,
    type=click.Choice(["hypermarket", "supermarket", "convenience", "online"]),
)
@click.option("--area-m2", default=None, type=int, help="selling area in square metres")
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
@click.option("--currency", default="CNY", show_default=True)
@config_option
def add_store_cmd(
    store_id: str,
    name: str,
    store_format: str,
    area_m2: int | None,
    timezone: str,
    currency: str,
    config: str | None,
) -> None:
    """Add a store; prints its one-time, expiring enrollment code on the last line."""
    from cloud.stores.service import StoreInput, add_store
    from shared.clock import SystemClock

    settings = _load(config)
    with _database(settings) as db:
        code = add_store(
            db,
            StoreInput(store_id, name, store_format, area_m2, timezone, currency),
            now=SystemClock().now(),
            code_ttl_s=settings.enrollment.code_ttl_s,
        )
    hours = settings.enrollment.code_ttl_s / 3600
    click.echo(f"store {store_id} added; enrollment code (single use, valid {hours:g} h):")
    click.echo(code)


@cloud.command("revoke-store")
@click.argument("store_id")
@config_option
def revoke_store_cmd(store_id: str, config: str | None) -> None:
    """Revoke a store: its key stops working at once."""
    from cloud.stores.service import revoke_store
    from shared.clock import SystemClock

    with _database(_load(config)) as db:
        revoke_store(db, store_id, now=SystemClock().now())
    click.echo(f"store {store_id} revoked")


@cloud.command("reissue-code")
@click.argument("store_id")
@config_option
def reissue_code_cmd(store_id: str, config: str | None) -> None:
    """A new enrollment code for an enrolled store whose server (and key) was replaced."""
    from cloud.stores.service import reissue_code
    from shared.clock import SystemClock

    settings = _load(config)
    with _database(settings) as db:
        code = reissue_code(
            db, store_id, now=SystemClock().now(), code_ttl_s=settings.enrollment.code_ttl_s
        )
    click.echo(f"store {store_id}: enrollment code for its new server (single use):")
    click.echo(code)


@cloud.command("recoveries")
@click.option("--pending", is_flag=True, help="only those waiting for approval")
@config_option
def recoveries_cmd(pending: bool, config: str | None) -> None:
    """Stores that asked to move onto a new stream after a restore or a replacement."""
    from cloud.ingest.recovery import list_recoveries
    from sync.protocol import RECOVERY_PENDING, Recovery

    with _database(_load(config)) as db:
        found = list_recoveries(db, status=RECOVERY_PENDING if pending else None)
    if not found:
        click.echo("no recoveries")
    for doc in found:
        click.echo(describe_recovery(Recovery.from_dict(doc)))


def describe_recovery(r: Recovery) -> str:
    """A recovery in words, for HQ deciding whether to approve it."""
    lines = [
        f"store {r.store_id}: recovery to stream {r.stream}, {r.status} (asked {r.requested_at}"
        + (f", approved {r.approved_at} by {r.approved_by})" if r.approved_at else ")"),
        f"  the store agrees with the cloud up to seq {r.agreed_seq}; its outbox ends at "
        f"{r.outbox_last_seq}; the cloud holds up to {r.cloud_high_water_seq}",
        f"  held only by the cloud: {r.cloud_only_events} events, {r.cloud_only_sales_count} "
        f"sales totalling {r.cloud_only_sales_total} (minor units); kept, not merged",
    ]
    lines += [
        f"    sale {s.number} {s.total} at {s.created_at} ({s.id})" for s in r.cloud_only_sales
    ]
    if r.base_seq is not None:
        lines.append(f"  the store's own events continue after seq {r.base_seq}")
    return "\n".join(lines)


@cloud.command("approve-recovery")
@click.argument("store_id")
@click.option("--by", "approved_by", required=True, help="who approves (kept with the approval)")
@config_option
def approve_recovery_cmd(store_id: str, approved_by: str, config: str | None) -> None:
    """Approve a store's pending recovery: it continues on a new stream; nothing is merged."""
    from cloud.ingest.recovery import approve_recovery
    from shared.clock import SystemClock

    with _database(_load(config)) as db:
        recovery = approve_recovery(db, store_id, approved_by=approved_by, now=SystemClock().now())
    click.echo("approved")
    click.echo(describe_recovery(recovery))


@cloud.command("import-catalog")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@config_option
def import_catalog_cmd(file: str, config: str | None) -> None:
    """Import the chain's catalog from a CSV file, all or nothing; stores get it by pull."""
    from cloud.catalog.service import CatalogImportError, import_catalog
    from shared.clock import SystemClock

    with _database(_load(config)) as db:
        try:
            result = import_catalog(db, Path(file), now=SystemClock().now())
        except CatalogImportError as exc:
            shared_cli.catalog_import_failed(exc.message, exc.details)
    shared_cli.echo_catalog_imported(result)


@cloud.command("set-price")
@click.argument("store_id")
@click.argument("sku")
@click.argument("unit_price", required=False, type=int)
@config_option
def set_price_cmd(store_id: str, sku: str, unit_price: int | None, config: str | None) -> None:
    """Set STORE_ID's own price for SKU in minor units (omit the price to clear it)."""
    from cloud.catalog.service import set_store_price
    from shared.clock import SystemClock

    with _database(_load(config)) as db:
        set_store_price(
            db, store_id=store_id, sku=sku, unit_price=unit_price, now=SystemClock().now()
        )
    what = "the chain price" if unit_price is None else f"{unit_price}"
    click.echo(f"{sku} at store {store_id}: {what}")


@cloud.command("prune-changes")
@config_option
def prune_changes_cmd(config: str | None) -> None:
    """Drop feed history older than sync.feed_retention_days (older cursors get snapshots)."""
    from datetime import timedelta

    from cloud.changes.log import prune_changes
    from shared.clock import SystemClock

    settings = _load(config)
    now = SystemClock().now()
    with _database(settings) as db, db.write() as uow:
        pruned = prune_changes(
            uow.session,
            older_than=now - timedelta(days=settings.sync.feed_retention_days),
            now=now,
        )
        uow.commit()
    click.echo(f"pruned {sum(pruned.values())} change rows")


@cloud.group("quarantine")
def quarantine() -> None:
    """Events the cloud could not apply."""


@quarantine.command("list")
@click.option("--store", default=None, help="only this store")
@click.option("--limit", default=100, show_default=True, type=int)
@config_option
def quarantine_list_cmd(store: str | None, limit: int, config: str | None) -> None:
    """List quarantined events, newest first, with their reasons."""
    from cloud.ingest.service import quarantine_list

    with _database(_load(config)) as db:
        rows = quarantine_list(db, store_id=store, limit=limit)
    if not rows:
        click.echo("no quarantined events")
        return
    for row in rows:
        click.echo(
            f"{row['store_id']}  seq {row['seq']}  {row['type'] or '?'}  {row['event_id']}  "
            f"{row['created_at']}  {row['reason']}"
        )
    click.echo(f"{len(rows)} quarantined event(s)")


def _in_transaction(db: Database, step: Callable[[Session], T]) -> T:
    """``step``'s answer, its writes committed: one batch of a long job, one transaction."""
    with db.write() as uow:
        answer = step(uow.session)
        uow.commit()
    return answer


@cloud.group("exceptions")
def exceptions() -> None:
    """Reconciliation exceptions: what happened offline against a rule, with its amount."""


@exceptions.command("list")
@click.option("--store", default=None, help="only this store")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 500))
@config_option
def exceptions_list_cmd(store: str | None, limit: int, config: str | None) -> None:
    """List reconciliation exceptions in the order they were raised."""
    from cloud.reconciliation.service import list_exceptions

    with _database(_load(config)) as db:
        rows = list_exceptions(db, store_id=store, limit=limit)
    if not rows:
        click.echo("no reconciliation exceptions")
        return
    for row in rows:
        click.echo(
            f"{row['created_at']}  {row['kind']}  store {row['store_id'] or '-'}  "
            f"{row['amount']} {row['unit']}  member {row['subject_id']}  from {row['origin_id']}"
        )
    click.echo(f"{len(rows)} exception(s)")


@cloud.group("members")
def members() -> None:
    """The chain's members: their keys and their points."""


@members.command("rotate-key")
@config_option
def members_rotate_key_cmd(config: str | None) -> None:
    """Seal members' personal data under a new key from now on. The old keys stay, to read
    what they sealed; `aisle cloud members reseal` seals it all again under the new one."""
    from shared.pii import Keyring

    path = _load(config).members_keyring_path
    keyring = Keyring.load_or_create(path).rotate()
    keyring.save(path)
    click.echo(f"new key {keyring.current}; servers seal with it once restarted")


@members.command("reseal")
@config_option
def members_reseal_cmd(config: str | None) -> None:
    """Seal again, under the current key, every member sealed under an older one."""
    from cloud.members.registry import reseal
    from shared.pii import Keyring

    settings = _load(config)
    keyring = Keyring.load_or_create(settings.members_keyring_path)
    total, after = 0, None
    with _database(settings) as db:
        while True:
            done, after = _in_transaction(db, partial(reseal, keyring=keyring, after=after))
            total += done
            if after is None:
                break
    click.echo(f"{total} member(s) sealed again under {keyring.current}")


@members.command("expire-points")
@config_option
def members_expire_points_cmd(config: str | None) -> None:
    """Write the expiry of every lot of points past its date, and move down every member whose
    last twelve months' spend no longer reaches their tier (run it daily)."""
    from cloud.members.ledger import expire_due
    from cloud.members.rules import retier_above_base
    from shared.clock import SystemClock

    now = SystemClock().now()
    total = 0
    with _database(_load(config)) as db:
        while done := _in_transaction(db, lambda s: expire_due(s, now=now, limit=1000)):
            total += done
        seen, after = 0, ""
        while ids := _in_transaction(db, partial(retier_above_base, now=now, after_id=after)):
            seen, after = seen + len(ids), ids[-1]
    click.echo(f"{total} lot(s) expired; {seen} member tier(s) checked")


@members.command("earn-rules")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@config_option
def members_earn_rules_cmd(path: str, config: str | None) -> None:
    """Set the chain's earn rules from a JSON file (what PUT /api/v1/earn-rules takes)."""
    from pydantic import ValidationError

    from cloud.members.rules import set_rules
    from shared.clock import SystemClock
    from sync.contract import EarnRulesItem

    try:
        wanted = EarnRulesItem.model_validate_json(Path(path).read_bytes())
    except ValidationError as exc:
        raise click.ClickException(f"{path}: {exc.errors()[0]['msg']}") from None
    now = SystemClock().now()
    with _database(_load(config)) as db:
        _in_transaction(db, lambda s: set_rules(s, wanted, now=now))
    click.echo(f"earn rules set: a point per {wanted.points_per_unit}, {len(wanted.tiers)} tier(s)")


@cloud.group("promotions")
def promotions() -> None:
    """The chain's promotions, which every store pulls."""


@promotions.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@config_option
def promotions_import_cmd(path: str, config: str | None) -> None:
    """Write the promotions of a JSON or TOML file (``{"promotions": [...]}``; TOML:
    ``[[promotions]]`` tables), each replacing the one of its id, all or none."""
    from cloud.errors import CloudError
    from cloud.promotions.service import put_promotions, read_file
    from shared.clock import SystemClock

    now = SystemClock().now()
    try:
        items = read_file(path, Path(path).read_bytes())
        with _database(_load(config)) as db:
            _in_transaction(db, lambda s: put_promotions(s, items, now=now))
    except (ValueError, CloudError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    active = sum(1 for item in items if item.active)
    click.echo(
        f"{len(items)} promotion(s) written: {active} in force, {len(items) - active} withdrawn"
    )


@cloud.group("campaigns")
def campaigns() -> None:
    """The chain's coupon campaigns, which every store pulls."""


@campaigns.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@config_option
def campaigns_import_cmd(path: str, config: str | None) -> None:
    """Write the coupon campaigns of a JSON or TOML file (``{"campaigns": [...]}``; TOML:
    ``[[campaigns]]`` tables), each replacing the one of its id, all or none."""
    from cloud.coupons.service import put_campaigns, read_file
    from cloud.errors import CloudError
    from shared.clock import SystemClock

    now = SystemClock().now()
    try:
        items = read_file(path, Path(path).read_bytes())
        with _database(_load(config)) as db:
            saved = _in_transaction(db, lambda s: put_campaigns(s, items, now=now))
    except (ValueError, CloudError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    for item in saved:
        click.echo(f"campaign {item.id} (number {item.number}): {item.name}")


@cloud.group("reports")
def reports() -> None:
    """HQ's reports."""


@reports.command("recruitment")
@click.option("--from", "start", required=True, help="the first day, YYYY-MM-DD (UTC)")
@click.option("--to", "end", required=True, help="the last day, YYYY-MM-DD (UTC), included")
@click.option("--store", default=None, help="only this store's recruits")
@config_option
def reports_recruitment_cmd(start: str, end: str, store: str | None, config: str | None) -> None:
    """Per store and recruiter: members who signed up in the period and what they spent in
    their first 90 days (minor units, net of returns)."""
    from cloud.errors import CloudError
    from cloud.members.reports import period, recruitment

    try:
        first, last = period(start, end)
    except CloudError as exc:
        raise click.BadParameter(exc.message) from None
    with _database(_load(config)) as db:
        report = recruitment(db, start=first, end=last, store_id=store)
    rows = report["recruiters"]
    if not rows:
        click.echo("no members signed up in the period")
        return
    for row in rows:
        who = row["recruiter"]
        click.echo(
            f"{row['store_id'] or '-'}  {who['kind']} {who['id']}  {row['members']} member(s)  "
            f"spend {row['spend']} in {report['window_days']} days"
        )
    click.echo(f"{sum(r['members'] for r in rows)} member(s) from {first} to {last}")
