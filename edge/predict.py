"""Probabilities for a file of digit arrays, in a process of its own:

    python -I -m lstm_edge.edge.predict MODEL DIGITS.npy PROBABILITIES.npy [--runtime R] [--timing N]

Export runs its parity check through this (`lstm_edge.export.isolated`), as a user's device would
run the model: no TensorFlow in the process (unless asked for as the runtime), and one process per
runtime. It prints one JSON
line: the runtime, its version and, with --timing, the median batch-1 latency; on tflite-micro also
the ops the model needs and the smallest tensor arena it runs in.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .bench import latencies_us
from .errors import EdgeError
from .lines import LineModel
from .runtime import TFLiteModel


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lstm_edge.edge.predict", description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("digits", help=".npy of float32 (N, 28, 28) in [0, 1]")
    parser.add_argument("output", help=".npy to write float32 (N, 10) probabilities to")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--timing", type=int, default=0, help="time this many batch-1 invokes")
    parser.add_argument("--lines", action="store_true", help="the model is a line reader: .npy of (N, 28, width) "
                                                              "lines in, (N, steps, 11) probabilities out")
    args = parser.parse_args(argv)
    try:
        kind = LineModel if args.lines else TFLiteModel
        model = kind(args.model, runtime=args.runtime, threads=args.threads)
        report = {"runtime": model.runtime.name, "version": model.runtime.version, "io": model.io_contract()}
        digits = np.load(args.digits)
        np.save(args.output, model.predict(digits))
        if model.runtime.name == "tflite-micro":  # what a firmware needs to know: its ops and arena
            from .micro import minimal_arena_bytes, op_names

            data = Path(args.model).read_bytes()
            report["micro"] = {"ops": op_names(data),
                               "arena_bytes": minimal_arena_bytes(data, model.stored_input(digits[:1]))}
        if args.timing:
            single = kind(args.model, runtime=args.runtime, threads=1)
            report["latency_us"] = float(np.median(latencies_us(single, digits, args.timing)))
    except (EdgeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
