"""`edge-bench MODEL`: how fast a model runs here, on every installed runtime: batch-1 latency
percentiles and batched throughput, per thread count. What a user runs on the Pi itself."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass

import click
import numpy as np

from .errors import EdgeError
from .preprocess import IMAGE_SIZE
from .runtime import RUNTIMES, TFLiteModel, installed_runtimes


@dataclass(frozen=True)
class BenchResult:
    runtime: str
    version: str
    threads: int
    p50_us: float
    p90_us: float
    p99_us: float
    digits_per_second: float
    batch_size: int
    repeats: int


def latencies_us(model: TFLiteModel, digits: np.ndarray, repeats: int) -> np.ndarray:
    """Wall time of each of `repeats` batch-1 invokes, after a warm-up, in microseconds."""
    for digit in digits[:10]:
        model.invoke(digit[None])
    times = np.empty(repeats)
    for i in range(repeats):
        digit = digits[i % len(digits)][None]
        start = time.perf_counter()
        model.invoke(digit)
        times[i] = time.perf_counter() - start
    return times * 1e6


def throughput(model: TFLiteModel, digits: np.ndarray, batch_size: int, seconds: float = 1.0) -> float:
    """Digits per second through `model.predict` in batches, over at least `seconds`."""
    model.predict(digits[:batch_size], batch_size)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.predict(digits, batch_size)
        done += len(digits)
    return done / (time.perf_counter() - start)


def bench(path: str, runtime: str, threads: int, repeats: int = 1000, batch_size: int = 64,
          seconds: float = 1.0) -> BenchResult:
    """Benchmark one runtime at one thread count. Inputs are random digits: timing, not accuracy."""
    digits = np.random.default_rng(0).random((256, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    model = TFLiteModel(path, runtime=runtime, threads=threads)
    times = latencies_us(model, digits, repeats)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    rate = throughput(TFLiteModel(path, runtime=runtime, threads=threads), digits, batch_size, seconds)
    return BenchResult(model.runtime.name, model.runtime.version, threads, float(p50), float(p90), float(p99),
                       rate, batch_size, repeats)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--runtime", "runtimes", type=click.Choice(RUNTIMES), multiple=True,
              help="Runtime to measure (repeatable) [default: every installed edge runtime].")
@click.option("--threads", "thread_counts", type=click.IntRange(1, 256), multiple=True,
              help="Thread count (repeatable) [default: 1 and every core].")
@click.option("--repeats", type=click.IntRange(10), default=1000, show_default=True, help="Batch-1 invokes timed.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every result.")
def main(model, runtimes, thread_counts, repeats, batch_size, as_json):
    """Latency and throughput of MODEL on the TFLite runtimes installed here."""
    runtimes = runtimes or [r for r in installed_runtimes() if r != "tensorflow"] or installed_runtimes()
    thread_counts = thread_counts or sorted({1, os.cpu_count() or 1})
    results = []
    try:
        for runtime in runtimes:
            for threads in thread_counts:
                results.append(bench(model, runtime, threads, repeats, batch_size))
    except EdgeError as e:
        raise click.ClickException(str(e)) from None
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if as_json:
        click.echo(json.dumps({"model": model, "machine": machine, "results": [asdict(r) for r in results]}))
        return
    click.echo(f"{model} on {machine}; batch-1 latency over {repeats} invokes, throughput in batches of {batch_size}")
    click.echo(f"{'runtime':<24}{'threads':>8}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}{'digits/s':>12}")
    for r in results:
        click.echo(f"{r.runtime + ' ' + r.version:<24}{r.threads:>8}{r.p50_us:>10.1f}{r.p90_us:>10.1f}"
                   f"{r.p99_us:>10.1f}{r.digits_per_second:>12,.0f}")


if __name__ == "__main__":
    main(prog_name="edge-bench")
