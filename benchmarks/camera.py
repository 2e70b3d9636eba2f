"""The live camera: frames/s read and latency from a frame's arrival to its reading, for a replayed
folder of camera frames (4-digit numbers on paper) at 640x480 and 1280x720, on one core and on two,
beside `read_number` on the same frames in a plain loop (the frames benchmark's figure).

    python -m benchmarks.camera [--model model.tflite] [--seconds S] [--out DIR]

Two rates per size and core count: the camera's 30 frames/s (a reading per frame when reading is
faster than the frames; the latency a user sees), and as fast as the source gives frames (the
reading rate's ceiling; frames the reader is too busy for are dropped). Writes camera.json,
camera.md and docs/benchmarks.md's "camera" section (benchmarks.report).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lstm_edge.edge.machine import describe as describe_machine

from .forms import paper_frame
from .frames import jpeg
from .numbers import compose
from .report import RESULTS, publish

SIZES = ((640, 480), (1280, 720))
FRAMES = 8
CAMERA_FPS = 30.0
UNPACED_FPS = 1000.0  # faster than any reading: the source gives frames as fast as it decodes them
SECONDS = 8.0


def measure(model: str, seconds: float, log=print) -> dict:
    from lstm_edge.edge import DigitClassifier
    from lstm_edge.edge.camera import CameraReader, ReplaySource
    from lstm_edge.train.data import load_dataset

    data = load_dataset("mnist-sample")
    rng = np.random.default_rng(0)
    classifier = DigitClassifier(model, threads=1)
    everyone = os.sched_getaffinity(0)

    def read(pixels: np.ndarray) -> dict:
        return classifier.read_number(pixels).to_dict()

    rows = []
    with tempfile.TemporaryDirectory(prefix="lstm-edge-camera-") as work:
        for width, height in SIZES:
            folder = Path(work) / f"{width}x{height}"
            folder.mkdir()
            arrays = []
            for i in range(FRAMES):
                ink = compose(list(data.x_test[rng.integers(0, len(data.x_test), 4)]), [8, 8, 8], rng)
                arrays.append(paper_frame(ink, (width, height), 0.6, rng))
                (folder / f"{i:03d}.jpg").write_bytes(jpeg(arrays[-1]))
            for cores in (1, min(2, len(everyone))):
                os.sched_setaffinity(0, set(sorted(everyone)[:cores]))
                try:
                    loop = []
                    for _ in range(5):
                        for array in arrays:
                            start = time.perf_counter()
                            classifier.read_number(array)
                            loop.append(time.perf_counter() - start)
                    for fps in (CAMERA_FPS, UNPACED_FPS):
                        log(f"  {width}x{height}, {cores} core(s), source at {fps:g} frames/s ...")
                        readings = []
                        reader = CameraReader(functools.partial(ReplaySource, str(folder), fps), read).start()
                        reading, end = None, time.monotonic() + seconds
                        first = None
                        while time.monotonic() < end:
                            reading = reader.wait_reading(reading, 1.0)
                            if reading is not None and (not readings or reading is not readings[-1]):
                                readings.append(reading)
                                first = first or reader.status()
                        last = reader.status()
                        reader.stop()
                        latencies = [1000 * r.latency_s for r in readings[1:]]
                        rows.append({
                            "size": [width, height], "cores": cores, "source_fps": fps,
                            "frames": last["frames"] - first["frames"], "read": last["read"] - first["read"],
                            "dropped": last["dropped"] - first["dropped"],
                            "read_per_s": (last["read"] - first["read"]) / seconds,
                            "latency_p50_ms": statistics.median(latencies),
                            "latency_p99_ms": float(np.percentile(latencies, 99)),
                            "loop_ms": 1000 * statistics.median(loop),
                        })
                finally:
                    os.sched_setaffinity(0, everyone)
    return {"machine": describe_machine(), "runtime": classifier.runtime, "seconds": seconds, "rows": rows}


def render(r: dict) -> str:
    m = r["machine"]
    lines = [f"Measured by `make bench-camera` on {m['cpu']} ({m['cores']} cores, {m['machine']}, "
             f"Python {m['python']}), {r['runtime']}: a folder of {FRAMES} JPEG camera frames (4-digit numbers on "
             "paper) replayed by "
             f"`CameraReader` reading numbers, {r['seconds']:g} s per row, the process pinned to the cores named. "
             "\"loop\": `read_number` on the same frames as arrays in a plain loop; \"latency\": from a frame's "
             "arrival to its reading; at the camera's 30 frames/s it must stay under 2 frame intervals (66.7 ms).",
             "", "| frame | cores | source | frames/s read | dropped | latency p50 | p99 | loop |",
             "|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        source = f"{row['source_fps']:g} frames/s" if row["source_fps"] < UNPACED_FPS else "as fast as it decodes"
        lines.append(f"| {row['size'][0]}x{row['size'][1]} | {row['cores']} | {source} | {row['read_per_s']:.1f} | "
                     f"{row['dropped']} of {row['frames']} | {row['latency_p50_ms']:.1f} ms | "
                     f"{row['latency_p99_ms']:.1f} ms | {row['loop_ms']:.2f} ms |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model.tflite", help="an exported model (default: make demo's)")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="seconds per row")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not Path(args.model).is_file():
        parser.error(f"--model {args.model}: no such file (make demo exports one)")
    results = measure(args.model, args.seconds, log=lambda message: print(message, flush=True))
    table = render(results)
    publish(args.out, "camera", results, table)
    print(table)


if __name__ == "__main__":
    main()
