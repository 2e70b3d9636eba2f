"""`edge-serve`: the classifier as a small web service, for a Raspberry Pi reached from a phone, a
laptop or another program. Starlette on uvicorn; no TensorFlow.

    POST /classify   an image (the body, image/*, or the multipart field "image") -> one digit
    POST /number     the same -> the number in one line of digits
    GET  /health     {"ok": true, ...} once the golden digits gave their exported answers here
    GET  /metrics    Prometheus text: requests, stage latencies, images refused
    GET  /openapi.json, GET /   the API described; a page to draw on or to send a photo from
    GET  /camera/latest, /camera/stream, /camera/events   with --camera: the newest reading, the
                     live view as MJPEG with the digits boxed, each new reading as a server-sent event

The answers are the JSON objects `edge-classify --json` (and `--number --json`) print; an image the
command line would fail gets 400 and its one line. The app is built by `create_app`, which tests
hand to a client; `cli.serve_main` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .camera import CameraReader, annotated_jpeg
from .classifier import DigitClassifier
from .errors import EdgeError, ImageError
from .preprocess import FoundDigits, read_digits
from .segment import MAX_DIGITS

MAX_BYTES = 10 * 1024 * 1024  # an upload over this is refused from its header, before it is read
READ_TIMEOUT_S = 30.0  # a client that stops sending its body meanwhile gets 408; the others go on
STATIC = os.path.join(os.path.dirname(__file__), "static")
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class Refused(Exception):
    """A request the service answers with an error status and one line."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Health:
    """Whether the model gives its exported answers here (the golden digits' self-test at start-up)."""

    ok: bool
    detail: str
    model: str
    runtime: str
    version: str = field(default_factory=lambda: _version())

    def to_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail, "model": self.model, "runtime": self.runtime,
                "version": self.version}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lstm-edge")
    except PackageNotFoundError:
        return "unknown (a checkout)"


def self_test(classifier: DigitClassifier, model_path: str) -> Health:
    """edge-doctor's checks of the model's files and its golden digits, run on this classifier."""
    from .doctor import golden_check, golden_digits, model_checks

    runtime = classifier.runtime
    checks, manifest, sidecar = model_checks(model_path)
    failed = next((c for c in checks if c.status == "fail"), None)
    if failed is not None:
        return Health(False, f"{failed.name}: {failed.detail}", model_path, runtime)
    outputs = classifier.probabilities(golden_digits(sidecar))
    check = golden_check(sidecar, manifest, classifier.model.runtime.name, classifier.model.io_contract(), outputs)
    return Health(check.status == "ok", f"self-test: {check.detail}", model_path, runtime)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one app, one registry)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("lstm_edge_requests", "Requests answered, by route and status.",
                                ["route", "status"], registry=self.registry)
        self.preprocess = Histogram("lstm_edge_preprocess_seconds", "Reading an image into the model's inputs.",
                                    buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inference = Histogram("lstm_edge_inference_seconds", "The model's inference, per request.",
                                   buckets=LATENCY_BUCKETS, registry=self.registry)
        self.refused = Counter("lstm_edge_images_refused", "Requests refused, by reason.", ["reason"],
                               registry=self.registry)


def create_app(classifier: DigitClassifier, model_path: str, token: Optional[str] = None,
               max_bytes: int = MAX_BYTES, explain: Callable[[EdgeError], str] = str,
               read_timeout: float = READ_TIMEOUT_S, camera: Optional[CameraReader] = None) -> Starlette:
    """The service, ready to run or to hand to a test client.

    Args:
      classifier: shared by every request (it is safe to share between threads).
      model_path: the model file, for /health's self-test and report.
      token: when given, every route but the page and /health needs `Authorization: Bearer TOKEN`.
      max_bytes: the largest image body accepted.
      explain: an expected failure as one line (the command line's wording: cli.describe).
      read_timeout: seconds a request's body may take to arrive.
      camera: a camera reader to start with the app and stop with it, for the /camera routes.
    """
    metrics = Metrics()
    state = {"health": Health(False, "starting: the self-test has not run yet", model_path, classifier.runtime)}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["health"] = await run_in_threadpool(self_test, classifier, model_path)
        if camera is not None:
            camera.start()
        yield
        if camera is not None:
            await run_in_threadpool(camera.stop)

    def answered(route: str, response: Response) -> Response:
        metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    def refused(route: str, error: Refused) -> Response:
        metrics.refused.labels(error.reason).inc()
        return answered(route, JSONResponse({"error": str(error)}, status_code=error.status))

    def authorise(request: Request) -> None:
        sent = request.headers.get("authorization", "").encode()
        if token is not None and not hmac.compare_digest(sent, f"Bearer {token}".encode()):
            raise Refused(401, "unauthorized", "send the service's token: Authorization: Bearer TOKEN")

    async def image_of(request: Request) -> tuple[bytes, str]:
        """The uploaded image's bytes and name, refusing what is too large, not an image, or stalled."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            raise Refused(413, "too_large", f"the body is {length} bytes; the limit is {max_bytes:,}")
        kind = request.headers.get("content-type", "")
        try:
            if kind.startswith("multipart/form-data"):
                form = await asyncio.wait_for(request.form(max_files=1, max_fields=4, max_part_size=max_bytes),
                                              read_timeout)
                upload = form.get("image")
                if upload is None or isinstance(upload, str):
                    raise Refused(400, "bad_request", "the multipart form has no file field \"image\"")
                return await upload.read(), upload.filename or "image"
            body = await asyncio.wait_for(_body(request, max_bytes), read_timeout)
        except asyncio.TimeoutError:
            raise Refused(408, "stalled", f"the body did not arrive within {read_timeout:g} s") from None
        if not body:
            raise Refused(400, "bad_image", "empty input: zero bytes")
        return body, "-"

    def top_k_of(request: Request) -> int:
        value = request.query_params.get("top_k", "1")
        if not value.isdigit() or not 1 <= int(value) <= 10:
            raise Refused(400, "bad_request", f"top_k must be a whole number from 1 to 10 (got {value!r})")
        return int(value)

    def min_confidence_of(request: Request) -> float:
        value = request.query_params.get("min_confidence", "0")
        try:
            minimum = float(value)
        except ValueError:
            minimum = -1.0
        if not 0.0 <= minimum <= 1.0:
            raise Refused(400, "bad_request", f"min_confidence must be a number from 0 to 1 (got {value!r})")
        return minimum

    def work(data: bytes, name: str, number: bool, top_k: int, minimum: float) -> tuple[dict, FoundDigits]:
        """The answer's body: the image read, then the model run, on the event loop itself.

        Reading an image is a millisecond or two of Python and numpy under one interpreter lock:
        handed to worker threads, the requests waited on each other and on the hand-offs. Measured
        with 16 clients on two cores (AMD EPYC family 26 model 2, `make bench-serve`'s 16-client
        level): 22-27% of in-process classify's rate with Starlette's thread pool, 76-77% here.
        Uploads are still awaited without blocking anyone: a stalled client holds up no one."""
        start = time.perf_counter()
        try:
            found = read_digits(data, MAX_DIGITS)
            digit = None if number else found.single()
            read = time.perf_counter()
            metrics.preprocess.observe(read - start)
            answer = classifier.reading(found) if number else classifier.classify_many([digit], preprocess=False)[0]
            metrics.inference.observe(time.perf_counter() - read)
            answer.assured(minimum)
        except ImageError as e:
            raise Refused(400, _reason(e), explain(e)) from None
        return {"path": name, **(answer.to_dict() if number else answer.to_dict(top_k))}, found

    async def answer(request: Request, route: str, number: bool) -> Response:
        try:
            authorise(request)
            top_k, minimum = top_k_of(request), min_confidence_of(request)
            data, name = await image_of(request)
            body, found = work(data, name, number, top_k, minimum)
        except Refused as e:
            return refused(route, e)
        body["runtime"] = classifier.runtime
        if request.query_params.get("inputs") in ("1", "true"):  # what the model saw, for the page
            body["inputs"] = [[[round(float(v), 3) for v in row] for row in digit] for digit in found.inputs]
        return answered(route, JSONResponse(body))

    async def classify(request: Request) -> Response:
        return await answer(request, "/classify", number=False)

    async def number(request: Request) -> Response:
        return await answer(request, "/number", number=True)

    async def health(request: Request) -> Response:
        report = state["health"].to_dict()
        if camera is not None:
            report["camera"] = camera.status()
            if report["ok"] and not camera.ok:
                report["ok"], report["detail"] = False, f"camera: {camera.status()['detail']}"
        return answered("/health", JSONResponse(report, status_code=200 if report["ok"] else 503))

    def watched(request: Request) -> CameraReader:
        """The camera, for a request allowed to watch it: the token may come as ?token=, since a
        page's <img> and EventSource cannot send headers."""
        sent = request.query_params.get("token")
        if token is None or sent is None or not hmac.compare_digest(sent.encode(), token.encode()):
            authorise(request)
        if camera is None:
            raise Refused(404, "no_camera", "no camera: start edge-serve with --camera SOURCE")
        return camera

    async def camera_latest(request: Request) -> Response:
        try:
            reader = watched(request)
            reading = reader.latest()
            if not reader.ok:
                raise Refused(503, "camera", f"camera: {reader.status()['detail']}")
            if reading is None:
                raise Refused(503, "camera", "camera: no frame read yet")
        except Refused as e:
            return refused("/camera/latest", e)
        return answered("/camera/latest", JSONResponse({**reading.to_dict(), "camera": reader.status()}))

    async def live(request: Request, route: str, wait: str, part: Callable, media_type: str,
                   idle: bytes = b"") -> Response:
        """A stream of parts, one per new frame or reading (`wait`: the reader's method that waits
        for one), with `idle` sent when none came for a second."""
        try:
            reader = watched(request)
        except Refused as e:
            return refused(route, e)

        async def parts():
            last = None
            while True:
                newer = await run_in_threadpool(getattr(reader, wait), last, 1.0)
                if newer is None or newer is last:
                    if idle:
                        yield idle
                    continue
                last = newer
                yield await run_in_threadpool(part, reader, newer)

        metrics.requests.labels(route, "200").inc()
        return StreamingResponse(parts(), media_type=media_type, headers={"Cache-Control": "no-store"})

    async def camera_stream(request: Request) -> Response:
        return await live(request, "/camera/stream", "wait_frame", _mjpeg_part,
                          "multipart/x-mixed-replace; boundary=frame")

    async def camera_events(request: Request) -> Response:
        return await live(request, "/camera/events", "wait_reading", _event, "text/event-stream",
                          idle=b": waiting\n\n")  # a comment: the connection is seen alive

    async def metrics_route(request: Request) -> Response:
        try:
            authorise(request)
        except Refused as e:
            return refused("/metrics", e)
        return answered("/metrics", Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST))

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def page(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC, "index.html"), media_type="text/html")

    routes = [Route("/classify", classify, methods=["POST"]), Route("/number", number, methods=["POST"]),
              Route("/health", health), Route("/metrics", metrics_route), Route("/openapi.json", openapi),
              Route("/", page), Route("/camera/latest", camera_latest), Route("/camera/stream", camera_stream),
              Route("/camera/events", camera_events)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics, app.state.service = metrics, state
    return app


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose connections send small writes at once.

    Connections accepted from it inherit TCP_NODELAY: asyncio sets it only on sockets made with the
    TCP protocol number, which create_server's are not, and without it every answer on a kept-alive
    connection waited ~40 ms for the client's delayed ACK (Nagle's algorithm).

    Raises:
      OSError: the address cannot be had.
    """
    listener = socket.create_server((host, port))
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


async def _body(request: Request, max_bytes: int) -> bytes:
    """The body, refused as soon as it grows past max_bytes (a chunked upload names no length)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise Refused(413, "too_large", f"the body is over the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _mjpeg_part(reader: CameraReader, frame) -> bytes:
    """One part of the live view: the frame with its reading drawn in."""
    jpeg = annotated_jpeg(frame, reader.latest())
    return b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg \
        + b"\r\n"


def _event(reader: CameraReader, reading) -> bytes:
    """One server-sent event: the reading, as /camera/latest answers it."""
    return f"data: {json.dumps({**reading.to_dict(), 'camera': reader.status()})}\n\n".encode()


def _reason(error: EdgeError) -> str:
    """A refused image's reason for the metrics: its error's kind, in snake case."""
    name = type(error).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_") or "image"


_IMAGE_BODY = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}},
                           "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
                               "image": {"type": "string", "format": "binary"}}}}}, "required": True}
_ERROR = {"description": "Refused, with one line saying why",
          "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
_REFUSALS = {"400": _ERROR, "401": _ERROR, "408": _ERROR, "413": _ERROR}
_TOP_K = {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}}
_MIN_CONFIDENCE = {"name": "min_confidence", "in": "query",
                   "description": "an answer less sure than this (with /number: its least sure digit) gets 400",
                   "schema": {"type": "number", "minimum": 0, "maximum": 1, "default": 0}}
_INPUTS = {"name": "inputs", "in": "query", "description": "1: add each digit's 28x28 model input",
           "schema": {"type": "integer", "enum": [0, 1], "default": 0}}


def _answer(description: str, fields: dict[str, str]) -> dict:
    """An answer's OpenAPI response: the fields always there, and the path and runtime the CLI adds."""
    properties = {name: {"type": kind} for name, kind in {"path": "string", **fields, "runtime": "string"}.items()}
    return {"description": description, "content": {"application/json": {
        "schema": {"type": "object", "required": list(fields), "properties": properties}}}}


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "lstm-edge", "version": "1",
             "description": "Handwritten digits read by an LSTM exported to TFLite, on the device."},
    "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
    "security": [{}, {"token": []}],
    "paths": {
        "/classify": {"post": {
            "summary": "One handwritten digit in an image", "requestBody": _IMAGE_BODY,
            "parameters": [_TOP_K, _MIN_CONFIDENCE, _INPUTS],
            "responses": {"200": _answer("The digit, as edge-classify --json prints it",
                                         {"digit": "integer", "confidence": "number", "top_k": "array"}),
                          **_REFUSALS}}},
        "/number": {"post": {
            "summary": "The number in one line of handwritten digits", "requestBody": _IMAGE_BODY,
            "parameters": [_MIN_CONFIDENCE, _INPUTS],
            "responses": {"200": _answer("The number, as edge-classify --number --json prints it",
                                         {"number": "string", "confidence": "number", "digits": "array"}),
                          **_REFUSALS}}},
        "/health": {"get": {"summary": "Whether the model gives its exported answers here", "security": [{}],
                            "responses": {"200": {"description": "The self-test passed"},
                                          "503": {"description": "It failed, or has not run yet: the detail says"}}}},
        "/camera/latest": {"get": {"summary": "With --camera: the newest frame's reading, its frame and latency",
                                   "responses": {"200": {"description": "The reading"}, "401": _ERROR,
                                                 "404": _ERROR, "503": _ERROR}}},
        "/camera/stream": {"get": {"summary": "With --camera: the live view, each digit boxed",
                                   "responses": {"200": {"description": "multipart/x-mixed-replace JPEGs"}}}},
        "/camera/events": {"get": {"summary": "With --camera: each new reading as a server-sent event",
                                   "responses": {"200": {"description": "text/event-stream"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Prometheus text"},
                                                                              "401": _ERROR}}},
    },
}
