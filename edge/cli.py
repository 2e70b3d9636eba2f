"""`edge-classify IMAGE...`: classify digit images with an exported model.

Exit status: 0 when every image was classified, 1 when some failed (each is reported on stderr and
the rest go on), 2 for usage errors and a model that cannot be used.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

import click

from .errors import EdgeError, ImageError
from .preprocess import IMAGE_EXTENSIONS, render_ascii

MODEL_ENV = "LSTM_EDGE_MODEL"
DEFAULT_MODEL = "model.tflite"
USAGE_ERROR = 2


def expand_inputs(inputs: tuple[str, ...]) -> Iterator[tuple[str, object]]:
    """(name, source) for every image named: files as they are, folders' images in name order,
    "-" the bytes on standard input. A folder without images yields its name with an ImageError."""
    for item in inputs:
        if item == "-":
            yield "-", sys.stdin.buffer.read()
        elif os.path.isdir(item):
            images = sorted(p for p in Path(item).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not images:
                yield item, ImageError(f"folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            for path in images:
                yield str(path), path
        else:
            yield item, item


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("images", nargs=-1, required=True)
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help=f"The .tflite model [default: ${MODEL_ENV}, then ./{DEFAULT_MODEL}].")
@click.option("--top-k", type=click.IntRange(1, 10), default=1, show_default=True, help="Show the k likeliest digits.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per image.")
@click.option("--runtime", type=click.Choice(["auto", "litert", "tflite-runtime", "tensorflow"]), default="auto",
              show_default=True, help="The TFLite interpreter to use.")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Interpreter threads.")
@click.option("--show", is_flag=True, help="Print the 28x28 input the model saw, as text art.")
@click.option("--verbose", "-v", is_flag=True, help="Report load, preprocessing and inference times (stderr).")
@click.version_option(package_name="lstm-edge")
def main(images, model_path, top_k, as_json, runtime, threads, show, verbose):
    """Classify handwritten digits in IMAGE files, folders of images, or - (standard input)."""
    start = time.perf_counter()
    from .classifier import DigitClassifier, Prediction, as_model_input

    model_path = model_path or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    try:
        classifier = DigitClassifier(model_path, runtime=runtime, threads=threads)
    except EdgeError as e:
        click.echo(f"edge-classify: error: {e}", err=True)
        sys.exit(USAGE_ERROR)
    loaded = time.perf_counter()
    if verbose:
        click.echo(f"loaded {model_path} on {classifier.runtime} in {1000 * (loaded - start):.1f} ms", err=True)

    names, digits, failures = [], [], 0
    for name, source in expand_inputs(images):
        try:
            if isinstance(source, ImageError):
                raise source
            digits.append(as_model_input(source))
            names.append(name)
        except ImageError as e:
            click.echo(f"{name}: error: {e}", err=True)
            failures += 1
    prepared = time.perf_counter()
    predictions: list[Prediction] = classifier.classify_many(digits, preprocess=False) if digits else []
    inferred = time.perf_counter()

    for name, digit, prediction in zip(names, digits, predictions):
        click.echo(_format(name, prediction, top_k, as_json, classifier.runtime))
        if show:
            click.echo(render_ascii(digit))
    if verbose and digits:
        n = len(digits)
        click.echo(f"preprocessing {1000 * (prepared - loaded) / n:.2f} ms/image, inference "
                   f"{1000 * (inferred - prepared) / n:.3f} ms/image ({n} images), total "
                   f"{1000 * (time.perf_counter() - start):.1f} ms", err=True)
    sys.exit(1 if failures else 0)


def _format(name: str, prediction, top_k: int, as_json: bool, runtime: str) -> str:
    ranked = prediction.top_k(top_k)
    if as_json:
        return json.dumps({"path": name, "digit": prediction.digit, "confidence": round(prediction.confidence, 6),
                           "top_k": [{"digit": d, "probability": round(p, 6)} for d, p in ranked],
                           "runtime": runtime})
    line = f"{name}: {prediction.digit} ({100 * prediction.confidence:.1f}%)"
    if top_k > 1:
        line += "  then " + ", ".join(f"{d} ({100 * p:.1f}%)" for d, p in ranked[1:])
    return line


if __name__ == "__main__":
    main(prog_name="edge-classify")
