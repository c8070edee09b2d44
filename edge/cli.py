"""``aisle edge ...``: set up, run and look after one store server."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge.settings import EdgeSettings, SettingsError, load_settings
from shared import cli as shared_cli

if TYPE_CHECKING:
    from edge.db import Database

EDGE_TOML = """\
# Aisle store server configuration. Every key can be overridden by an environment variable:
# AISLE_<SECTION>__<KEY>, e.g. AISLE_SERVER__PORT=8081. Unknown keys are refused at start.

# Where the store keeps its database and keys (relative to this file).
data_dir = "."

[store]
id = "{store_id}"            # unique in the chain; prefixes sale numbers ({store_id}-000001)
name = "{name}"
currency = "{currency}"          # ISO 4217; amounts everywhere are integers in minor units
timezone = "{timezone}"  # IANA name; the business day and receipts use it

[server]
host = "{host}"          # the store LAN; devices connect here
port = {port}
workers = 2               # processes: one per core
threads = 8               # per process: devices waiting on a card terminal do not block scans
work_slots = 4            # threads of a process working at once (others wait on card terminals)
header_timeout_s = 10     # headers must arrive this fast; a quiet kept-alive connection closes
body_timeout_s = 10       # and a body this fast after them
backlog = 2048            # connections waiting to be accepted
max_connections = 2048    # per process: open device connections (idle, arriving, answered)

# What a scanned label may carry; a product's own max_price (catalog) replaces the price ceiling.
[barcodes]
max_embedded_price = 100000   # in minor units of the store's currency
max_embedded_weight_g = 50000

# Scale labels of weighed goods: prefix + PLU + value + check digit (13 digits by default).
[barcodes.variable_measure]
prefix = "2"
plu_length = 6
kind = "price"            # "price": the value is the price; "weight": the value is the weight
value_length = 5
# decimals = 2            # price: the currency's by default (CNY 2, JPY 0); weight: 3 (grams)
value_check_digit = false # true when the scale prints a GS1 price/weight check digit

# The card and wallet provider. "simulator" behaves like an acquirer: latency, declines, timeouts.
[payments]
provider = "simulator"
latency_ms = 30
decline_rate_bp = 0       # chance of a decline, in basis points (100 = 1 %)
timeout_rate_bp = 0
timeout_s = 10.0

# The link to the chain's cloud (after `aisle edge enroll`). Selling never waits for it.
[sync]
enabled = true
push_interval_s = 5.0     # push the outbox this often, and soon after every sale
push_debounce_s = 0.5
pull_interval_s = 15.0    # catalog, prices and store settings
batch_events = 500        # events per push batch
batch_pause_s = 0.05      # pause between batches of a backlog: the devices come first
backoff_initial_s = 1.0   # while the cloud is unreachable: 1 s, 2 s, 4 s ... with jitter
backoff_max_s = 60.0

# Scan-to-buy exit passes and random partial rescans at the door.
[exit_pass]
ttl_s = 1800
audit_base_rate_bp = 300          # 3 % of exits
audit_large_basket_items = 20
audit_large_basket_rate_bp = 1500 # 15 % of baskets with 20 items or more
audit_large_total = 50000
audit_large_total_rate_bp = 1500

# Members who sign up here: a phone number typed without +country code is read in this region.
[members]
default_region = "CN"
points_per_unit = 100             # one point for every 100 minor units (1 yuan) of a sale
point_value = 1                   # minor units one point pays when a member spends points
online_timeout_s = 0.3            # the cloud's answer to a member call, waited for this long
online_retry_s = 5.0              # after the cloud failed to answer, its copy serves this long
offline_daily_cap = 5000          # points one member may spend here a day while offline
"""


def _load(config: str | None) -> EdgeSettings:
    return shared_cli.load_config(load_settings, config)


config_option = shared_cli.config_option("the store's edge.toml")


@click.group("edge")
def edge() -> None:
    """The store server."""


#: The ``edge init`` option behind each setting it writes, to report a bad value as the option.
_INIT_OPTIONS = {
    "store.id": "--store-id",
    "store.name": "--name",
    "store.currency": "--currency",
    "store.timezone": "--timezone",
    "server.host": "--host",
    "server.port": "--port",
}


@edge.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--store-id", required=True, help="the store's id in the chain, e.g. S001")
@click.option("--name", default="Aisle store", show_default=True)
@click.option("--currency", default="CNY", show_default=True, help="ISO 4217, e.g. CNY, JPY")
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104
@click.option("--port", default=8080, show_default=True, type=int)
def init(
    directory: str, store_id: str, name: str, currency: str, timezone: str, host: str, port: int
) -> None:
    """Create a store: DIRECTORY/edge.toml, the database and the store's signing key.

    The options are checked before anything is written; if a later step fails, what this
    command created is removed again.
    """
    import json
    import shutil

    from shared.text import unsafe_character

    values = {
        "store.id": store_id,
        "store.name": name,
        "store.currency": currency,
        "store.timezone": timezone,
        "server.host": host,
        "server.port": port,
    }
    if unsafe_character(name) is not None:
        raise click.BadParameter("control characters are not allowed", param_hint="--name")
    try:
        load_settings(None, environ={}, overrides={"data_dir": directory, **values})
    except SettingsError as exc:
        message = str(exc).removeprefix("invalid configuration: ")
        for key, option in _INIT_OPTIONS.items():
            if message.startswith(f"{key} from"):
                detail = message.split(": ", 1)[-1]
                raise click.BadParameter(detail, param_hint=option) from None
        raise click.ClickException(str(exc)) from None
    root = Path(directory)
    target = root / "edge.toml"
    if target.exists():
        raise click.ClickException(f"{target} exists; refusing to overwrite a store")
    made_root = not root.exists()
    created: list[Path] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        text = EDGE_TOML.format(
            store_id=store_id,
            name=json.dumps(name, ensure_ascii=False)[1:-1],  # a TOML basic string's escapes
            currency=currency,
            timezone=timezone,
            host=host,
            port=port,
        )
        target.write_text(text, encoding="utf-8")
        created.append(target)
        settings = load_settings(target, environ={})
        created += [settings.database_path, settings.store_key_path]
        _migrate(settings)
        from edge.checkout.exit_pass import load_or_create_store_key

        load_or_create_store_key(settings.store_key_path)
    except BaseException:
        if made_root:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for path in created:
                for leftover in path.parent.glob(path.name + "*"):  # -wal, -shm, .writelock
                    leftover.unlink(missing_ok=True)
        raise
    click.echo(f"store {store_id} created in {root}")
    click.echo(f"config: {target}")


def _database(settings: EdgeSettings) -> AbstractContextManager[Database]:
    """The store's database for one command (see :func:`shared.cli.using`)."""
    from edge.db import Database

    return shared_cli.using(Database.open(settings.database_path))


def _migrate(settings: EdgeSettings) -> str | None:
    from edge.migrations import upgrade_if_behind

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with _database(settings) as db:
        return upgrade_if_behind(db.writer)


@edge.command("migrate")
@config_option
def migrate(config: str | None) -> None:
    """Upgrade the store database to this version's schema (safe to run again)."""
    settings = _load(config)
    click.echo(f"database at revision {_migrate(settings)}")


@edge.command("import-catalog")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@config_option
def import_catalog_cmd(file: str, config: str | None) -> None:
    """Import products from a CSV file, all or nothing."""
    from edge.catalog.service import CatalogImportError, import_catalog
    from shared.clock import SystemClock

    settings = _load(config)
    _migrate(settings)
    with _database(settings) as db:
        try:
            result = import_catalog(
                db,
                Path(file),
                now=SystemClock().now(),
                plu_length=settings.barcodes.variable_measure.plu_length,
            )
        except CatalogImportError as exc:
            shared_cli.catalog_import_failed(exc.message, exc.details)
    shared_cli.echo_catalog_imported(result)


def _parse_ttl(value: str | None) -> timedelta | None:
    """``30m``, ``8h``, ``14d`` (or plain seconds) into a duration; None for no expiry."""
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    text = value.strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    if not (number.isascii() and number.isdigit()) or int(number) == 0:
        raise click.BadParameter(
            f"{value!r} is not a duration such as 30m, 8h or 14d", param_hint="--ttl"
        )
    return timedelta(seconds=int(number) * units[unit])


@edge.command("pair")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["kiosk", "phone", "handheld", "tablet", "manager", "exit"]),
)
@click.option("--name", default="", help="a label, e.g. 'kiosk 3'")
@click.option("--ttl", default=None, help="the token expires after this long: 30m, 8h, 14d")
@config_option
def pair(role: str, name: str, ttl: str | None, config: str | None) -> None:
    """Pair a device; prints its bearer token on the last line (shown once)."""
    from edge.auth.service import pair_device
    from shared.clock import SystemClock

    lifetime = _parse_ttl(ttl)
    with _database(_load(config)) as db:
        device_id, token = pair_device(
            db, role=role, name=name, now=SystemClock().now(), ttl=lifetime
        )
    expiry = f", expires in {ttl}" if ttl else ""
    click.echo(f"paired {role} device {device_id}{expiry}")
    click.echo(token)


@edge.group("staff")
def staff_group() -> None:
    """The store's staff: who signs in on a tablet or handheld with a staff id and PIN."""


@staff_group.command("add")
@click.argument("staff_id")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["attendant", "manager"]), default="attendant")
@click.option(
    "--pin",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="4 to 8 digits (asked when not given)",
)
@config_option
def staff_add(staff_id: str, name: str, role: str, pin: str, config: str | None) -> None:
    """Add a staff member who signs in with STAFF_ID and a PIN."""
    from edge.auth.staff import add_staff
    from edge.errors import Conflict, Unprocessable
    from shared.clock import SystemClock

    with _database(_load(config)) as db:
        try:
            add_staff(
                db,
                staff_id=staff_id,
                name=name,
                role="manager" if role == "manager" else "attendant",
                pin=pin,
                now=SystemClock().now(),
            )
        except (Conflict, Unprocessable) as exc:
            raise click.ClickException(exc.message) from None
    click.echo(f"added {role} {staff_id} ({name})")


@edge.group("devices")
def devices() -> None:
    """The paired devices: list them, revoke a lost one."""


@devices.command("list")
@click.option(
    "--phones/--no-phones",
    default=True,
    show_default=True,
    help="List the shoppers' phones too (the door's QR makes one per shopper); counted anyway.",
)
@config_option
def devices_list(phones: bool, config: str | None) -> None:
    """Every paired device with its role, name and status (tokens are never shown again)."""
    from edge.auth.service import active_phones, list_devices
    from shared.clock import SystemClock

    now = SystemClock().now()
    with _database(_load(config)) as db:
        rows = list_devices(db, phones=phones)
        in_use = active_phones(db, now=now)
    click.echo(f"{'id':36}  {'role':8}  {'status':8}  {'paired':16}  name")
    for d in rows:
        paired = d.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{d.id:36}  {d.role:8}  {d.status(now):8}  {paired:16}  {d.name}")
    click.echo(f"shoppers' phones in use: {in_use}")


@devices.command("revoke")
@click.argument("device_id")
@config_option
def devices_revoke(device_id: str, config: str | None) -> None:
    """Stop DEVICE_ID's token now: its next request gets 401."""
    from edge.auth.service import revoke_device
    from shared.clock import SystemClock

    with _database(_load(config)) as db:
        info = revoke_device(db, device_id, now=SystemClock().now())
    click.echo(f"revoked {info.role} device {info.id} {info.name}".rstrip())


@edge.command("enroll")
@click.option("--cloud", "cloud_url", required=True, help="the cloud's address, e.g. https://hq")
@click.option("--code", required=True, help="the one-time code from `aisle cloud add-store`")
@config_option
def enroll_cmd(cloud_url: str, code: str, config: str | None) -> None:
    """Link this store to the chain's cloud: makes the store's key and pins the cloud's."""
    from edge.errors import AisleError
    from edge.sync_client.service import enroll
    from edge.sync_client.transport import CloudLinkError
    from shared.clock import SystemClock

    settings = _load(config)
    _migrate(settings)
    with _database(settings) as db:
        try:
            done = enroll(settings, db, cloud_url=cloud_url, code=code, now=SystemClock().now())
        except (CloudLinkError, AisleError) as exc:
            raise click.ClickException(f"enrollment failed: {exc.message}") from None
    click.echo(f"store {done.store_id} enrolled with {done.cloud_url}")
    click.echo(f"cloud key pinned: {done.cloud_public_key}")


@edge.command("sync-now")
@config_option
def sync_now(config: str | None) -> None:
    """Push every waiting event and pull every feed once, now (waits for a running sync)."""
    from edge.sync_client.scheduler import SyncRunner
    from edge.sync_client.service import status
    from shared.clock import SystemClock

    settings = _load(config)
    _migrate(settings)
    clock = SystemClock()
    with _database(settings) as db:
        runner = SyncRunner(settings, db, clock)
        try:
            outcome = runner.run(push=True, pull=True, force=True)
            state = status(db, clock.now())
        finally:
            runner.close()
    click.echo(outcome)
    click.echo(
        f"outbox pending {state['outbox_pending']}, cloud holds up to seq {state['acked_seq']}, "
        f"quarantined {len(state['quarantined'])}"
    )
    if outcome.startswith(("failed", "not enrolled", "cannot")) or "failed (" in outcome:
        sys.exit(1)


@edge.command("recover")
@click.option(
    "--wait",
    "wait_s",
    default=0.0,
    type=click.FloatRange(0, 86_400),
    help="seconds to wait for HQ's approval and apply it (the server does it by itself too)",
)
@config_option
def recover_cmd(wait_s: float, config: str | None) -> None:
    """Ask the cloud to move this store, restored from a backup or replaced, onto a new stream.

    The store compares its events with what the cloud holds from it and asks to continue after
    the last one they agree on; HQ approves at the cloud (``aisle cloud approve-recovery``).
    Then the store numbers its own events after the cloud's and pushes them: what the cloud
    holds that the store no longer has is reported, never merged or lost.
    """
    import time

    from edge.sync_client import recovery, service
    from edge.sync_client.transport import CloudLinkError
    from shared.clock import SystemClock

    settings = _load(config)
    _migrate(settings)
    clock = SystemClock()
    with _database(settings) as db:
        link = service.link_of(db)
        if link is None:
            raise click.ClickException("this store is not enrolled with a cloud")
        client = service.client_for(settings, link)
        try:
            asked = recovery.request(db, client, now=clock.now())
        except recovery.NothingToRecover as exc:
            click.echo(str(exc))
            return
        except CloudLinkError as exc:
            raise click.ClickException(f"the cloud did not take the request: {exc}") from None
        click.echo(
            f"asked to recover onto stream {asked.stream}: this store agrees with the cloud up "
            f"to seq {asked.agreed_seq}; the cloud also holds {asked.cloud_only_events} events "
            f"this store does not have, {asked.cloud_only_sales_count} of them sales totalling "
            f"{asked.cloud_only_sales_total} (kept at the cloud, reported here)"
        )
        deadline = time.monotonic() + wait_s
        while True:
            try:
                waiting = recovery.resume_if_approved(
                    db, client, store_id=link.store_id, now=clock.now()
                )
            except CloudLinkError as exc:
                waiting = f"cloud unreachable ({exc}); trying again"
            if waiting is None:
                state = service.status(db, clock.now())
                done = state["recovery"]
                click.echo(
                    f"recovered: {done['renumbered']} events of this store continue after seq "
                    f"{done['base_seq']}; the server pushes them"
                )
                return
            if time.monotonic() >= deadline:
                click.echo(waiting)
                return
            time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))


@edge.command("serve")
@config_option
@shared_cli.server_options
def serve(config: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Migrate the database, release card payments a killed run left open, then serve the store
    API with the production server."""
    from edge.app import release_open_payments
    from edge.backup import BackupError, server_lock
    from edge.server import EdgeServer

    settings = _load(config)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Held for the server's life (its forked workers share it): one server on these files.
        with server_lock(settings, purpose="starting another"):
            _migrate(settings)
            released = release_open_payments(settings)
            if released:
                click.echo(f"released {released} card payments the last run left open")
            click.echo(
                f"store {settings.store.id} serving on "
                f"{host or settings.server.host}:{port or settings.server.port}"
            )
            EdgeServer(
                settings,
                host=host or settings.server.host,
                port=port or settings.server.port,
                workers=workers or settings.server.workers,
            ).run()
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None


@edge.command("backup")
@click.argument("destination", type=click.Path(file_okay=False))
@config_option
def backup_cmd(destination: str, config: str | None) -> None:
    """Copy the store, while it trades, into DESTINATION (a new folder); says what it holds."""
    from edge.backup import BackupError, take_backup
    from shared.clock import SystemClock

    settings = _load(config)
    try:
        manifest = take_backup(settings, Path(destination), now=SystemClock().now())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup in {destination}: {manifest.summary()}")


@edge.command("restore")
@click.argument("backup", type=click.Path(exists=True, file_okay=False))
@config_option
def restore_cmd(backup: str, config: str | None) -> None:
    """Put a backup in place of the store's database (stop the server first). The database it
    replaces is moved aside, never deleted."""
    from edge.backup import BackupError, restore_backup
    from shared.clock import SystemClock

    settings = _load(config)
    try:
        report = restore_backup(settings, Path(backup), now=SystemClock().now())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {report.manifest.summary()}")
    if report.moved_aside is not None:
        click.echo(f"the database it replaced is in {report.moved_aside}")
    if report.keys_restored:
        click.echo(f"keys taken from the backup: {', '.join(report.keys_restored)}")
    if report.keys_kept:
        click.echo(f"the store's own keys were kept: {', '.join(report.keys_kept)}")
    click.echo(
        "start the server; if the cloud already holds sales this backup does not have, sync "
        "stops and `aisle edge recover` moves the store onto a new stream once HQ approves"
    )


@edge.command("routes")
def routes() -> None:
    """Print the device API: each route's roles and connectivity class (markdown table)."""
    from edge.route_table import route_table_markdown

    click.echo(route_table_markdown())
