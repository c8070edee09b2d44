"""The ``aisle`` command: one entry point for the store server and the demo."""

from __future__ import annotations

import click

from aisle.demo.cli import demo
from cloud.cli import cloud
from edge.cli import edge


@click.group()
@click.version_option(package_name="aisle")
def main() -> None:
    """Aisle: offline-first store server for retail chains."""


main.add_command(edge)
main.add_command(cloud)
main.add_command(demo)
