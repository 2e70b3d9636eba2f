"""`lstm-edge export`: a thin command over `export.publish`."""

from __future__ import annotations

import click

from train.cli import verbose_option
from train.quiet import import_tensorflow_quietly

from .errors import ExportError
from .modes import DEFAULT_QUANTIZED_MODE, DEFAULT_REPRESENTATIVE, MODES
from .verify import DEFAULT_MIN_AGREEMENT_PCT, DEFAULT_TOLERANCE_PP, EDGE_RUNTIMES


@click.command("export")
@click.argument("run", type=click.Path())
@click.option("--quantize", "mode", type=click.Choice(MODES), default="none", is_flag=False,
              flag_value=DEFAULT_QUANTIZED_MODE, show_default=True,
              help=f"none: float32; --quantize alone: {DEFAULT_QUANTIZED_MODE} (full integer, int8 in and out).")
@click.option("--out", type=click.Path(), default="model.tflite", show_default=True,
              help="Where the verified model goes; its manifest goes beside it (.json).")
@click.option("--representative", type=int, default=DEFAULT_REPRESENTATIVE, show_default=True,
              help="Class-balanced training digits that calibrate int8/int16x8 activations.")
@click.option("--tolerance", type=float, default=DEFAULT_TOLERANCE_PP, show_default=True,
              help="Accuracy points a quantized model may lose against the float model.")
@click.option("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT_PCT, show_default=True,
              help="Percent of test digits on which a quantized model must give the float model's answer.")
@click.option("--runtime", "runtimes", type=click.Choice(EDGE_RUNTIMES), multiple=True,
              help="Verify on this runtime only (repeatable) [default: every one installed].")
@verbose_option
def export_command(run, mode, out, representative, tolerance, min_agreement, runtimes, verbose):
    """Convert RUN's checkpoint to TFLite and write it only after proving accuracy parity."""
    import_tensorflow_quietly(verbose)
    from .publish import export_run

    try:
        result = export_run(run, mode, out, representative, tolerance, runtimes or None, log=click.echo,
                            min_agreement_pct=min_agreement)
    except ExportError as e:
        raise click.ClickException(str(e)) from None
    click.echo("")
    click.echo(result.table())
    click.echo(f"\nwrote {result.path} and {result.manifest} (verified on "
               f"{', '.join(c.runtime + ' ' + c.version for c in result.parity.checks)})")
