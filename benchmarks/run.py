"""`make bench`: one run that measures lstm-edge beside its baselines on this machine, and writes
benchmarks/results/results.json, results.md and the README's table.

    python -m benchmarks.run [--run RUN] [--repeats N]

Without --run it trains the quickstart model (mnist-sample, 12 epochs, --augment, seed 0) first.
Every figure is a median over repeats; the machine and runtime versions are written beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
DIGIT = ROOT / "examples" / "digits" / "7.png"


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=True, **kwargs)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}


def cold_start(model: Path, runtime: str, repeats: int) -> dict:
    """Wall time of `edge-classify digit.png` from process start to answer: median and spread.
    The installed console script is timed, as a user runs it."""
    script = Path(sys.executable).with_name("edge-classify")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "edge.cli"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([*command, str(DIGIT), "--model", str(model), "--runtime", runtime], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return {"runtime": runtime, "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run folder (default: train the quickstart model)")
    parser.add_argument("--repeats", type=int, default=15, help="cold starts timed per runtime")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs timed per trainer")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        run = Path(args.run) if args.run else work / "run"
        if not args.run:
            print("training the quickstart model ...", flush=True)
            python("-m", "train.cli", "train", "--dataset", "mnist-sample", "--epochs", "12", "--augment",
                   "--quiet", "--out", str(run))
        models = {}
        for mode in ("none", "int8"):
            print(f"exporting {mode} ...", flush=True)
            models[mode] = work / f"{mode}.tflite"
            python("-m", "train.cli", "export", str(run), "--quantize", mode, "--out", str(models[mode]))
        manifests = {mode: json.loads(path.with_suffix(".json").read_text()) for mode, path in models.items()}
        print("edge-bench ...", flush=True)
        inference = {mode: json.loads(python("-m", "edge.bench", str(path), "--json").stdout)
                     for mode, path in models.items()}
        print("cold starts ...", flush=True)
        starts = [cold_start(models["int8"], runtime, args.repeats) for runtime in ("litert", "tflite-runtime")]
        print("training throughput ...", flush=True)
        training = json.loads(python("-m", "benchmarks.training", "--epochs", str(args.epochs), "--json").stdout)
    results = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "models": {mode: {"size_bytes": m["size_bytes"], "float_accuracy": m["parity"]["float_accuracy"],
                          "verified_on": m["parity"]["verified_on"]} for mode, m in manifests.items()},
        "inference": inference,
        "cold_start": starts,
        "training": training,
    }
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = render(results)
    (RESULTS / "results.md").write_text(table + "\n")
    update_readme(table)
    print(table)


def render(r: dict) -> str:
    m = r["machine"]
    lines = [f"Measured by `make bench` on {m['cpu']} ({m['cores']} cores, {m['machine']}, Python {m['python']}), "
             f"{r['created'][:10]}. Medians; the machine is shared and noisy.", "",
             "| model | runtime | size | accuracy | agreement | batch-1 p50 (1 thread) | p99 "
             "| digits/s (batched, all cores) |",
             "|---|---|---|---|---|---|---|---|"]
    for mode, model in r["models"].items():
        checks = {c["runtime"]: c for c in model["verified_on"]}
        for res in r["inference"][mode]["results"]:
            if res["threads"] != 1:
                continue
            same_runtime = [x for x in r["inference"][mode]["results"] if x["runtime"] == res["runtime"]]
            batched = max(x["digits_per_second"] for x in same_runtime)
            check = checks.get(res["runtime"], {})
            lines.append(f"| {'float32' if mode == 'none' else mode} | {res['runtime']} {res['version']} | "
                         f"{model['size_bytes'] / 1024:.1f} KB | {100 * check.get('accuracy', float('nan')):.2f}% | "
                         f"{100 * check.get('agreement', float('nan')):.2f}% | {res['p50_us']:.0f} us | "
                         f"{res['p99_us']:.0f} us | {batched:,.0f} |")
    lines += ["", "| `edge-classify digit.png`, process start to answer (int8) | median | min | max |",
              "|---|---|---|---|"]
    for s in r["cold_start"]:
        lines.append(f"| {s['runtime']} ({s['repeats']} runs) | {s['median_s']:.2f} s | {s['min_s']:.2f} s | "
                     f"{s['max_s']:.2f} s |")
    t = r["training"]
    lines += ["", f"Training throughput on {t['digits']:,} {t['dataset']} digits, batch {t['batch_size']}, "
              f"{t['units']} units, median of {t['epochs_timed']} alternating epochs: lstm-edge "
              f"{t['lstm_edge_median']:,.0f} digits/s, `keras.layers.LSTM` with `model.fit` "
              f"{t['keras_fit_median']:,.0f} digits/s: **ratio {t['ratio']:.2f}** "
              f"(TensorFlow {t['tensorflow']}, Keras {t['keras']})."]
    return "\n".join(lines)


def update_readme(table: str) -> None:
    text = README.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        README.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    main()
