"""Images to answers at camera rate: the pipeline around the model, against decoding the image.

    python -m benchmarks.frames [--model model.tflite] [--rounds N] [--out DIR]      (make bench-frames)

Frames of grey paper lit unevenly (`forms.paper_frame`), from 320x240 to 12 MP, holding a 4-digit
number of held-out digits across 60% of their width (and, as a second row, one digit), each as
the RGB array a camera hands over and as a JPEG. In one process on one thread, in alternating
rounds (so the shared machine's drift hits both alike): Pillow decoding the frame's JPEG to grey
(`Image.open(...).convert("L")`), and `read_number` on the array and on the JPEG, with the time of
each stage (decode, ink, segment, layout, from `preprocess.read_digits`; inference, the rest); the
ratio is the pipeline's median over the decode's. Then a ~200 px photo-like single-digit JPEG
through `classify` against its decode, and `edge-classify` on a folder of 1,000 such JPEGs, in
images per second, on one core and on every core (`--jobs`). Every reading is checked against the
truth: a faster pipeline that reads worse is not faster.

Writes frames.json, frames.md and docs/benchmarks.md's "frames" section (benchmarks.report).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lstm_edge.edge.machine import describe as describe_machine

from .child import ROOT
from .forms import paper_frame, paper_photo
from .numbers import compose
from .report import RESULTS, publish

SIZES = ((320, 240), (640, 480), (1280, 720), (1920, 1080), (4032, 3024))
FRAMES = 8  # different numbers per size: accuracy, and timings over several frames
FOLDER_IMAGES = 1000
STAGES = ("decode", "ink", "segment", "layout", "inference")
# Done-when of the frames issue: the pipeline's time over the JPEG decode's, at most.
GOALS = {(640, 480): 3.0, (1920, 1080): 1.5, (4032, 3024): 0.5, "digit": 3.0}


def _once(call, *args) -> float:
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def decode_gray(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("L")


def jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def measure(model: str, rounds: int, log=print) -> dict:
    from lstm_edge.edge import DigitClassifier, ImageError
    from lstm_edge.edge.preprocess import read_digits
    from lstm_edge.train.data import load_dataset

    data = load_dataset("mnist-sample")
    x, y = data.x_test, data.y_test  # held-out digits
    classifier = DigitClassifier(model, threads=1)
    rng = np.random.default_rng(0)

    def read(item) -> tuple[str, dict[str, float]]:
        start = time.perf_counter()
        found = read_digits(item)
        classifier.classify_many(found.inputs, preprocess=False)
        stages = dict(found.seconds)
        stages["inference"] = time.perf_counter() - start - sum(stages.values())
        return found, stages

    rows = []
    for width, height in SIZES:
        for kind in ("number", "digit"):
            log(f"  {width}x{height} {kind} ...")
            frames = []
            for _ in range(FRAMES if kind == "number" else 3):
                index = rng.integers(0, len(x), 4 if kind == "number" else 1)
                ink = compose(list(x[index]), [int(g) for g in rng.integers(4, 13, len(index) - 1)], rng)
                array = paper_frame(ink, (width, height), 0.6 if kind == "number" else 0.2, rng)
                frames.append((array, jpeg(array), "".join(str(int(d)) for d in y[index])))
            decode, array_s, jpeg_s, stages = [], [], [], {"array": [], "jpeg": []}
            right = {"array": 0, "jpeg": 0}
            for array, data_bytes, truth in frames:
                for source, form in ((array, "array"), (data_bytes, "jpeg")):
                    try:
                        text = classifier.read_number(source).text
                    except ImageError:
                        text = ""
                    right[form] += text == truth
                for _ in range(rounds):  # alternating: the decode, then ours on the array, on the JPEG
                    decode.append(_once(decode_gray, data_bytes))
                    array_s.append(_once(classifier.read_number, array))
                    jpeg_s.append(_once(classifier.read_number, data_bytes))
                for source, form in ((array, "array"), (data_bytes, "jpeg")):
                    for _ in range(max(3, rounds // 4)):
                        stages[form].append(read(source)[1])
            d = statistics.median(decode)
            rows.append({
                "size": [width, height], "kind": kind, "frames": len(frames), "decode_ms": 1000 * d,
                "array_ms": 1000 * statistics.median(array_s), "jpeg_ms": 1000 * statistics.median(jpeg_s),
                "array_ratio": statistics.median(array_s) / d, "jpeg_ratio": statistics.median(jpeg_s) / d,
                "right": right,
                "stages_ms": {form: {s: 1000 * statistics.median(t[s] for t in stages[form]) for s in STAGES}
                              for form in ("array", "jpeg")},
            })

    log("  a ~200 px photo-like digit ...")
    digit_decode, digit_classify, digit_stages = [], [], []
    singles = [jpeg(np.asarray(paper_photo(x[i], scale=8, rng=rng)), 85) for i in range(0, 1000, 50)]
    correct = sum(classifier.classify(s).digit == int(y[i]) for s, i in zip(singles, range(0, 1000, 50)))
    for single in singles:
        for _ in range(rounds):
            digit_decode.append(_once(decode_gray, single))
            digit_classify.append(_once(classifier.classify, single))
        digit_stages += [read(single)[1] for _ in range(3)]
    digit = {"size": list(Image.open(io.BytesIO(singles[0])).size), "images": len(singles), "right": correct,
             "decode_ms": 1000 * statistics.median(digit_decode),
             "classify_ms": 1000 * statistics.median(digit_classify),
             "stages_ms": {s: 1000 * statistics.median(t[s] for t in digit_stages) for s in STAGES}}
    digit["ratio"] = digit["classify_ms"] / digit["decode_ms"]

    log(f"  edge-classify on a folder of {FOLDER_IMAGES:,} photo-like JPEGs ...")
    folder = _folder_rate(model, x, y, rng)
    return {"machine": describe_machine(), "runtime": classifier.runtime, "rounds": rounds, "rows": rows,
            "digit": digit, "folder": folder, "goals": {"640x480": 3.0, "1920x1080": 1.5, "4032x3024": 0.5,
                                                         "digit": 3.0}}


def _folder_rate(model: str, x: np.ndarray, y: np.ndarray, rng) -> dict:
    """edge-classify on FOLDER_IMAGES photo-like JPEGs: images/s and digits right, one job and every core."""
    with tempfile.TemporaryDirectory(prefix="lstm-edge-frames-") as work:
        folder = Path(work)
        labels = {}
        for i in range(FOLDER_IMAGES):
            name = f"{i:04d}.jpg"
            folder.joinpath(name).write_bytes(jpeg(np.asarray(paper_photo(x[i % len(x)], 8, rng)), 85))
            labels[name] = int(y[i % len(x)])
        results = {}
        for jobs in sorted({1, os.cpu_count() or 1}):
            command = [sys.executable, "-m", "lstm_edge.edge.cli", str(folder), "--model", model, "--json",
                       "--jobs", str(jobs)]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            best, right = None, 0
            for _ in range(3):
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                seconds = time.perf_counter() - start
                if done.returncode not in (0, 1):
                    raise RuntimeError(f"edge-classify failed: {done.stderr.strip()[-300:]}")
                import json

                rows = [json.loads(line) for line in done.stdout.splitlines()]
                right = sum(r["digit"] == labels[os.path.basename(r["path"])] for r in rows)
                best = seconds if best is None else min(best, seconds)
            results[str(jobs)] = {"seconds": best, "images_per_second": FOLDER_IMAGES / best, "right": right}
        return {"images": FOLDER_IMAGES, "size": list(Image.open(next(folder.iterdir())).size), "by_jobs": results}


def render(r: dict) -> str:
    m = r["machine"]
    lines = [f"Measured by `make bench-frames` on {m['cpu']} ({m['cores']} cores, {m['machine']}, Python "
             f"{m['python']}), {r['runtime']}, one process on one thread, {r['rounds']} alternating rounds per "
             "frame. Decode: Pillow decoding the frame's JPEG to grey (`Image.open(...).convert(\"L\")`); "
             "ratio: `read_number`'s median over the decode's; right: frames read exactly.", "",
             "| frame | content | decode | read_number, array | ratio | read_number, JPEG | ratio "
             "| right (array, JPEG) | stages, array: decode / ink / segment / layout / inference |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        w, h = row["size"]
        stages = " / ".join(f"{row['stages_ms']['array'][s]:.2f}" for s in STAGES)
        lines.append(f"| {w}x{h} | {'4-digit number' if row['kind'] == 'number' else 'one digit'} | "
                     f"{row['decode_ms']:.2f} ms | {row['array_ms']:.2f} ms | **{row['array_ratio']:.2f}x** | "
                     f"{row['jpeg_ms']:.2f} ms | **{row['jpeg_ratio']:.2f}x** | {row['right']['array']}, "
                     f"{row['right']['jpeg']} of {row['frames']} | {stages} ms |")
    d = r["digit"]
    stages = " / ".join(f"{d['stages_ms'][s]:.3f}" for s in STAGES)
    lines += ["", f"A {d['size'][0]}x{d['size'][1]} photo-like single-digit JPEG: decode {d['decode_ms']:.3f} ms, "
                  f"`classify` {d['classify_ms']:.3f} ms: **{d['ratio']:.2f}x** its decode ({d['right']} of "
                  f"{d['images']} right; stages {stages} ms)."]
    f = r["folder"]
    rates = ", ".join(f"{v['images_per_second']:,.0f} images/s with --jobs {k} ({v['right']} right)"
                      for k, v in f["by_jobs"].items())
    lines += ["", f"`edge-classify` on a folder of {f['images']:,} photo-like {f['size'][0]}x{f['size'][1]} JPEGs, "
                  f"process start to last answer, best of 3: {rates}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model.tflite", help="an exported model (default: make demo's)")
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds per frame")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not Path(args.model).is_file():
        parser.error(f"--model {args.model}: no such file (make demo exports one)")
    results = measure(args.model, args.rounds, log=lambda message: print(message, flush=True))
    table = render(results)
    publish(args.out, "frames", results, table)
    print(table)


if __name__ == "__main__":
    main()
