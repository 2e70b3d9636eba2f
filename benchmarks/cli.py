"""`lstm-edge bench`: a thin command over `benchmarks.run`."""

from __future__ import annotations

from pathlib import Path

import click

from export.modes import MODES

from .errors import BenchError


@click.command("bench")
@click.option("--run", type=click.Path(file_okay=False),
              help="A trained run folder [default: train the quickstart model].")
@click.option("--out", type=click.Path(file_okay=False), default="benchmarks/results", show_default=True,
              help="Where results.json, results.md and chart.png go (the README's table is updated only for "
                   "the checkout's own benchmarks/results).")
@click.option("--mode", "modes", type=click.Choice(MODES), multiple=True,
              help="Export mode to measure (repeatable) [default: every mode].")
@click.option("--repeats", type=click.IntRange(min=1), default=15, show_default=True,
              help="Rounds of edge-classify cold starts (every environment and runtime in turn).")
@click.option("--epochs", type=click.IntRange(min=2), default=5, show_default=True,
              help="Training epochs timed per trainer (the first, tracing, is not counted).")
@click.option("--mnist", type=click.Path(file_okay=False),
              help="Full MNIST's four IDX files, for the full-MNIST rows [default: ../shared/data/mnist].")
def bench_command(run, out, modes, repeats, epochs, mnist):
    """Measure lstm-edge beside its baselines on this machine, in one run with the same weights."""
    from .run import run_benchmark

    try:
        run_benchmark(run, Path(out), repeats, epochs, modes or MODES, log=click.echo,
                      mnist=Path(mnist) if mnist else None)
    except BenchError as e:
        raise click.ClickException(str(e)) from None
