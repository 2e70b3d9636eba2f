"""The edge's command lines, thin over the library: `edge-classify`, `edge-doctor`, `edge-bench`.

`edge-classify IMAGE...` classifies digit images with an exported model. With --number, each image
is one line of digits read as a whole number ("meter.jpg: 4721 (lowest confidence 91.2%)");
without it, an image in which several digits are found is a failed image, not a guess. Exit
status: 0 when every image was classified, 1 when some failed (each is reported on stderr and the
rest go on), 2 for usage errors and a model that cannot be used.

argparse, not click: edge-classify starts 50 ms sooner, and a Pi feels that.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from typing import Iterator

from .errors import EdgeError, ImageError, SeveralDigitsError, TooManyDigitsError, UnsureError
from .interpreters import RUNTIMES
from .manifest import DEFAULT_MODEL, MODEL_ENV, model_path
from .preprocess import IMAGE_EXTENSIONS, render_ascii
from .segment import MAX_DIGITS

USAGE_ERROR = 2
MODEL_HELP = f"the .tflite model [default: ${MODEL_ENV}, then ./{DEFAULT_MODEL}]"
CAMERA_HELP = ("read a camera continuously: picamera (picamera2), a device number or a video file (OpenCV), or a "
               "folder of images replayed at --fps")


def describe(error: EdgeError) -> str:
    """An expected failure as the command lines (and the service) say it: the library's sentence,
    and what to type instead where a flag is the way out."""
    if isinstance(error, SeveralDigitsError):
        return f"{error}; read them as one number with --number"
    if isinstance(error, TooManyDigitsError):
        return f"{error} (--max-digits {error.limit})"
    if isinstance(error, UnsureError):
        return f"{error} (--min-confidence {error.minimum:g})"
    return str(error)


def expand_inputs(inputs: tuple[str, ...]) -> Iterator[tuple[str, object]]:
    """(name, source) for every image named: files as they are, folders' images in name order,
    "-" the bytes on standard input. A folder without images yields its name with an ImageError."""
    for item in inputs:
        if item == "-":
            yield "-", sys.stdin.buffer.read()
        elif os.path.isdir(item):
            images = sorted(entry.path for entry in os.scandir(item)
                            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS)
            if not images:
                yield item, ImageError(f"folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            for path in images:
                yield path, path
        else:
            yield item, item


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="edge-classify",
        description="Classify handwritten digits in IMAGE files, folders of images, or - (standard input).",
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--top-k", type=int, choices=range(1, 11), default=1, metavar="K",
                        help="show the K likeliest digits (1-10, default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line per image")
    parser.add_argument("--runtime", choices=("auto", *RUNTIMES),
                        default="auto", help="the TFLite interpreter to use (default: auto, the first installed "
                        "of litert, tflite-runtime, tensorflow; tflite-micro, what a microcontroller's TFLM "
                        "answers, only when named)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="prepare images in N processes side by side (default 1; the cores: os.cpu_count())")
    parser.add_argument("--show", action="store_true", help="print the 28x28 input the model saw, as text art")
    parser.add_argument("--number", action="store_true",
                        help="read the whole number in each image (one line of digits), left to right")
    parser.add_argument("--max-digits", type=int, default=MAX_DIGITS, metavar="N",
                        help=f"with --number: more digits than this is an error (default {MAX_DIGITS})")
    parser.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                        help="an answer less sure than P (0-1; with --number, its least sure digit) is a failed "
                             "image, not an answer (default 0: every answer)")
    parser.add_argument("--camera", metavar="SOURCE", help=CAMERA_HELP + "; one line per changed reading, "
                        "until Ctrl-C")
    parser.add_argument("--fps", type=float, default=30.0, help="with --camera and a folder: frames per second "
                        "(default 30)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="report the time of loading, of each image's stages (decode, ink, segment, layout) "
                             "and of inference (stderr)")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.max_digits < 1:
        parser.error("--max-digits must be at least 1")
    if not 0.0 <= args.min_confidence <= 1.0:
        parser.error("--min-confidence must be from 0 to 1")
    if bool(args.images) == bool(args.camera):
        parser.error("give IMAGE files (or folders, or -), or --camera SOURCE")
    if not args.fps > 0:
        parser.error("--fps must be above 0")
    return args


def classify_main(argv=None) -> None:
    """The `edge-classify` console script: `classify`, then a fast exit.

    Once the answers are out there is nothing to clean up (no file open for writing), and the
    interpreter's normal shutdown with NumPy and an interpreter loaded cost ~50 ms of a ~350 ms
    cold start here; so the streams are flushed and the process ends with os._exit. Call `classify`
    to use the command from Python without ending the process.
    """
    code = classify(argv)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.stderr.flush()
    os._exit(code)


def classify(argv=None) -> int:
    """edge-classify's work; returns the exit status."""
    start = time.perf_counter()
    args = parse_args(argv)
    from .classifier import DigitClassifier

    path = model_path(args.model)
    try:
        classifier = DigitClassifier(path, runtime=args.runtime, threads=args.threads)
        reader = classifier.lines if args.number else None  # a broken reader: one line now, not mid-way
    except EdgeError as e:
        print(f"edge-classify: error: {describe(e)}", file=sys.stderr)
        return USAGE_ERROR
    loaded = time.perf_counter()
    if args.verbose:
        beside = f" and the line reader {classifier.lines_path}" if reader is not None else ""
        print(f"loaded {path}{beside} on {classifier.runtime} in {1000 * (loaded - start):.1f} ms", file=sys.stderr)
    if args.camera:
        return _watch(args, classifier)

    names, found, failures = [], [], 0
    for name, digits, error in _prepared(args):
        if error is not None:
            print(f"{name}: error: {error}", file=sys.stderr)
            failures += 1
            continue
        names.append(name)
        found.append(digits)
        if args.verbose:
            print(f"{name}: " + ", ".join(f"{stage} {1000 * seconds:.2f} ms" for stage, seconds in digits.seconds),
                  file=sys.stderr)
    prepared = time.perf_counter()
    if args.number:
        answers = [_read(classifier, digits, args.max_digits) for digits in found]
    else:  # every image's digit in one batched inference
        answers = classifier.classify_many([digits.single() for digits in found], preprocess=False)
    inferred = time.perf_counter()
    try:
        for name, digits, answer in zip(names, found, answers):
            try:
                if isinstance(answer, ImageError):
                    raise answer
                answer.assured(args.min_confidence)
            except ImageError as e:  # unsure, or the line reader counted too many digits
                print(f"{name}: error: {describe(e)}", file=sys.stderr)
                failures += 1
                continue
            _print_answer(name, digits, answer, args, classifier.runtime)
        sys.stdout.flush()
    except BrokenPipeError:  # `edge-classify photos/ | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.verbose and found:
        n = len(found)
        print(f"{n} images: preparing {1000 * (prepared - loaded) / n:.2f} ms/image on {args.jobs} "
              f"job{'s' * (args.jobs > 1)}, inference {1000 * (inferred - prepared) / n:.3f} ms/image, "
              f"total {1000 * (time.perf_counter() - start):.1f} ms", file=sys.stderr)
    return 1 if failures else 0


def _read(classifier, digits, max_digits: int):
    """One image's number, or the error that refuses it (the other images go on)."""
    try:
        return classifier.reading(digits, max_digits)
    except ImageError as e:
        return e


def _watch(args: argparse.Namespace, classifier) -> int:
    """edge-classify --camera: one line per changed reading (a JSON object with --json) until Ctrl-C."""
    from .camera import reader_for, same_answer

    def report(line: str) -> None:
        print(f"edge-classify: {line}", file=sys.stderr, flush=True)

    reader = reader_for(classifier, args.camera, args.fps, args.number, report, describe).start()
    shown = reading = None
    try:
        while True:
            reading = reader.wait_reading(reading, 1.0)
            if reading is None or (shown is not None and same_answer(shown.answer, reading.answer)):
                continue
            shown, answer = reading, reading.answer
            frame = reading.frame.name or f"frame {reading.frame.index}"
            if args.json:
                print(json.dumps({**reading.to_dict(), "runtime": classifier.runtime}), flush=True)
            elif "error" in answer:
                print(f"{frame}: ({answer['error']})", flush=True)
            elif args.number:
                print(f"{frame}: {answer['number']} (lowest confidence {100 * answer['confidence']:.1f}%)", flush=True)
            else:
                print(f"{frame}: {answer['digit']} ({100 * answer['confidence']:.1f}%)", flush=True)
    except KeyboardInterrupt:  # the way to end it: no traceback, status 0
        return 0
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        reader.stop()


def _prepared(args: argparse.Namespace):
    """(name, FoundDigits or None, error line or None) for every image named, in order; with
    --jobs above 1, prepared by that many processes side by side (preparing an image is Python
    and numpy work that one process does one image at a time)."""
    items = list(expand_inputs(args.images))
    work = functools.partial(_prepare, number=args.number, max_digits=args.max_digits if args.number else MAX_DIGITS)
    if args.jobs > 1 and len(items) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(min(args.jobs, len(items)), mp_context=context) as pool:
            results = list(pool.map(work, [source for _, source in items], chunksize=8))
    else:
        results = map(work, (source for _, source in items))
    for (name, _), (digits, error) in zip(items, results):
        yield name, digits, error


def _prepare(source, number: bool, max_digits: int):
    """One image's digits (one digit without --number), or the line that says why there are none
    (a picklable result)."""
    from .preprocess import read_digits

    try:
        if isinstance(source, ImageError):
            raise source
        found = read_digits(source, max_digits)
        if not number:
            found.single()
        return found, None
    except ImageError as e:
        return None, describe(e)


def _print_answer(name: str, digits, answer, args: argparse.Namespace, runtime: str) -> None:
    if args.number:
        if args.json:
            print(json.dumps({"path": name, **answer.to_dict(), "runtime": runtime}))
        else:
            print(f"{name}: {answer.text} (lowest confidence {100 * answer.lowest_confidence:.1f}%)")
        if args.show:
            for prediction, digit in zip(answer.digits, answer.inputs):
                print(f"{prediction.digit} ({100 * prediction.confidence:.1f}%)\n{render_ascii(digit)}")
        return
    if args.json:
        print(json.dumps({"path": name, **answer.to_dict(args.top_k), "runtime": runtime}))
    else:
        line = f"{name}: {answer.digit} ({100 * answer.confidence:.1f}%)"
        if args.top_k > 1:
            line += "  then " + ", ".join(f"{d} ({100 * p:.1f}%)" for d, p in answer.top_k(args.top_k)[1:])
        print(line)
    if args.show:
        print(render_ascii(digits.inputs[0]))


class _VersionAction(argparse.Action):
    """--version, looked up only when asked for: importlib.metadata alone costs 50 ms of start-up."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"{parser.prog} {version('lstm-edge')}")
        except PackageNotFoundError:  # running from a checkout
            print(f"{parser.prog} (not installed)")
        parser.exit()


def doctor_main(argv=None) -> None:
    """`edge-doctor [--model PATH] [--runtime R] [--json]`: exit status 0 when every check holds,
    1 when one fails, 2 for usage errors."""
    from .doctor import diagnose

    parser = argparse.ArgumentParser(prog="edge-doctor", description="Proof on this device that the model gives "
                                     "the answers its export verified.")
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--runtime", choices=("auto", *RUNTIMES), default="auto",
                        help="the interpreter to check (default: auto, the one edge-classify picks)")
    parser.add_argument("--json", action="store_true", help="one JSON object: ok, checks, figures")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    args = parser.parse_args(argv)
    report = diagnose(model_path(args.model), args.runtime)
    try:
        print(json.dumps(report.to_dict()) if args.json else report.text(), flush=True)
    except BrokenPipeError:  # `edge-doctor | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0 if report.ok else 1)


def bench_main(argv=None) -> None:
    """`edge-bench MODEL`: latency and throughput per runtime and thread count (`bench`)."""
    import platform
    from dataclasses import asdict

    from .bench import BATCH_SIZES, bench, default_runtimes

    parser = argparse.ArgumentParser(prog="edge-bench", description="How fast a model runs here: batch-1 latency "
                                     "percentiles, the invoke alone, and batched throughput.")
    parser.add_argument("model")
    parser.add_argument("--runtime", dest="runtimes", action="append", choices=RUNTIMES,
                        help="runtime to measure (repeatable) [default: every installed edge runtime]")
    parser.add_argument("--threads", dest="thread_counts", action="append", type=int,
                        help="thread count (repeatable) [default: 1 and every core]")
    parser.add_argument("--repeats", type=int, default=1000, help="batch-1 invokes timed (default 1000)")
    parser.add_argument("--batch-size", dest="batch_sizes", action="append", type=int,
                        help="digits per batched invoke (repeatable) [default: "
                             f"{', '.join(map(str, BATCH_SIZES))}; the best is reported]")
    parser.add_argument("--json", action="store_true", help="one JSON object with every result")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    args = parser.parse_args(argv)
    batch_sizes = tuple(args.batch_sizes or BATCH_SIZES)
    if args.repeats < 10 or min(batch_sizes) < 1 or any(t < 1 for t in args.thread_counts or []):
        parser.error("--repeats must be at least 10, --batch-size and --threads at least 1")
    runtimes = args.runtimes or default_runtimes()
    thread_counts = args.thread_counts or sorted({1, os.cpu_count() or 1})
    try:
        results = [bench(args.model, r, t, args.repeats, batch_sizes) for r in runtimes for t in thread_counts]
    except EdgeError as e:
        print(f"edge-bench: error: {describe(e)}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.json:
        print(json.dumps({"model": args.model, "machine": machine, "results": [asdict(r) for r in results]}))
        return
    print(f"{args.model} on {machine}; batch-1 latency over {args.repeats} invokes, "
          f"throughput at the best of batch sizes {', '.join(map(str, batch_sizes))}")
    print(f"{'runtime':<24}{'threads':>8}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}{'invoke us':>11}"
          f"{'digits/s':>12}{'batch':>7}")
    for r in results:
        print(f"{r.runtime + ' ' + r.version:<24}{r.threads:>8}{r.p50_us:>10.1f}{r.p90_us:>10.1f}"
              f"{r.p99_us:>10.1f}{r.invoke_p50_us:>11.1f}{r.digits_per_second:>12,.0f}{r.batch_size:>7}")


TOKEN_ENV = "LSTM_EDGE_TOKEN"


def serve_main(argv=None) -> None:
    """`edge-serve`: the classifier as a web service (`serve`); 2 for usage errors and a model that
    cannot be used."""
    parser = argparse.ArgumentParser(prog="edge-serve", description="Serve the digit classifier over HTTP: "
                                     "POST /classify and /number, GET /health, /metrics, /openapi.json, and a "
                                     "page to draw on at /.")
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--runtime", choices=("auto", *RUNTIMES), default="auto", help="the TFLite interpreter")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free one)")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                        help=f"require `Authorization: Bearer TOKEN` on the API (default: ${TOKEN_ENV}, which "
                             "keeps it out of the process list; else none)")
    parser.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024, metavar="N",
                        help="refuse image bodies over N bytes (default 10 MB)")
    parser.add_argument("--read-timeout", type=float, default=30.0, metavar="S",
                        help="seconds an upload may take to arrive before it is refused (default 30)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads")
    parser.add_argument("--camera", metavar="SOURCE", help=CAMERA_HELP + "; GET /camera/latest, /camera/stream, "
                        "/camera/events")
    parser.add_argument("--fps", type=float, default=30.0, help="with --camera and a folder: frames per second "
                        "(default 30)")
    parser.add_argument("--number", action="store_true", help="with --camera: read the number in view (one line "
                        "of digits), not one digit")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    args = parser.parse_args(argv)
    if not args.fps > 0:
        parser.error("--fps must be above 0")
    if args.max_bytes < 1 or not 0 <= args.port <= 65535 or not args.read_timeout > 0:
        parser.error("--max-bytes must be at least 1, --port from 0 to 65535, --read-timeout above 0")
    try:
        import uvicorn

        from .serve import create_app, listen
    except ImportError as e:
        print(f"edge-serve: error: {e.name or e} is not installed: pip install 'lstm-edge[serve]'", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    from .classifier import DigitClassifier

    path = model_path(args.model)
    try:
        classifier = DigitClassifier(path, runtime=args.runtime, threads=args.threads)
        classifier.lines  # noqa: B018 (the line reader, loaded now: a broken one is one line at start)
    except EdgeError as e:
        print(f"edge-serve: error: {describe(e)}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    try:
        listener = listen(args.host, args.port)
    except OSError as e:
        print(f"edge-serve: error: cannot listen on {args.host}:{args.port} ({e.strerror or e})", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    host, port = listener.getsockname()[:2]
    if args.token is None and host not in ("127.0.0.1", "::1", "localhost"):
        print(f"edge-serve: warning: listening on {host} without --token: anyone on the network can use it",
              file=sys.stderr)
    camera = None
    if args.camera:
        from .camera import reader_for

        camera = reader_for(classifier, args.camera, args.fps, args.number, explain=describe,
                            report=lambda line: print(f"edge-serve: {line}", file=sys.stderr, flush=True))
    app = create_app(classifier, path, token=args.token, max_bytes=args.max_bytes, explain=describe,
                     read_timeout=args.read_timeout, camera=camera)
    print(f"edge-serve: http://{host}:{port}/ ({path} on {classifier.runtime})", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listener])


if __name__ == "__main__":
    classify_main()
