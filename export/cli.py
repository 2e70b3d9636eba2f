"""`lstm-edge export`: a thin command over `publish`."""

from __future__ import annotations

import click

from lstm_edge.train.cli import start_tensorflow, verbose_option

from .errors import ExportError
from .modes import DEFAULT_QUANTIZED_MODE, DEFAULT_REPRESENTATIVE, MODES, TARGETS
from .verify import DEFAULT_MIN_AGREEMENT_PCT, DEFAULT_TOLERANCE_PP, EDGE_RUNTIMES


@click.command("export")
@click.argument("run", type=click.Path())
@click.option("--quantize", "mode", type=click.Choice(MODES), default="none", is_flag=False,
              flag_value=DEFAULT_QUANTIZED_MODE, show_default=True,
              help=f"none: float32; --quantize alone: {DEFAULT_QUANTIZED_MODE} (full integer, int8 in and out).")
@click.option("--out", type=click.Path(), default="model.tflite", show_default=True,
              help="Where the verified model goes; its manifest goes beside it (.json).")
@click.option("--representative", type=click.IntRange(min=1), default=DEFAULT_REPRESENTATIVE, show_default=True,
              help="Class-balanced training digits that calibrate int8/int16x8 activations.")
@click.option("--tolerance", type=click.FloatRange(0, 100), default=DEFAULT_TOLERANCE_PP, show_default=True,
              help="Accuracy points a quantized model may lose against the float model.")
@click.option("--min-agreement", type=click.FloatRange(0, 100), default=DEFAULT_MIN_AGREEMENT_PCT, show_default=True,
              help="Percent of test digits on which a quantized model must give the float model's answer.")
@click.option("--runtime", "runtimes", type=click.Choice(EDGE_RUNTIMES), multiple=True,
              help="Verify on this runtime only (repeatable) [default: every one installed].")
@click.option("--target", type=click.Choice(TARGETS), default="edge", show_default=True,
              help="micro: also verify on TensorFlow Lite Micro and write model_data.h/.cc beside --out.")
@click.option("--c-name", help="With --target micro: the prefix of the C names [default: from --out's file name].")
@click.option("--arena-limit", type=click.IntRange(min=1),
              help="With --target micro: refuse a model whose tensor arena needs more bytes than this.")
@verbose_option
def export_command(run, mode, out, representative, tolerance, min_agreement, runtimes, target, c_name, arena_limit,
                   verbose):
    """Convert RUN's checkpoint to TFLite and write it only after proving accuracy parity."""
    start_tensorflow("export", verbose)
    from .publish import export_run

    try:
        result = export_run(run, mode, out, representative, tolerance, runtimes or None, log=click.echo,
                            min_agreement_pct=min_agreement, target=target, c_name=c_name, arena_limit=arena_limit)
    except ExportError as e:
        raise click.ClickException(str(e)) from None
    click.echo("")
    click.echo(result.table())
    click.echo(f"\nwrote {result.path} and {result.manifest} (verified on "
               f"{', '.join(c.runtime + ' ' + c.version for c in result.parity.checks)})")
    if result.micro:
        m = result.micro
        click.echo(f"wrote {result.path.parent / 'model_data.h'} and model_data.cc for TFLM: {m.c_name}_model_data, "
                   f"{len(m.ops)} ops ({', '.join(m.ops)}), tensor arena {m.arena_bytes:,} bytes "
                   f"({m.arena_measured_bytes:,} measured)")


@click.command("export-lines")
@click.argument("run", type=click.Path())
@click.option("--quantize", "mode", type=click.Choice(["none", "int8"]), default="none", is_flag=False,
              flag_value="int8", show_default=True, help="none: float32; --quantize alone: int8.")
@click.option("--out", type=click.Path(), default="model.lines.tflite", show_default=True,
              help="Beside the digit model, named after it (model.tflite -> model.lines.tflite): read_number, "
                   "edge-classify --number and edge-serve then use it.")
@click.option("--min-agreement", type=click.FloatRange(0, 100), default=None,
              help="Percent of the held-out numbers the float reader reads right that a quantized one must read "
                   "right too [default: 95].")
@click.option("--tolerance", type=click.FloatRange(0, 100), default=None,
              help="Points of numbers read right a quantized reader may lose [default: 1].")
@click.option("--runtime", "runtimes", type=click.Choice(EDGE_RUNTIMES), multiple=True,
              help="Verify on this runtime only (repeatable) [default: every one installed].")
@verbose_option
def export_lines_command(run, mode, out, min_agreement, tolerance, runtimes, verbose):
    """Convert a line reader's RUN to TFLite and write it only after proving it reads as the float model does."""
    start_tensorflow("export-lines", verbose)
    from .lines import DEFAULT_LINE_AGREEMENT_PCT, DEFAULT_LINE_TOLERANCE_PP, export_lines

    try:
        result = export_lines(run, mode, out, runtimes or None,
                              DEFAULT_LINE_AGREEMENT_PCT if min_agreement is None else min_agreement,
                              DEFAULT_LINE_TOLERANCE_PP if tolerance is None else tolerance, log=click.echo)
    except ExportError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {result.path} ({result.size_bytes:,} bytes) and {result.manifest} (verified on "
               f"{', '.join(c.runtime + ' ' + c.version for c in result.checks)})")
