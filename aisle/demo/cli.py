"""The ``aisle demo`` command."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--seconds", default=30.0, show_default=True, help="how long the devices shop")
@click.option("--kiosks", default=3, show_default=True, help="per store")
@click.option("--phones", default=3, show_default=True, help="per store")
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--serve/--no-serve",
    default=False,
    help="then keep the stores up, printing their screens' addresses, until Ctrl-C",
)
def demo(seconds: float, kiosks: int, phones: int, seed: int, serve: bool) -> None:
    """A cloud and two stores; devices shop at both while one loses its link for a while."""
    from aisle.demo.run import run_demo

    raise SystemExit(
        run_demo(duration_s=seconds, kiosks=kiosks, phones=phones, seed=seed, serve=serve)
    )
