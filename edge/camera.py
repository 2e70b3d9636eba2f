"""A live camera: frames from a source, read continuously, the newest frame only.

Sources, behind one small interface (`FrameSource.read() -> frame`, `close()`):

- `picamera`: the Raspberry Pi camera through picamera2 (Raspberry Pi OS's `python3-picamera2`;
  a venv made with `--system-site-packages` sees it);
- a device number (`0`) or a video file: OpenCV's VideoCapture (`pip install 'lstm-edge[camera]'`);
- a folder of images: replayed in name order at `fps`, over and over (needs nothing: the tests and
  the demo use it).

`CameraReader` runs two threads: one takes frames from the source as fast as it gives them and
keeps only the newest; the other reads the newest frame it has not read yet. A frame that arrives
while a reading is under way replaces the one waiting, so it is dropped, never queued: a reading is
at most one frame old. A source that fails (absent, busy, unplugged) is reported in one line,
retried with back-off, and reported again in one line when it is back.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .errors import EdgeError, ImageError
from .picture import IMAGE_EXTENSIONS

RETRY_FIRST_S = 0.5  # a failed source is opened again after this, doubling ...
RETRY_MAX_S = 5.0  # ... up to this
STABLE_READINGS = 3  # the same answer on this many frames in a row is stable


class CameraError(EdgeError):
    """The camera cannot give frames: absent, busy, unplugged, or a source that is not one."""


@dataclass(frozen=True)
class Frame:
    """One frame: its pixels (H, W) or (H, W, 3) uint8 RGB, when it arrived (time.time()), its
    number since the source opened, and its name where the source has names (a replayed file)."""

    pixels: np.ndarray
    time: float
    index: int
    name: str = ""


class FrameSource:
    """Where frames come from. `read` blocks until the next frame; both raise CameraError."""

    name = "camera"

    def read(self) -> tuple[np.ndarray, str]:
        """The next frame's pixels and name ("" where frames have none)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class ReplaySource(FrameSource):
    """A folder of images replayed in name order at `fps`, over and over. The folder is listed
    again at each pass, so a folder that disappears fails like an unplugged camera."""

    def __init__(self, folder: str, fps: float):
        self.folder, self.interval, self.name = folder, 1.0 / fps, f"replay of {folder}"
        self._files: list[str] = []
        self._next = 0
        self._due = time.monotonic()
        self._list()

    def _list(self) -> None:
        try:
            names = sorted(n for n in os.listdir(self.folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
        except OSError as e:
            raise CameraError(f"{self.folder}: {e.strerror or e}") from None
        if not names:
            raise CameraError(f"{self.folder}: no images to replay ({', '.join(IMAGE_EXTENSIONS)})")
        self._files, self._next = [os.path.join(self.folder, n) for n in names], 0

    def read(self) -> tuple[np.ndarray, str]:
        if self._next >= len(self._files):
            self._list()
        path = self._files[self._next]
        self._next += 1
        pause = self._due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._due = max(self._due + self.interval, time.monotonic() - self.interval)  # no burst after a stall
        try:
            from PIL import Image

            with Image.open(path) as image:
                return np.asarray(image.convert("RGB")), os.path.basename(path)
        except OSError as e:
            raise CameraError(f"{path}: {getattr(e, 'strerror', None) or e}") from None


class OpenCVSource(FrameSource):
    """A USB camera (a device number) or a video file, through OpenCV's VideoCapture."""

    def __init__(self, spec: str):
        try:
            import cv2
        except ImportError:
            raise CameraError("OpenCV is not installed: pip install 'lstm-edge[camera]'") from None
        self._cv2, self.name = cv2, f"OpenCV {spec}"
        self._capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
        if not self._capture.isOpened():
            self._capture.release()
            raise CameraError(f"{spec}: OpenCV cannot open it (absent, busy, or not a video)")

    def read(self) -> tuple[np.ndarray, str]:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            raise CameraError(f"{self.name}: no frame (unplugged, or the end of the video)")
        return self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB), ""

    def close(self) -> None:
        self._capture.release()


class PiCameraSource(FrameSource):
    """The Raspberry Pi camera through picamera2."""

    def __init__(self, size: tuple[int, int] = (640, 480)):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError("picamera2 is not importable: apt install python3-picamera2, and make the venv "
                              "with --system-site-packages") from None
        try:
            self._camera = Picamera2()
            self._camera.configure(self._camera.create_video_configuration({"size": size, "format": "RGB888"}))
            self._camera.start()
        except Exception as e:  # libcamera's errors are of many types; all mean no camera here
            raise CameraError(f"picamera2: {e}") from None
        self.name = "picamera2"

    def read(self) -> tuple[np.ndarray, str]:
        try:
            return self._camera.capture_array(), ""
        except Exception as e:
            raise CameraError(f"picamera2: {e}") from None

    def close(self) -> None:
        try:
            self._camera.close()
        except Exception:
            pass


def open_source(spec: str, fps: float) -> FrameSource:
    """`picamera`, a device number, a video file or a folder of images, as a FrameSource.

    Raises:
      CameraError: it cannot give frames now.
    """
    if spec == "picamera":
        return PiCameraSource()
    if os.path.isdir(spec):
        return ReplaySource(spec, fps)
    if spec.isdigit() or os.path.isfile(spec):
        return OpenCVSource(spec)
    raise CameraError(f"{spec}: no such camera, video file or folder")


@dataclass(frozen=True)
class CameraReading:
    """The reading of one frame.

    Attributes:
      answer: the JSON object edge-classify prints for that frame (or an "error" line).
      frame: the frame read.
      done: when the reading was done (time.time()).
      same_readings: how many readings in a row, this one included, gave the same answer.
    """

    answer: dict
    frame: Frame
    done: float
    same_readings: int

    @property
    def latency_s(self) -> float:
        """From the frame's arrival to its reading."""
        return self.done - self.frame.time

    def to_dict(self) -> dict:
        return {**self.answer, "frame": {"index": self.frame.index, "name": self.frame.name,
                                         "time": round(self.frame.time, 6)},
                "latency_ms": round(1000 * self.latency_s, 3), "stable": self.same_readings >= STABLE_READINGS,
                "same_readings": self.same_readings}


@dataclass
class _Status:
    ok: bool = False
    failed: bool = False  # reported as failing since frames last came
    detail: str = "starting"
    frames: int = 0
    read: int = 0
    dropped: int = 0
    since: float = field(default_factory=time.time)


class CameraReader:
    """Reads the newest frame of a source, continuously, on two threads of its own.

    Args:
      open_source: makes the source (called again after a failure).
      read: one frame's answer, as edge-classify's JSON object; an ImageError is an answer too
        (`{"error": line}`): a frame with no digit in view is a normal frame.
      report: where the one-line reports of a failing and a recovered source go.
    """

    def __init__(self, open_source: Callable[[], FrameSource], read: Callable[[np.ndarray], dict],
                 report: Callable[[str], None] = lambda line: None, explain: Callable[[EdgeError], str] = str):
        self._open, self._read, self._report, self._explain = open_source, read, report, explain
        self._condition = threading.Condition()
        self._waiting: Optional[Frame] = None
        self._latest_frame: Optional[Frame] = None
        self._latest: Optional[CameraReading] = None
        self._status = _Status()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._capture, name="camera-capture", daemon=True),
                         threading.Thread(target=self._reading, name="camera-reader", daemon=True)]

    def start(self) -> CameraReader:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def ok(self) -> bool:
        return self._status.ok

    def status(self) -> dict:
        """Whether frames come, and the counts: frames taken, read, dropped while a reading ran."""
        s = self._status
        return {"ok": s.ok, "detail": s.detail, "frames": s.frames, "read": s.read, "dropped": s.dropped}

    def latest(self) -> Optional[CameraReading]:
        return self._latest

    def latest_frame(self) -> Optional[Frame]:
        return self._latest_frame

    def wait_reading(self, after: Optional[CameraReading], timeout: float) -> Optional[CameraReading]:
        """The first reading newer than `after`, waiting up to timeout seconds for it."""
        with self._condition:
            self._condition.wait_for(lambda: self._latest is not after or self._stop.is_set(), timeout)
            return self._latest

    def wait_frame(self, after: Optional[Frame], timeout: float) -> Optional[Frame]:
        """The first frame newer than `after`, waiting up to timeout seconds for it."""
        with self._condition:
            self._condition.wait_for(lambda: self._latest_frame is not after or self._stop.is_set(), timeout)
            return self._latest_frame

    def _capture(self) -> None:
        retry = RETRY_FIRST_S
        while not self._stop.is_set():
            try:
                source = self._open()
            except CameraError as e:
                self._failed(str(e))
                self._stop.wait(retry)
                retry = min(2 * retry, RETRY_MAX_S)
                continue
            index = 0
            try:
                while not self._stop.is_set():
                    pixels, name = source.read()
                    frame = Frame(pixels, time.time(), index, name)
                    index += 1
                    if not self._status.ok:
                        self._status.ok, self._status.failed = True, False
                        self._status.detail = f"frames from {source.name}"
                        self._report(f"camera: frames from {source.name}")
                        retry = RETRY_FIRST_S
                    with self._condition:
                        self._status.frames += 1
                        if self._waiting is not None:
                            self._status.dropped += 1  # the reader is busy: the older frame goes
                        self._waiting = self._latest_frame = frame
                        self._condition.notify_all()
            except CameraError as e:
                self._failed(str(e))
                self._stop.wait(retry)
                retry = min(2 * retry, RETRY_MAX_S)
            finally:
                source.close()

    def _failed(self, line: str) -> None:
        """One line when frames stop (or never came); /health keeps the latest reason meanwhile."""
        if self._status.ok or not self._status.failed:
            self._report(f"camera: error: {line}; retrying")
        self._status.ok, self._status.failed, self._status.detail = False, True, line

    def _reading(self) -> None:
        previous: Optional[CameraReading] = None
        while not self._stop.is_set():
            with self._condition:
                self._condition.wait_for(lambda: self._waiting is not None or self._stop.is_set())
                frame, self._waiting = self._waiting, None
            if frame is None:
                continue
            try:
                answer = self._read(frame.pixels)
            except ImageError as e:
                answer = {"error": self._explain(e)}
            same = previous.same_readings + 1 if previous is not None and same_answer(previous.answer, answer) else 1
            reading = CameraReading(answer, frame, time.time(), same)
            with self._condition:
                self._latest, self._status.read = reading, self._status.read + 1
                self._condition.notify_all()
            previous = reading


def same_answer(a: dict, b: dict) -> bool:
    """The same answer: the same number, digit or error line."""
    return (a.get("number"), a.get("digit"), a.get("error")) == (b.get("number"), b.get("digit"), b.get("error"))


def reader_for(classifier, spec: str, fps: float, number: bool, report: Callable[[str], None],
               explain: Callable[[EdgeError], str] = str) -> CameraReader:
    """A CameraReader of `spec` (open_source's) reading each frame with a DigitClassifier: the
    number in view with number=True, else the one digit in view."""
    def read(pixels: np.ndarray) -> dict:
        return classifier.read_number(pixels).to_dict() if number else classifier.classify(pixels).to_dict()

    return CameraReader(lambda: open_source(spec, fps), read, report, explain)


def annotated_jpeg(frame: Frame, reading: Optional[CameraReading], quality: int = 80) -> bytes:
    """The frame as a JPEG with the reading drawn in: each digit's box and value."""
    import io

    from PIL import Image, ImageDraw

    image = Image.fromarray(frame.pixels).convert("RGB")
    if reading is not None:
        draw = ImageDraw.Draw(image)
        digits = reading.answer.get("digits", [])
        for digit in digits:
            left, top, right, bottom = digit["box"]
            draw.rectangle((left, top, right, bottom), outline=(255, 64, 0), width=3)
            draw.text((left + 3, max(0, top - 12)), str(digit["digit"]), fill=(255, 64, 0))
        label = reading.answer.get("number", reading.answer.get("digit", reading.answer.get("error", "")))
        draw.text((6, 6), f"{label}  ({1000 * reading.latency_s:.0f} ms)", fill=(255, 64, 0))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
