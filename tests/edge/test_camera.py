"""The live camera: frames read continuously, the newest only; `edge-serve --camera` and
`edge-classify --camera` on a replayed folder of 640x480 frames, a video file through OpenCV, and a
source that fails mid-stream and comes back."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from lstm_edge.edge.camera import CameraError, CameraReader, FrameSource, OpenCVSource, open_source
from tests.conftest import EDGE_CLASSIFY, child_env
from tests.edge.conftest import FRAMES
from tests.edge.test_serve import Server

pytest.importorskip("starlette")

WAIT_S = 60  # a guard against a hung reader, not a speed bar (that is the benchmark's)


def until(condition, what: str):
    """condition()'s first true value, polled; a failure saying what never came."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


@pytest.fixture(scope="module")
def watching(int8_model, frames):
    server = Server("--model", str(int8_model), "--camera", str(frames), "--fps", "30", "--number")
    yield server
    server.stop()


def test_the_newest_reading_follows_the_replay_with_read_numbers_answers(watching, truth):
    seen = {}
    deadline = time.monotonic() + WAIT_S
    while len(seen) < FRAMES and time.monotonic() < deadline:
        status, reading = watching.request("GET", "/camera/latest")
        if status == 200:
            seen[reading["frame"]["name"]] = reading
        time.sleep(0.01)
    assert len(seen) == FRAMES, sorted(seen)  # every frame of the loop was read at some point
    for name, reading in seen.items():
        answer = {k: reading[k] for k in ("number", "confidence", "digits")}
        assert answer == truth[name], name
        assert reading["latency_ms"] > 0 and reading["camera"]["ok"]
    status, health = watching.request("GET", "/health")
    assert status == 200 and health["camera"]["ok"] and health["camera"]["frames"] >= FRAMES
    camera = health["camera"]
    assert camera["frames"] - camera["read"] - camera["dropped"] in (0, 1, 2)  # none queued: at most one waiting
    # (and one being read, whose count is not in yet)


def test_the_live_view_is_valid_mjpeg_with_the_frames_size(watching):
    import http.client

    connection = http.client.HTTPConnection(watching.host, watching.port, timeout=WAIT_S)
    connection.request("GET", "/camera/stream")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("content-type") == "multipart/x-mixed-replace; boundary=frame"
    for _ in range(3):  # three parts, each a whole JPEG of the frame's size
        assert response.readline() == b"--frame\r\n"
        headers = {}
        while (line := response.readline()) != b"\r\n":
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        jpeg = response.read(int(headers["content-length"]))
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
        assert Image.open(io.BytesIO(jpeg)).size == (640, 480)
        assert response.read(2) == b"\r\n"
    connection.close()


def test_each_new_reading_is_a_server_sent_event(watching, truth):
    import http.client

    connection = http.client.HTTPConnection(watching.host, watching.port, timeout=WAIT_S)
    connection.request("GET", "/camera/events")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("content-type").startswith("text/event-stream")
    events = []
    while len(events) < 3:
        line = response.readline()
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
    connection.close()
    indices = [e["frame"]["index"] for e in events]
    assert indices == sorted(set(indices))  # newer each time, never the same reading twice
    assert all({k: e[k] for k in ("number", "confidence", "digits")} == truth[e["frame"]["name"]] for e in events)


class _Ticking(FrameSource):
    """Frames as fast as every `interval` seconds, numbered in their pixels."""

    def __init__(self, interval: float):
        self.interval, self.count = interval, 0

    def read(self):
        time.sleep(self.interval)
        self.count += 1
        return np.full((4, 4), self.count % 256, np.uint8), f"{self.count}"


def test_a_reader_slower_than_its_source_drops_frames_never_queues_them():
    read = []

    def slow(pixels):
        read.append(int(pixels[0, 0]))
        time.sleep(0.05)  # five frames' time
        return {"digit": 0, "confidence": 1.0}

    reader = CameraReader(lambda: _Ticking(0.01), slow).start()
    try:
        until(lambda: len(read) >= 10, "ten readings")
    finally:
        reader.stop()
    status = reader.status()
    assert status["dropped"] > status["read"]  # most frames were never read ...
    assert status["frames"] - status["read"] - status["dropped"] <= 1  # ... and none waits but the newest
    assert all(b - a > 1 for a, b in zip(read[1:], read[2:]))  # each reading took the newest, skipping


class _Unplugged(_Ticking):
    """A few frames, then unplugged."""

    def __init__(self, frames: int):
        super().__init__(0.01)
        self.frames = frames

    def read(self):
        if self.count >= self.frames:
            raise CameraError("unplugged")
        return super().read()


def test_a_failing_source_is_one_line_and_retried_until_it_is_back():
    lines, opened = [], []

    def source():
        opened.append(time.monotonic())
        if len(opened) < 3:
            raise CameraError("busy")  # absent at first
        return _Unplugged(3 if len(opened) == 3 else 0)  # frames, then none at all

    reader = CameraReader(source, lambda pixels: {"digit": 0, "confidence": 1.0}, report=lines.append).start()
    try:
        until(lambda: len(opened) >= 6, "six openings")
    finally:
        reader.stop()
    # One line each: absent (though twice), frames, unplugged (though every retry failed again).
    assert lines == ["camera: error: busy; retrying", "camera: frames from camera",
                     "camera: error: unplugged; retrying"]
    waits = np.diff(opened)
    assert waits[1] > waits[0] and waits[4] > waits[3]  # backing off, before frames came and after


def test_unplugged_and_plugged_back_one_line_each_uploads_answered_throughout(int8_model, frames, tmp_path):
    folder = tmp_path / "camera"
    os.symlink(frames, folder)
    server = Server("--model", str(int8_model), "--camera", str(folder), "--fps", "30", "--number")
    try:
        until(lambda: server.request("GET", "/health")[0] == 200, "frames at first")
        os.unlink(folder)  # unplugged
        health = until(lambda: (lambda s, b: b if s == 503 else None)(*server.request("GET", "/health")), "a 503")
        assert health["detail"].startswith("camera: ")
        assert server.request("GET", "/camera/latest")[0] == 503
        upload = (frames / "000.jpg").read_bytes()
        assert server.post("/number", upload)[0] == 200  # uploads go on
        os.symlink(frames, folder)  # plugged back
        until(lambda: server.request("GET", "/health")[0] == 200, "frames again")
        assert server.post("/number", upload)[0] == 200
    finally:
        server.stop()
    camera = [line.rstrip("\n") for line in server.lines if line.startswith("edge-serve: camera: ")]
    assert len(camera) == 3, camera  # frames, the failure, frames again
    assert camera[1].startswith("edge-serve: camera: error: ") and camera[1].endswith("; retrying")
    assert camera[0] == camera[2] == f"edge-serve: camera: frames from replay of {folder}"


def test_a_video_file_through_opencv(frames, int8_model, truth, tmp_path):
    cv2 = pytest.importorskip("cv2")
    video = tmp_path / "meter.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    originals = []
    for path in sorted(frames.iterdir())[:3]:
        with Image.open(path) as image:
            originals.append(np.asarray(image.convert("RGB")))
        writer.write(cv2.cvtColor(originals[-1], cv2.COLOR_RGB2BGR))
    writer.release()
    source = open_source(str(video), fps=30)
    assert isinstance(source, OpenCVSource)
    decoded = [source.read()[0] for _ in originals]
    with pytest.raises(CameraError, match="the end of the video"):
        source.read()
    source.close()
    for original, frame in zip(originals, decoded):
        assert frame.shape == original.shape and np.abs(frame.astype(int) - original).mean() < 8  # RGB, not BGR
    with pytest.raises(CameraError, match="no such camera"):
        open_source(str(tmp_path / "absent.avi"), fps=30)


def test_edge_classify_camera_prints_changed_readings_and_ends_on_ctrl_c(int8_model, frames, truth):
    process = subprocess.Popen([sys.executable, *EDGE_CLASSIFY, "--camera", str(frames), "--fps", "30", "--number",
                                "--json", "--model", str(int8_model)], env=child_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rows = []
    reader = threading.Thread(target=lambda: rows.extend(json.loads(line) for line in process.stdout), daemon=True)
    reader.start()
    try:
        until(lambda: len(rows) >= FRAMES + 2, "a loop of readings")
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0 and "Traceback" not in stderr
    assert stderr.strip().splitlines() == [f"edge-classify: camera: frames from replay of {frames}"]
    for previous, row in zip(rows, rows[1:]):
        assert row["number"] != previous["number"]  # a line per changed reading only
    for row in rows:
        assert {k: row[k] for k in ("number", "confidence", "digits")} == truth[row["frame"]["name"]]


def test_camera_routes_without_a_camera_and_bad_flags(int8_model):
    plain = Server("--model", str(int8_model))
    try:
        status, answer = plain.request("GET", "/camera/latest")
        assert status == 404 and "--camera" in answer["error"]
    finally:
        plain.stop()
    done = subprocess.run([sys.executable, *EDGE_CLASSIFY, "--camera", "0", "x.png"], env=child_env(),
                          capture_output=True, text=True)
    assert done.returncode == 2 and "or --camera SOURCE" in done.stderr


class _Stepped(FrameSource):
    """A frame each time the test allows one."""

    def __init__(self, allowed: threading.Semaphore):
        self.allowed = allowed

    def read(self):
        while not self.allowed.acquire(timeout=0.1):
            pass
        return np.zeros((4, 4), np.uint8), ""


def test_a_reading_is_stable_once_the_same_answer_came_on_three_frames_in_a_row():
    answers = iter(["12", "12", "17", "17", "17"])
    allowed = threading.Semaphore(0)
    reader = CameraReader(lambda: _Stepped(allowed), lambda pixels: {"number": next(answers, "17")}).start()
    seen = []
    try:
        for _ in range(5):
            allowed.release()  # one frame, then wait for its reading
            seen.append(until(lambda: (lambda r: r if r is not None and (not seen or r is not seen[-1]) else None)(
                reader.latest()), "the frame's reading"))
    finally:
        allowed.release(10)  # frames enough for the capture thread to see it is stopped
        reader.stop()
    assert [(r.answer["number"], r.same_readings, r.to_dict()["stable"]) for r in seen] == [
        ("12", 1, False), ("12", 2, False), ("17", 1, False), ("17", 2, False), ("17", 3, True)]
