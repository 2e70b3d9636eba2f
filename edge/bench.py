"""How fast a model runs here (`edge-bench MODEL`): batch-1 latency percentiles through the Python
API, the interpreter's invoke alone, and batched throughput, per runtime and thread count. What a
user runs on the Pi itself."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .contract import IMAGE_SIZE
from .interpreters import installed_device_runtimes, installed_runtimes
from .runtime import TFLiteModel

BATCH_SIZES = (16, 64, 256)  # tried for throughput; measured, the best one moves with runtime and threads


@dataclass(frozen=True)
class BenchResult:
    runtime: str
    version: str
    threads: int
    p50_us: float  # batch-1 through the Python API: quantize, invoke, dequantize
    p90_us: float
    p99_us: float
    invoke_p50_us: float  # batch-1 interpreter invoke alone (state reset included), input already set
    digits_per_second: float  # the best over the batch sizes tried
    batch_size: int  # the batch size that gave it
    repeats: int
    by_batch_size: tuple[tuple[int, float], ...] = ()  # (batch size, digits/s) for each one tried


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


def paired_latencies_us(model: TFLiteModel, digits: np.ndarray, repeats: int,
                        rounds: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Batch-1 wall times in microseconds, `repeats` of each kind, in alternating rounds so both
    see the same machine noise: through the API (`invoke`: quantize, invoke, dequantize, a new
    digit each time) and of the interpreter's invoke alone (`run`, the input already set)."""
    for digit in digits[:10]:
        model.invoke(digit[None])
    api, alone = np.empty(repeats), np.empty(repeats)
    bounds = np.linspace(0, repeats, rounds + 1).astype(int)
    for r in range(rounds):
        for i in range(bounds[r], bounds[r + 1]):
            digit = digits[i % len(digits)][None]
            start = time.perf_counter()
            model.invoke(digit)
            api[i] = time.perf_counter() - start
        model.feed(digits[r % len(digits)][None])
        model.run()
        for i in range(bounds[r], bounds[r + 1]):
            start = time.perf_counter()
            model.run()
            alone[i] = time.perf_counter() - start
    return api * 1e6, alone * 1e6


def throughput(model: TFLiteModel, digits: np.ndarray, batch_size: int, seconds: float = 1.0) -> float:
    """Digits per second through `model.predict` in batches, over at least `seconds`."""
    model.predict(digits[:batch_size], batch_size)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.predict(digits, batch_size)
        done += len(digits)
    return done / (time.perf_counter() - start)


def bench(path: str, runtime: str, threads: int, repeats: int = 1000,
          batch_sizes: tuple[int, ...] = BATCH_SIZES, seconds: float = 1.0) -> BenchResult:
    """Benchmark one runtime at one thread count: batch-1 latency, then throughput at each batch
    size (a stateful model runs one digit per invoke whatever the batch size). Inputs are random
    digits: timing, not accuracy."""
    digits = np.random.default_rng(0).random((max(256, *batch_sizes), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    model = TFLiteModel(path, runtime=runtime, threads=threads)
    times, alone = paired_latencies_us(model, digits, repeats)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    invoke_p50 = float(np.median(alone))
    batched = TFLiteModel(path, runtime=runtime, threads=threads)
    rates = tuple((size, throughput(batched, digits[: len(digits) // size * size], size, seconds))
                  for size in batch_sizes)
    best_size, best_rate = max(rates, key=lambda item: item[1])
    return BenchResult(model.runtime.name, model.runtime.version, threads, float(p50), float(p90), float(p99),
                       invoke_p50, best_rate, best_size, repeats, rates)


def default_runtimes() -> list[str]:
    """What edge-bench measures unless told: the device runtimes installed, else whatever is."""
    return installed_device_runtimes() or installed_runtimes()
