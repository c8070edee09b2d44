"""Command-line plumbing both ``aisle edge`` and ``aisle cloud`` use: the ``--config`` option,
loading it into settings (a bad file stops the command with its message), the ``serve`` options
a database opened for one command, and the report of a catalog import."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol, TypeVar

import click

from shared.errors import ApiError
from shared.settings import SettingsError

S = TypeVar("S")
D = TypeVar("D", bound="Disposable")
F = TypeVar("F", bound=Callable[..., Any])


def config_option(help: str) -> Callable[[F], F]:
    """``--config FILE`` (or ``AISLE_CONFIG``); ``help`` names the file."""
    return click.option(
        "--config",
        "config",
        envvar="AISLE_CONFIG",
        type=click.Path(dir_okay=False),
        help=help,
    )


def load_config(load: Callable[[str], S], config: str | None) -> S:
    """The settings ``load`` reads from ``config``; a usage error without one, and the loader's
    message (exit status 1) when it cannot be used."""
    if not config:
        raise click.UsageError("--config FILE is required (or set AISLE_CONFIG)")
    try:
        return load(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


class Disposable(Protocol):
    """A database a command opens: closed with :meth:`dispose`."""

    def dispose(self) -> None: ...


@contextmanager
def using(db: D) -> Iterator[D]:
    """``db`` for one command's work, closed whatever happens. A refusal
    (:class:`~shared.errors.ApiError`) stops the command with its message (exit status 1)."""
    try:
        yield db
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        db.dispose()


def server_options(command: F) -> F:
    """``--host``, ``--port`` and ``--workers``, each overriding its ``server.`` setting."""
    command = click.option("--workers", default=None, type=int, help="overrides server.workers")(
        command
    )
    command = click.option("--port", default=None, type=int, help="overrides server.port")(command)
    return click.option("--host", default=None, help="overrides server.host")(command)


class CatalogImported(Protocol):
    """What an import wrote: products created and updated, and their barcodes."""

    @property
    def created(self) -> int: ...

    @property
    def updated(self) -> int: ...

    @property
    def barcodes(self) -> int: ...


def catalog_import_failed(message: str, details: Mapping[str, Any]) -> NoReturn:
    """Print why a catalog import was refused, with its first 50 bad rows; exit status 1."""
    click.echo(f"error: {message}", err=True)
    for row in details.get("rows", [])[:50]:
        click.echo(f"  row {row['row']}: {row['problem']}", err=True)
    sys.exit(1)


def echo_catalog_imported(result: CatalogImported) -> None:
    click.echo(
        f"imported {result.created + result.updated} products "
        f"({result.created} new, {result.updated} updated, {result.barcodes} barcodes)"
    )
