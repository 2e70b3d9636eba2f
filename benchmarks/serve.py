"""edge-serve under load, on loopback, beside the same work done in-process.

    python -m benchmarks.serve [--model model.tflite] [--requests N] [--out DIR]      (make bench-serve)

A server process (`edge-serve --port 0`) answers 1, 4, 16 and 64 concurrent clients posting
held-out photo-like JPEGs to /classify, each level bounded in requests and in time; the clients
are one asyncio process of keep-alive HTTP/1.1 connections, light enough to leave the server the
cores. Per level: requests/s, p50 and p99 latency, errors, wrong answers. Each level runs ROUNDS
times, every round right after in-process `DigitClassifier.classify` on the same images (one
thread, the fastest way in one process here) for as long, so that a shared machine's drift
reaches both sides of a ratio alike: the table gives medians. The server's memory (RSS) is read
before and after REQUESTS_FOR_MEMORY requests. Beside it, once: in-process with one thread per
core, and 16 threads sharing one classifier with one interpreter (calls take turns) and with two
(a pool). Every answer is checked against the in-process answer for the same image.

Writes serve.json, serve.md and docs/benchmarks.md's "serve" section (benchmarks.report).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lstm_edge.edge.machine import describe as describe_machine

from .child import ROOT
from .forms import paper_photo
from .report import RESULTS, publish

CLIENTS = (1, 4, 16, 64)
IMAGES = 300
ROUNDS = 3
REQUESTS = 2000  # per round at most ...
SECONDS = 6.0  # ... and at most this long
REQUESTS_FOR_MEMORY = 10_000
SERVE = ("-c", "import sys; from lstm_edge.edge.cli import serve_main; serve_main(sys.argv[1:])")


def photos(count: int = IMAGES) -> tuple[list[bytes], list[int]]:
    from lstm_edge.train.data import load_dataset

    data = load_dataset("mnist-sample")
    rng = np.random.default_rng(0)
    images = []
    for digit in data.x_test[:count]:
        buffer = io.BytesIO()
        paper_photo(digit, scale=int(rng.integers(3, 9)), rng=rng).save(buffer, "JPEG", quality=85)
        images.append(buffer.getvalue())
    return images, [int(label) for label in data.y_test[:count]]


class Served:
    """edge-serve in a process of its own, on a free port."""

    def __init__(self, model: str):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, *SERVE, "--model", model, "--port", "0"],
                                        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        line = self.process.stderr.readline()
        found = re.match(r"edge-serve: http://([\d.]+):(\d+)/", line)
        if not found:
            raise RuntimeError(f"edge-serve did not start: {line}{self.process.stderr.read()[-500:]}")
        self.host, self.port = found.group(1), int(found.group(2))

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return kb / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def _client(host: str, port: int, bodies: list[bytes], order, latencies: list[float], answers: dict,
                  errors: list[str], deadline: float) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for index in order:
            if time.perf_counter() > deadline:
                return
            body = bodies[index]
            start = time.perf_counter()
            writer.write(b"POST /classify HTTP/1.1\r\nHost: bench\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
            reply = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode())
            else:
                answers.setdefault(index, set()).add(json.loads(reply)["digit"])
    finally:
        writer.close()


def load(host: str, port: int, bodies: list[bytes], clients: int, requests: int, seconds: float) -> dict:
    """`clients` keep-alive connections posting `requests` images in all, round robin, within `seconds`."""
    latencies, answers, errors = [], {}, []
    orders = [[(c + clients * k) % len(bodies) for k in range(requests // clients)] for c in range(clients)]

    async def run():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(host, port, bodies, order, latencies, answers, errors, deadline)
                               for order in orders))

    start = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - start
    return {"clients": clients, "requests": len(latencies), "seconds": elapsed,
            "requests_per_second": len(latencies) / elapsed, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * float(np.percentile(latencies, 99)), "errors": len(errors), "answers": answers}


def in_process(classifier, bodies: list[bytes], threads: int, seconds: float) -> float:
    """Images per second classified in this process: `threads` threads sharing `classifier`."""
    done, deadline = [0] * threads, time.perf_counter() + seconds

    def work(k: int) -> None:
        index = k
        while time.perf_counter() < deadline:
            classifier.classify(bodies[index % len(bodies)])
            done[k] += 1
            index += threads

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return sum(done) / (time.perf_counter() - start)


def measure(model: str, requests: int, seconds: float, rounds: int = ROUNDS, log=print) -> dict:
    from lstm_edge.edge import DigitClassifier

    bodies, labels = photos()
    classifier = DigitClassifier(model)
    expected = [p.digit for p in classifier.classify_many(bodies)]
    cores = os.cpu_count() or 1
    log("  in-process classify, threads and interpreters ...")
    threads = {n: in_process(classifier, bodies, n, seconds) for n in sorted({1, cores})}
    shared = {n: in_process(DigitClassifier(model, interpreters=n), bodies, 16, seconds) for n in (1, 2)}
    log("  edge-serve ...")
    served = Served(model)
    try:
        load(served.host, served.port, bodies, 4, 200, seconds)  # warm: imports, first allocations
        levels = []
        for clients in CLIENTS:
            rounds_run, wrong = [], 0
            for _ in range(rounds):
                alone = in_process(classifier, bodies, 1, seconds)
                level = load(served.host, served.port, bodies, clients, requests, seconds)
                answers = level.pop("answers")
                wrong += sum(got != {expected[i]} for i, got in answers.items())
                rounds_run.append({**level, "in_process": alone, "ratio": level["requests_per_second"] / alone})
            log(f"    {clients} clients: " + ", ".join(f"{r['requests_per_second']:.0f}/{r['in_process']:.0f}"
                                                     for r in rounds_run))
            levels.append({"clients": clients, "rounds": rounds_run, "wrong_answers": wrong,
                           "errors": sum(r["errors"] for r in rounds_run),
                           **{key: statistics.median(r[key] for r in rounds_run)
                              for key in ("requests_per_second", "in_process", "ratio", "p50_ms", "p99_ms")}})
        before = served.rss_mb()
        level = load(served.host, served.port, bodies, 16, REQUESTS_FOR_MEMORY, 600.0)
        memory = {"requests": level["requests"], "before_mb": before, "after_mb": served.rss_mb()}
    finally:
        served.stop()
    return {"machine": describe_machine(), "images": len(bodies), "image_sizes": "84-224 px photo-like JPEGs",
            "labels_right": int(sum(e == y for e, y in zip(expected, labels))),
            "threads": {str(n): v for n, v in threads.items()},
            "shared_interpreters": {str(n): v for n, v in shared.items()}, "levels": levels, "memory": memory,
            "rounds": rounds, "requests_per_round": requests, "seconds_per_round": seconds}


def render(r: dict) -> str:
    m = r["machine"]
    threads = ", ".join(f"{v:,.0f} images/s with {n} thread{'s' * (n != '1')}" for n, v in r["threads"].items())
    shared = ", ".join(f"{v:,.0f} with {n} interpreter{'s' * (n != '1')}"
                       for n, v in r["shared_interpreters"].items())
    lines = [f"Measured by `make bench-serve` on {m['cpu']} ({m['cores']} cores, {m['machine']}, Python "
             f"{m['python']}), loopback: {r['images']} held-out {r['image_sizes']} posted to /classify by "
             f"keep-alive clients; each level {r['rounds']} rounds of at most {r['requests_per_round']:,} requests "
             f"or {r['seconds_per_round']:g} s, each round right after in-process `classify` (one thread) for as "
             f"long; medians. In-process on these images and cores: {threads}; one classifier shared by 16 "
             f"threads: {shared}.", "",
             "| clients | requests/s | in-process beside it | ratio | p50 | p99 | errors | wrong answers |",
             "|---|---|---|---|---|---|---|---|"]
    for level in r["levels"]:
        lines.append(f"| {level['clients']} | {level['requests_per_second']:,.0f} | {level['in_process']:,.0f} | "
                     f"**{100 * level['ratio']:.0f}%** | {level['p50_ms']:.1f} ms | {level['p99_ms']:.1f} ms | "
                     f"{level['errors']} | {level['wrong_answers']} |")
    memory = r["memory"]
    lines += ["", f"The server's memory over {memory['requests']:,} requests (16 clients): RSS "
                  f"{memory['before_mb']:.1f} MB before, {memory['after_mb']:.1f} MB after "
                  f"(**{memory['after_mb'] - memory['before_mb']:+.1f} MB**).",
              "", "![the page](serve-page.png)"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model.tflite", help="an exported model (default: make demo's)")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="requests per round, at most")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="seconds per round, at most")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds per concurrency level")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not Path(args.model).is_file():
        parser.error(f"--model {args.model}: no such file (make demo exports one)")
    results = measure(args.model, args.requests, args.seconds, args.rounds,
                      log=lambda message: print(message, flush=True))
    table = render(results)
    publish(args.out, "serve", results, table)
    print(table)


if __name__ == "__main__":
    main()
