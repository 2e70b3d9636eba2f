"""`make bench`: one run that measures lstm-edge beside its baselines on this machine and writes
benchmarks/results/ (results.json, results.md, chart.png) and docs/benchmarks.md's sections.

    python -m benchmarks.run [--run RUN] [--repeats N] [--epochs N] [--modes none,int8] [--out DIR]

Without --run it trains the quickstart model (mnist-sample, 12 epochs, --augment, seed 0) first.
In the same run, with the same trained weights: every export mode on every installed edge
runtime; the fused Keras-LSTM TFLite model (float32 and int8); numpy; TensorFlow on the CPU; the
runtime's own limits for this model (benchmarks.roofline); `edge-classify` cold starts in the
benchmark's venv and in edge-only installs (benchmarks.coldstart); training
throughput against `keras.layers.LSTM` with `model.fit`. Each figure is a median over repeats;
the machine and the runtime versions are written beside it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from lstm_edge.edge.machine import describe as describe_machine
from lstm_edge.export.modes import MODES
from lstm_edge.export.verify import check_parity, edge_runtimes
from lstm_edge.train.recipes import QUICKSTART

from . import coldstart, fidelity, fullmnist, layouts
from .child import EDGE_BENCH, LSTM_EDGE, python, python_json
from .errors import BenchError
from .report import RESULTS, publish

LATENCY_REPEATS = 2000  # batch-1 invokes per model, runtime and thread count


def measure(run: Path | None, work: Path, modes: tuple[str, ...], repeats: int, epochs: int,
            log: Callable[[str], None], mnist: Path | None = None) -> dict:
    unbounded = None
    if run is None:
        run, unbounded = work / "run", work / "run-unbounded"
        log("training the quickstart model (mnist-sample, 12 epochs, --augment), and its unbounded twin ...")
        for out, extra in ((run, ()), (unbounded, ("--cell-bound", "none"))):
            python(*LSTM_EDGE, "train", *QUICKSTART, "--quiet", *extra, "--out", str(out))
    rows = []  # one per model x runtime: what the table and the chart show

    def edge_bench(path: Path) -> list[dict]:
        return python_json("-c", EDGE_BENCH, str(path), "--json", "--repeats", str(LATENCY_REPEATS))["results"]

    for mode in modes:
        log(f"exporting {mode} and timing it on every runtime ...")
        path = work / f"lstm-edge-{mode}.tflite"
        python(*LSTM_EDGE, "export", str(run), "--quantize", mode, "--out", str(path))
        manifest = json.loads(path.with_suffix(".json").read_text())
        checks = {c["runtime"]: c for c in manifest["parity"]["verified_on"]}
        rows += _rows(f"lstm-edge {'float32' if mode == 'none' else mode}", "lstm-edge", manifest["size_bytes"],
                      checks, edge_bench(path))
    float_accuracy = manifest["parity"]["float_accuracy"]

    log("baselines: the fused Keras LSTM (tf_keras), numpy, TensorFlow ...")
    baselines = python_json("-m", "benchmarks.baselines", str(run), str(work))
    digits_file = work / baselines["test_digits_file"]
    labels = np.load(work / baselines["test_labels_file"])
    reference = np.load(work / baselines["float_probabilities_file"])
    for label, model in baselines["fused"].items():
        # The export's own parity run gives the fused models' accuracy and agreement the same way as ours.
        parity = check_parity(Path(model), "none" if label == "float32" else label, digits_file, labels, reference)
        rows += _rows(f"Keras fused LSTM {label}", "fused", Path(model).stat().st_size,
                      {c.runtime: c.to_dict() for c in parity.checks}, edge_bench(Path(model)))
    for key in ("numpy", "tensorflow"):
        b = baselines[key]
        rows.append({"model": b["name"], "family": key, "runtime": key,
                     "version": b["version"], "size_bytes": b["size_bytes"], "accuracy": b["accuracy"],
                     "agreement": b["agreement"], "p50_us": b["p50_us"], "p99_us": b["p99_us"], "invoke_p50_us": None,
                     "digits_per_second": b["digits_per_second"], "best": f"batch {b['batch_size']}",
                     "repeats": b["repeats"]})

    log("the runtime's limits for this model ...")
    (work / "roofline").mkdir()
    roofline = python_json("-m", "benchmarks.roofline", str(work / "roofline"), "--json")
    log("graph layouts of the same arithmetic ...")
    (work / "layouts").mkdir()
    layout_results = python_json("-m", "benchmarks.layouts", str(run), str(work / "layouts"), "--json")
    log("int8 fidelity candidates ...")
    (work / "fidelity").mkdir()
    int8_candidates = python_json("-m", "benchmarks.fidelity", str(run), str(work / "fidelity"), "--json",
                                  *(["--unbounded", str(unbounded)] if unbounded else []))
    log("cold starts ...")
    int8 = work / "lstm-edge-int8.tflite"
    if not int8.exists():
        python(*LSTM_EDGE, "export", str(run), "--quantize", "int8", "--out", str(int8))
    digit = work / "digit.png"  # a held-out test digit as a PNG file, as a user would have it
    Image.fromarray(np.round(255 * np.load(digits_file)[0]).astype(np.uint8)).save(digit)
    starts = coldstart.measure(int8, digit, edge_runtimes(), work, repeats, log)
    log("training throughput ...")
    training = python_json("-m", "benchmarks.training", "--epochs", str(epochs), "--json")
    log("full MNIST: the seed's defaults and the recipe, trained from scratch ...")
    full_mnist = python_json("-m", "benchmarks.fullmnist", "--json", *(["--mnist", str(mnist)] if mnist else []))
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "test_digits": len(labels),
        "dataset": baselines["dataset"],
        "float_accuracy": float_accuracy,
        "rows": rows,
        "roofline": roofline,
        "layouts": layout_results,
        "fidelity": int8_candidates,
        "cold_start": starts,
        "training": training,
        "full_mnist": full_mnist,
    }


def _rows(name: str, family: str, size: int, checks: dict, results: list[dict]) -> list[dict]:
    """Table rows of one TFLite model: per runtime, 1-thread latency and the best batched rate."""
    rows = []
    for runtime in dict.fromkeys(r["runtime"] for r in results):
        mine = [r for r in results if r["runtime"] == runtime]
        single = next(r for r in mine if r["threads"] == 1)
        best = max(mine, key=lambda r: r["digits_per_second"])
        check = checks.get(runtime, {})
        rows.append({"model": name, "family": family, "runtime": runtime, "version": single["version"],
                     "size_bytes": size, "accuracy": check.get("accuracy"), "agreement": check.get("agreement"),
                     "p50_us": single["p50_us"], "p99_us": single["p99_us"], "invoke_p50_us": single["invoke_p50_us"],
                     "digits_per_second": best["digits_per_second"],
                     "best": f"{best['threads']} thread{'s' * (best['threads'] > 1)}, batch {best['batch_size']}",
                     "repeats": single["repeats"]})
    return rows


def render(r: dict) -> str:
    """The markdown of docs/benchmarks.md's "bench" section."""
    m, roof = r["machine"], r["roofline"]
    lines = [f"Measured by `make bench` on {m['cpu']} ({m['cores']} cores, {m['machine']}, Python {m['python']}), "
             f"{r['created'][:10]}, all in one run with the same trained weights. Accuracy on the "
             f"{r['test_digits']:,} held-out {r['dataset']} digits (float model {100 * r['float_accuracy']:.1f}%); "
             "p50/p99 = batch-1 latency of a ready 28x28 array through the Python API (quantize, invoke, "
             f"dequantize) on 1 thread, over {LATENCY_REPEATS:,} calls; invoke = the interpreter's invoke alone "
             "(median; for the fused LSTM with its state reset), the figure the runtime's floor below compares "
             f"with; digits/s = the best of 1 and "
             f"{m['cores']} threads x batch 16, 64, 256. The machine is shared and noisy.", "",
             "| model | runtime | size | accuracy | agreement | p50 | p99 | invoke | digits/s | best at |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        acc = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        agree = "-" if row["agreement"] is None else f"{100 * row['agreement']:.1f}%"
        lines.append(f"| {row['model']} | {row['runtime']} {row['version']} | {row['size_bytes'] / 1024:.0f} KB | "
                     f"{acc} | {agree} | {_us(row['p50_us'])} | {_us(row['p99_us'])} | "
                     f"{'-' if row['invoke_p50_us'] is None else _us(row['invoke_p50_us'])} | "
                     f"{row['digits_per_second']:,.0f} | {row['best']} |")
    ours = _pick(r["rows"], "lstm-edge int8", "litert")
    fused = _pick(r["rows"], "Keras fused LSTM int8", "litert")
    if ours and fused:
        lines += ["", f"Default `--quantize` model (int8) on LiteRT against the fused Keras LSTM int8 on LiteRT: "
                      f"**{fused['p50_us'] / ours['p50_us']:.1f}x** lower batch-1 latency through the API "
                      f"({fused['invoke_p50_us'] / ours['invoke_p50_us']:.1f}x invoke alone), "
                      f"**{ours['digits_per_second'] / fused['digits_per_second']:.1f}x** the batched throughput "
                      f"(accuracy {100 * ours['accuracy']:.1f}% vs {100 * fused['accuracy']:.1f}%)."]
    lines += ["", f"The runtime's limits for this model here ({roof['runtime']}, fastest of {roof['rounds']} rounds): "
              f"one (1, 128) @ (128, 512) recurrent product takes {roof['gemv_us']['gemv-int8']:.1f} us in int8 "
              f"({roof['gemv_us']['gemv-float32']:.1f} us float32), and a digit needs 27 of them in a row: "
              f"**batch-1 floor {roof['latency_floor_us']:.0f} us**. The best matrix-product rate is "
              f"{max(roof['gemm_gmacs'].values()):.0f} G multiply-adds/s on {roof['gemm_threads']} threads and a digit "
              f"needs {roof['macs_per_digit'] / 1e6:.2f} M: **throughput ceiling "
              f"{roof['throughput_ceiling']:,.0f} digits/s**."]
    lay = r["layouts"]
    lines += ["", f"The same arithmetic in other graph layouts (`benchmarks/layouts.py`), int8 on {lay['runtime']}, "
              f"batch 1, one thread, interpreter invoke alone, median of {lay['rounds']} interleaved rounds of "
              f"{lay['calls']} calls:", "",
              "| layout | ops | size | invoke | agreement with float | top-class p99 |", "|---|---|---|---|---|---|"]
    for x in lay["results"]:
        lines.append(f"| {x['layout']} | {x['ops']} | {x['size_bytes'] / 1024:.0f} KB | {x['invoke_us']:.0f} us | "
                     f"{100 * x['agreement']:.1f}% | {x['top_difference_p99']:.3f} |")
    invoke = {x["layout"]: x["invoke_us"] for x in lay["results"]}
    if layouts.EXPORT in invoke and layouts.ONE_PRODUCT in invoke:
        ratio = invoke[layouts.EXPORT] / invoke[layouts.ONE_PRODUCT]
        lines += ["", f"The export's layout against the one-product layout, same run: **{ratio:.2f}x** the invoke "
                      "time."]
    if "fidelity" in r:
        lines += ["", fidelity.render(r["fidelity"], f"The quickstart model ({r['dataset']})")]
    cold = r["cold_start"]
    lines += ["", "`edge-classify digit.png` (int8), process start to answer, in a checkout's venv and in edge-only "
              "installs made as a Raspberry Pi gets one (`pip install` the wheel: LiteRT, numpy, Pillow, "
              f"click); {cold['rows'][0]['repeats']} rounds, every command in turn. Floor: the same interpreter "
              "importing numpy, Pillow's PNG plugin and the runtime, nothing else; ours: the rest (median of "
              "each round's difference); python: `python -c pass`.", "",
              "| environment | runtime | median | min | max | floor | ours | python |",
              "|---|---|---|---|---|---|---|---|"]
    for s in cold["rows"]:
        lines.append(f"| {s['environment']} | {s['runtime']} | **{s['median_s']:.3f} s** | {s['min_s']:.3f} s | "
                     f"{s['max_s']:.3f} s | {s['floor_median_s']:.3f} s | {s['ours_median_s']:.3f} s | "
                     f"{s['python_median_s']:.3f} s |")
    for s in cold["skipped"]:
        lines.append(f"| edge-only install: {s['python']} | not measured: {s['reason']} | | | | | | |")
    t = r["training"]
    lines += ["", f"Training throughput on {t['digits']:,} {t['dataset']} digits, batch {t['batch_size']}, "
              f"{t['units']} units, median of {t['epochs_timed']} alternating epochs: lstm-edge "
              f"{t['lstm_edge_median']:,.0f} digits/s, `keras.layers.LSTM` with `model.fit` "
              f"{t['keras_fit_median']:,.0f} digits/s: **ratio {t['ratio']:.2f}** "
              f"(TensorFlow {t['tensorflow']}, Keras {t['keras']}).", ""]
    if "full_mnist" in r:
        lines += [fullmnist.render(r["full_mnist"]), ""]
    lines += ["![latency against accuracy](../benchmarks/results/chart.png)"]
    return "\n".join(lines)


def _pick(rows: list[dict], model: str, runtime: str):
    return next((row for row in rows if row["model"] == model and row["runtime"] == runtime), None)


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} us"


def run_benchmark(run: str | None = None, out: Path = RESULTS, repeats: int = 15, epochs: int = 5,
                  modes: tuple[str, ...] = MODES, log: Callable[[str], None] = print,
                  mnist: Path | None = None) -> dict:
    """The whole benchmark; writes results.json, results.md and chart.png to `out`, and the docs'
    sections when `out` is the checkout's own results folder."""
    from .chart import draw

    if run is not None and not (Path(run) / "config.json").is_file():
        raise BenchError(f"--run {run}: not a run folder (no config.json); train one with `lstm-edge train`")
    with tempfile.TemporaryDirectory(prefix="lstm-edge-bench-") as work:
        results = measure(Path(run) if run else None, Path(work), modes, repeats, epochs, log, mnist)
    table = render(results)
    sections = {"bench": table}
    full = results.get("full_mnist", {}).get("fidelity")
    if full:
        m = results["machine"]
        sections["tradeoff"] = fidelity.tradeoff(full, f"{m['cpu']} ({m['cores']} cores), {results['created'][:10]}")
    publish(out, "results", results, table, log, sections)
    draw(results, out / "chart.png")
    log(table)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run folder (default: train the quickstart model)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go (default benchmarks/results)")
    parser.add_argument("--repeats", type=int, default=15, help="rounds of edge-classify cold starts")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs timed per trainer")
    parser.add_argument("--modes", default=",".join(MODES), help="export modes to measure (comma-separated)")
    parser.add_argument("--mnist", type=Path, help="full MNIST IDX folder (default ../shared/data/mnist)")
    args = parser.parse_args()
    modes = tuple(m for m in args.modes.split(",") if m)
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    try:
        run_benchmark(args.run, args.out, args.repeats, args.epochs, modes, lambda message: print(message, flush=True),
                      args.mnist)
    except BenchError as e:
        parser.exit(1, f"bench: error: {e}\n")


if __name__ == "__main__":
    main()
