"""edge-serve for real: a server process on 127.0.0.1 answering as edge-classify does, safe to share
between threads, refusing bad input with a status and one line while it stays up; the thread-safe
DigitClassifier under it."""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import subprocess
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.forms import paper_photo
from benchmarks.numbers import compose, encode
from lstm_edge.edge import DigitClassifier
from tests.conftest import EDGE_CLASSIFY, EDGE_SERVE, child_env, run_cli

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

PHOTOS = 300
CLIENTS = 16
EARLIER = Path(__file__).resolve().parents[1] / "fixtures" / "earlier"


class Server:
    """`edge-serve --port 0` in a process of its own; its address read from its first line."""

    def __init__(self, *args: str, env=None):
        self.process = subprocess.Popen([sys.executable, *EDGE_SERVE, "--port", "0", *args], env=child_env(env),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            found = re.match(r"edge-serve: http://([\d.]+):(\d+)/", line)
            if found:
                self.host, self.port = found.group(1), int(found.group(2))
                break
        else:
            raise AssertionError(f"edge-serve did not start: {self.lines}")
        threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True).start()

    def request(self, method: str, path: str, body: bytes | None = None, headers=None,
                timeout: float = 60) -> tuple[int, dict | str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read().decode()
            kind = response.getheader("content-type", "")
            return response.status, json.loads(data) if kind.startswith("application/json") else data
        finally:
            connection.close()

    def post(self, path: str, data: bytes, kind: str = "image/jpeg", timeout: float = 60,
             **headers) -> tuple[int, dict]:
        return self.request("POST", path, data, {"Content-Type": kind, **headers}, timeout)

    def up(self) -> bool:
        return self.process.poll() is None and self.request("GET", "/health")[0] == 200

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(int8_model):
    served = Server("--model", str(int8_model), "--read-timeout", "3")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def photos(sample, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for i, digit in enumerate(sample.x_test[:PHOTOS]):
        paper_photo(digit, scale=int(rng.integers(3, 9)), rng=rng).save(folder / f"{i:04d}.jpg", quality=85)
    return sorted(folder.iterdir())


def cli_answers(model, files, *extra) -> dict[str, dict]:
    done = run_cli(*EDGE_CLASSIFY, *map(str, files), "--model", str(model), "--json", *extra, check=False)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {Path(row.pop("path")).name: row for row in rows}


def test_the_answers_are_edge_classifys(server, int8_model, photos):
    expected = cli_answers(int8_model, photos[:40], "--top-k", "10")
    for path in photos[:40]:
        status, body = server.post("/classify?top_k=10", path.read_bytes())
        assert status == 200 and body.pop("path") == "-"
        assert body == expected[path.name], path.name


def test_numbers_and_multipart_uploads_are_edge_classifys(server, int8_model, sample, tmp_path):
    rng = np.random.default_rng(4)
    files = []
    for i in range(8):
        index = rng.integers(0, len(sample.x_test), 4)
        files.append(tmp_path / f"n{i}.jpg")
        files[-1].write_bytes(encode(compose(list(sample.x_test[index]), [6, 6, 6], rng), "paper", rng))
    expected = cli_answers(int8_model, files, "--number")
    for path in files:
        boundary = "lstm-edge-boundary"
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        status, body = server.post("/number", form, f"multipart/form-data; boundary={boundary}")
        assert status == 200 and body.pop("path") == path.name
        assert body == expected[path.name]


@pytest.mark.parametrize("interpreters", [1, 2])
def test_one_classifier_shared_by_many_threads_gives_each_its_own_answers(int8_model, photos, interpreters):
    """What a threaded web server does: 16 threads, 300 images, one classifier. Every answer must be
    the one the image gets alone (an interpreter shared unguarded raised, and swapped answers)."""
    classifier = DigitClassifier(int8_model, runtime="litert", interpreters=interpreters)
    alone = [classifier.classify(path).probabilities for path in photos]
    with ThreadPoolExecutor(CLIENTS) as pool:
        together = list(pool.map(lambda path: classifier.classify(path).probabilities, photos * 2))
    assert together == alone * 2


def test_sixteen_clients_get_edge_classifys_answers_none_lost_or_swapped(server, int8_model, photos):
    expected = cli_answers(int8_model, photos)

    def ask(path):
        return path.name, server.post("/classify", path.read_bytes())

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(ask, photos))
    assert len(answers) == PHOTOS
    for name, (status, body) in answers:
        assert status == 200, (name, body)
        assert (body["digit"], body["confidence"]) == (expected[name]["digit"], expected[name]["confidence"]), name


def bomb() -> bytes:
    """A PNG whose header claims 20,000 x 20,000 pixels: refused before it is decoded."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (20_000).to_bytes(4, "big") * 2  # IHDR's width and height ...
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # ... and its checksum
    return bytes(data)


def blank() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (60, 60), 240).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("name, line", [
    ("text", "not an image Pillow can read"),
    ("truncated", "runcated"),
    ("bomb", "the limit is 50 MP"),
    ("empty", "empty input: zero bytes"),
    ("blank", "no digit found"),
])
def test_bad_images_get_400_and_the_command_lines_line(server, int8_model, photos, name, line):
    body = {"text": lambda: b"this is not an image", "empty": lambda: b"", "bomb": bomb, "blank": blank,
            "truncated": lambda: photos[0].read_bytes()[: len(photos[0].read_bytes()) // 2]}[name]()
    done = run_cli(*EDGE_CLASSIFY, "-", "--model", str(int8_model), input=body, check=False)
    status, answer = server.post("/classify", body)
    assert status == 400 and set(answer) == {"error"} and line in answer["error"], answer
    assert done.stderr.decode().strip() == f"-: error: {answer['error']}"  # the command line's own line
    assert server.up()


def test_several_digits_are_a_failed_image_as_in_the_command_line(server, sample, int8_model, tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "four.jpg"
    path.write_bytes(encode(compose(list(sample.x_test[:4]), [8, 8, 8], rng), "paper", rng))
    done = run_cli(*EDGE_CLASSIFY, str(path), "--model", str(int8_model), check=False)
    status, answer = server.post("/classify", path.read_bytes())
    assert status == 400 and done.stderr.strip() == f"{path}: error: {answer['error']}"


def raw_reply(connection: socket.socket) -> str:
    """An HTTP reply read off a raw socket: its head and a body of its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
    while len(body) < length:
        body += connection.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


def test_an_oversized_body_is_refused_from_its_header_before_it_is_read(server):
    with socket.create_connection((server.host, server.port), timeout=30) as s:
        s.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: 50000000\r\n\r\n")  # and not one byte of the 50 MB body
        reply = raw_reply(s)
    assert reply.startswith("HTTP/1.1 413") and "the limit is 10,485,760" in reply
    assert server.up()


def test_a_stalled_upload_holds_up_no_one_else_and_times_out(server, photos):
    with socket.create_connection((server.host, server.port), timeout=30) as stalled:
        stalled.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                        b"Content-Length: 100000\r\n\r\n" + photos[0].read_bytes()[:100])  # then nothing more
        status, _ = server.post("/classify", photos[1].read_bytes(), timeout=2.5)  # answered meanwhile
        assert status == 200
        reply = raw_reply(stalled)  # --read-timeout 3: the stalled one gets its answer
    assert reply.startswith("HTTP/1.1 408") and "did not arrive within 3 s" in reply
    assert server.up()


def test_top_k_out_of_range_is_a_bad_request(server, photos):
    status, answer = server.post("/classify?top_k=11", photos[0].read_bytes())
    assert status == 400 and "top_k" in answer["error"]


def test_an_answer_under_min_confidence_is_refused_as_the_command_line_refuses_it(server, int8_model, photos):
    status, answer = server.post("/classify", photos[0].read_bytes())
    assert status == 200
    sure = answer["confidence"] - 1e-6  # the answer's confidence is rounded to 6 places, maybe up (1.0 on Zen 3)
    assert server.post(f"/classify?min_confidence={sure}", photos[0].read_bytes())[0] == 200  # not under it
    status, refused = server.post("/classify?min_confidence=1", photos[0].read_bytes())
    done = run_cli(*EDGE_CLASSIFY, str(photos[0]), "--model", str(int8_model), "--min-confidence", "1", check=False)
    assert status == 400 and refused["error"].startswith(f"unsure: the digit {answer['digit']} has confidence ")
    assert done.returncode == 1 and done.stderr.strip() == f"{photos[0]}: error: {refused['error']}"
    for bad in ("1.5", "nan", "high"):
        status, refused = server.post(f"/number?min_confidence={bad}", photos[0].read_bytes())
        assert status == 400 and "min_confidence must be a number from 0 to 1" in refused["error"]
    assert re.search(r'lstm_edge_images_refused_total\{reason="unsure"\} [1-9]', server.request("GET", "/metrics")[1])


def test_a_token_is_required_when_given_and_the_open_host_warns_without_one(int8_model, photos):
    for how in (("--token", "s3cret"), ()):  # the flag, or LSTM_EDGE_TOKEN (out of the process list)
        guarded = Server("--model", str(int8_model), *how, env={"LSTM_EDGE_TOKEN": "s3cret"} if not how else None)
        try:
            assert guarded.post("/classify", photos[0].read_bytes())[0] == 401
            assert guarded.post("/classify", photos[0].read_bytes(), Authorization="Bearer wrong")[0] == 401
            assert guarded.post("/classify", photos[0].read_bytes(), Authorization="Bearer s3cret")[0] == 200
            assert guarded.request("GET", "/metrics")[0] == 401 and guarded.up()
        finally:
            guarded.stop()
    open_host = Server("--model", str(int8_model), "--host", "0.0.0.0")
    try:
        assert open_host.lines[0] == ("edge-serve: warning: listening on 0.0.0.0 without --token: anyone on the "
                                      "network can use it")
    finally:
        open_host.stop()


def test_health_is_the_golden_self_test(server, tmp_path):
    status, report = server.request("GET", "/health")
    assert status == 200 and report["ok"] and report["detail"].startswith("self-test: 32/32 digits as exported")
    assert set(report) == {"ok", "detail", "model", "runtime", "version"}
    unproven = Server("--model", str(EARLIER / "model-no-golden" / "model.tflite"))
    try:
        status, report = unproven.request("GET", "/health")
        assert status == 503 and not report["ok"] and report["detail"].startswith("golden: ")
        assert unproven.post("/classify", (EARLIER.parent.parent.parent / "examples" / "digits" / "7.png").read_bytes(),
                             "image/png")[0] == 200  # it still answers; health says what is unproven
    finally:
        unproven.stop()


def test_metrics_count_requests_latencies_and_refusals(server, photos):
    server.post("/classify", photos[2].read_bytes())
    server.post("/classify", b"not an image")
    status, text = server.request("GET", "/metrics")
    assert status == 200
    assert re.search(r'lstm_edge_requests_total\{route="/classify",status="200"\} [1-9]', text)
    assert re.search(r'lstm_edge_images_refused_total\{reason="image"\} [1-9]', text)
    assert re.search(r"lstm_edge_preprocess_seconds_count [1-9]", text)
    assert re.search(r"lstm_edge_inference_seconds_count [1-9]", text)


def test_openapi_describes_the_routes_and_the_page_is_served(server):
    status, schema = server.request("GET", "/openapi.json")
    assert status == 200 and schema["openapi"].startswith("3.")
    assert {"/classify", "/number", "/health", "/metrics"} <= set(schema["paths"])
    status, page = server.request("GET", "/")
    assert status == 200 and '<canvas id="pad"' in page and 'capture="environment"' in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing from a CDN: it works offline


def test_a_model_that_cannot_be_used_is_one_line_and_status_2(tmp_path):
    done = run_cli(*EDGE_SERVE, "--model", str(tmp_path / "missing.tflite"), check=False)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"edge-serve: error: {tmp_path / 'missing.tflite'}: no such model file"]



def test_answers_on_a_kept_alive_connection_are_sent_at_once():
    """Without TCP_NODELAY on its connections, each answer after the first on a kept-alive connection
    waited ~40 ms for the client's delayed ACK: the setting must reach the accepted sockets."""
    from lstm_edge.edge.serve import listen

    listener = listen("127.0.0.1", 0)
    with listener, socket.create_connection(listener.getsockname()[:2]):
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
