"""Reading whole numbers: synthetic numbers made of held-out sample digits (never training digits),
read with `DigitClassifier.read_number`, beside the same digits read one by one.

    python -m benchmarks.numbers [--model model.tflite] [--data MNIST_DIR] [--numbers N] [--out DIR]

Each number has 2 to 6 digits (`lstm_edge.train.numbers`, as the line reader's training numbers
are made, but of held-out digits), each digit scaled by 0.85-1.15 and shifted up or down by up to 3
of its 28 pixels, with gaps either separated (2-12 pixels) or touching (the digits' columns overlap
by 1-3 pixels, so strokes often meet). Every number comes in the three forms the tests use: the
28-pixel-high PNG as drawn (MNIST's polarity), dark ink on textured paper at 5x as a JPEG, and
small on a large transparent canvas. With a line reader beside the model, every number is read by
the segmenter alone and with the reader. Writes numbers.json, numbers.md, numbers-failures.png (a
few touching numbers read wrong, paper form) and numbers-read.png (a few the reader reads right
where the segmenter alone did not) to DIR, and docs/benchmarks.md's "numbers" section when DIR is the
checkout's own benchmarks/results (benchmarks.report).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lstm_edge.edge.machine import describe as describe_machine
from lstm_edge.train.numbers import GAPS, compose  # noqa: F401 (compose: the other benchmarks' and tests' too)

from .forms import off_centre_transparent, paper_photo
from .report import RESULTS, publish

FORMS = ("png28", "paper", "canvas")
ROWS = (("separated", None), ("touching", None), ("separated", 4), ("touching", 4))  # gaps, digits (None: 2-6)
SURE = 0.9  # a reading this confident or more is one a user would act on: how often is it wrong?
SINGLE_DIGITS = 2000  # held-out digits drawn from, and each read alone to count false splits


def encode(ink: np.ndarray, form: str, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    if form == "png28":
        Image.fromarray(ink).save(buffer, "PNG")
    elif form == "paper":
        paper_photo(ink, scale=5, rng=rng).save(buffer, "JPEG", quality=85)
    else:
        off_centre_transparent(ink, canvas=max(300, 2 * ink.shape[1] + 100)).save(buffer, "PNG")
    return buffer.getvalue()


def measure(model: str, numbers: int, data_path: str | None = None, seed: int = 0) -> tuple[dict, list, list]:
    """The figures, the touching numbers read wrong, and those the line reader read right where the
    segmenter alone did not (for the pictures).

    With a line reader beside the model (`model.lines.tflite`), every number is read twice, by the
    segmenter alone and with the reader, on the same image.

    Args:
      data_path: the model's dataset (a folder of MNIST IDX files), whose test split is held out from
        it; default the offline sample's held-out split (for models trained on the sample).
    """
    from lstm_edge.edge import DigitClassifier, ImageError
    from lstm_edge.edge.lines import lines_path
    from lstm_edge.train.data import load_dataset

    data = load_dataset("mnist-sample", data_path)
    _check_held_out([model, lines_path(model)], data_path)
    x, y = data.x_test[:SINGLE_DIGITS], data.y_test[:SINGLE_DIGITS]  # held-out digits only
    readers = {"segmenter": DigitClassifier(model, lines=None)}
    if Path(lines_path(model)).is_file():
        readers["line reader"] = DigitClassifier(model)
    rng = np.random.default_rng(seed)
    rows, failures, successes = [], [], []

    def read(length: int, gap_class: str, form: str) -> tuple[str, dict, int, np.ndarray]:
        """One synthetic number: (truth, {reader: (what was read, its lowest confidence, seconds to
        read it)}, single digits right, its ink)."""
        low, high = GAPS[gap_class]
        index = rng.integers(0, len(x), length)
        ink = compose(list(x[index]), [int(g) for g in rng.integers(low, high + 1, length - 1)], rng)
        image = encode(ink, form, rng)
        readings = {}
        for name, classifier in readers.items():
            start = time.perf_counter()
            try:
                reading = classifier.read_number(image)
                text, confidence = reading.text, reading.lowest_confidence
            except ImageError:
                text, confidence = "", 0.0
            readings[name] = (text, confidence, time.perf_counter() - start)
        singles = 0
        for digit, label in zip(x[index], y[index]):
            try:
                singles += readers["segmenter"].classify(encode(digit, form, rng)).digit == int(label)
            except ImageError:  # refused (e.g. read as several digits): not right
                pass
        return "".join(str(int(d)) for d in y[index]), readings, singles, ink

    for form in FORMS:
        for gap_class, lengths in ROWS:
            tallies = {name: {"whole": 0, "count": 0, "digits": 0, "seconds": [], "wrong": [], "right": []}
                       for name in readers}
            digits_total = single_right = all_single = 0
            for _ in range(numbers):
                length = lengths or int(rng.integers(2, 7))
                truth, readings, singles, ink = read(length, gap_class, form)
                digits_total += length
                single_right += singles
                all_single += singles == length
                for name, (text, confidence, took) in readings.items():
                    tally = tallies[name]
                    tally["whole"] += text == truth
                    tally["count"] += len(text) == length
                    tally["digits"] += sum(a == b for a, b in zip(text, truth)) if len(text) == length else 0
                    tally["seconds"].append(took)
                    if text:
                        tally["right" if text == truth else "wrong"].append(confidence)
                text = readings[list(readers)[-1]][0]
                if text != truth and gap_class == "touching" and form == "paper" and len(failures) < 6:
                    failures.append((ink, truth, text))
                before = readings["segmenter"][0]
                if (text == truth != before and gap_class == "touching" and form == "paper"
                        and len(successes) < 6):
                    successes.append((ink, truth, f"{text}, not {before or '(error)'}"))
            for name, t in tallies.items():
                rows.append({"form": form, "gaps": gap_class, "digits": f"{lengths}" if lengths else "2-6",
                             "reader": name, "numbers": numbers, "whole": t["whole"] / numbers,
                             "digit_count": t["count"] / numbers, "per_digit": t["digits"] / digits_total,
                             "single_digit": single_right / digits_total, "all_digits_singly": all_single / numbers,
                             "ms_per_number": 1000 * float(np.median(t["seconds"])), "wrong": len(t["wrong"]),
                             "wrong_but_sure": sum(c > SURE for c in t["wrong"]), "right": len(t["right"]),
                             "right_unsure": sum(c <= SURE for c in t["right"])})
    # How often is a single digit read as several? Every held-out digit, in every form, by each reader.
    split = {name: {} for name in readers}
    for form in FORMS:
        several = dict.fromkeys(readers, 0)
        for digit in x:
            image = encode(digit, form, rng)
            for name, classifier in readers.items():
                try:
                    several[name] += len(classifier.read_number(image).text) != 1
                except ImageError:  # refused (several lines, no ink): not read as one digit either
                    several[name] += 1
        for name in readers:
            split[name][form] = several[name] / len(x)
    return {"machine": describe_machine(), "model": describe(model), "runtime": readers["segmenter"].runtime,
            "line_reader": describe(lines_path(model)) if len(readers) > 1 else None, "rows": rows,
            "data": data.name, "single_digits": len(x), "single_read_as_several": split}, failures, successes


def _check_held_out(models: list[str], data_path: str | None) -> None:
    """Refuse digits a model was trained on: the offline sample's held-out digits are 1,000 of full
    MNIST's training digits, so a model (digit model or line reader) trained on full MNIST is read
    on MNIST's own test split (--data), never on the sample's."""
    if data_path is not None:
        return
    for model in models:
        try:
            training = json.loads(Path(os.path.splitext(model)[0] + ".json").read_text())["training"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if training.get("data_path") or training.get("dataset") == "mnist":
            raise SystemExit(f"{model} was trained on full MNIST, whose training digits include the offline "
                             "sample's held-out ones: pass --data with MNIST's IDX folder to read its test split")


def describe(model: str) -> str:
    """The model as its manifest tells it: mode, size of the LSTM, training, float accuracy."""
    try:
        manifest = json.loads(Path(os.path.splitext(model)[0] + ".json").read_text())
        training = manifest["training"]
        if manifest.get("kind") == "line reader":
            config = training["model"]
            mode = {"none": "float32"}.get(manifest["quantization"], manifest["quantization"])
            return (f"the {mode} line reader ({config['units']} units each way, "
                    f"{config['width']} columns) trained {training['epochs_done']} epochs on {config['lines']:,} "
                    f"numbers of {training['dataset'] or os.path.basename(training['data_path'])}'s training digits "
                    f"(reads {100 * manifest['parity']['float_accuracy']:.1f}% of its held-out numbers whole)")
        return (f"the {manifest['quantization']} export of a {training['model']['units']}-unit LSTM trained "
                f"{training['epochs_done']} epochs on {training['dataset'] or os.path.basename(training['data_path'])} "
                f"(float accuracy "
                f"{100 * manifest['parity']['float_accuracy']:.2f}% on its test split)")
    except (OSError, ValueError, KeyError, TypeError):
        return Path(model).name


def render(r: dict) -> str:
    reader = (f"; beside it {r['line_reader']}, each number read by the segmenter alone and with the line reader"
              if r.get("line_reader") else "")
    lines = [f"Read with `read_number` from {r['rows'][0]['numbers']} synthetic numbers per row (held-out digits: "
             f"the test split of {r['data']}), {r['model']} on {r['runtime']}{reader}, {r['machine']['cpu']} "
             f"({r['machine']['cores']} cores). \"per digit\" counts a number's digits only when the count of "
             "digits is right; \"single\" is the same digits read one image each, in the same form, and \"all "
             "singly\" the numbers whose digits are all right that way; \"ms\": the median time of `read_number` "
             f"on the image's bytes; \"wrong, sure\": wrong readings whose lowest confidence is above {SURE:g} "
             f"(what `--min-confidence {SURE:g}` lets through), \"right, unsure\": right ones it would refuse.", "",
             "| form | gaps | digits | read by | whole number | digit count right | per digit | single | all singly | "
             "ms | wrong, sure | right, unsure |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['form']} | {row['gaps']} | {row['digits']} | {row.get('reader', 'segmenter')} | "
                     f"{100 * row['whole']:.1f}% | "
                     f"{100 * row['digit_count']:.1f}% | {100 * row['per_digit']:.1f}% | "
                     f"{100 * row['single_digit']:.1f}% | {100 * row['all_digits_singly']:.1f}% | "
                     f"{row['ms_per_number']:.2f} | {_share(row['wrong_but_sure'], row['wrong'])} | "
                     f"{_share(row['right_unsure'], row['right'])} |")
    for name, shares in r["single_read_as_several"].items():
        split = ", ".join(f"{form} {100 * v:.2f}%" for form, v in shares.items())
        lines += ["", f"Single digits read as more than one by the {name} ({r['single_digits']:,} held-out digits "
                      f"per form): {split}."]
    return "\n".join(lines)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% of {whole}" if whole else "none"


def failure_picture(failures: list, path: Path) -> None:
    """Numbers, each with the truth and what was read."""
    tiles = []
    for ink, truth, read in failures:
        tile = Image.new("L", (ink.shape[1] * 3, ink.shape[0] * 3 + 16), 255)
        tile.paste(Image.fromarray(255 - ink).resize((ink.shape[1] * 3, ink.shape[0] * 3), Image.NEAREST), (0, 16))
        ImageDraw.Draw(tile).text((2, 2), f"{truth} read {read or '(error)'}", fill=0)
        tiles.append(tile)
    if not tiles:
        return
    picture = Image.new("L", (sum(t.width + 8 for t in tiles), max(t.height for t in tiles)), 200)
    x = 0
    for tile in tiles:
        picture.paste(tile, (x, 0))
        x += tile.width + 8
    picture.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model.tflite", help="an exported model (default: make demo's)")
    parser.add_argument("--data", help="an MNIST IDX folder: numbers from its test split, held out from every model "
                                       "[default: the offline sample's held-out digits; refused for a model trained on "
                                       "full MNIST, whose training digits hold them]")
    parser.add_argument("--numbers", type=int, default=200, help="numbers per form and gap class")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not Path(args.model).is_file():
        parser.error(f"--model {args.model}: no such file (make demo exports one)")
    if args.numbers < 1:
        parser.error("--numbers must be at least 1")
    results, failures, successes = measure(args.model, args.numbers, args.data)
    table = render(results)
    publish(args.out, "numbers", results, table)
    failure_picture(failures, args.out / "numbers-failures.png")
    failure_picture(successes, args.out / "numbers-read.png")
    print(table)


if __name__ == "__main__":
    main()
