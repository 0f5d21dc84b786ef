"""The ``equisynth`` command-line application: one module per command, registered here."""

from __future__ import annotations

import typer

from equisynth.cli import demo, ehr, evaluate, experiment, fit, quality, rebalance, sample

app = typer.Typer(
    name="equisynth",
    help="Fairness-aware synthetic rebalancing of health data.",
    no_args_is_help=True,
    add_completion=False,
    # Help texts are plain text: with markup on, "pip install 'equisynth[ray]'" lost its "[ray]".
    rich_markup_mode=None,
)

for _module in (rebalance, fit, sample, ehr, experiment, evaluate, quality, demo):
    _module.register(app)


def main() -> None:
    """Entry point of the ``equisynth`` console script."""
    app()
