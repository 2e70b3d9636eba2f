"""The edge package on emulated Raspberry Pis, one per README row (`tests/pi/boards.py`): each
installed with the row's own commands, with no TensorFlow, under qemu-user with the boards' cores.
Each must give x86's answers with the interpreter the row promises. This proves the software, the
wheels and the instruction set, not how fast a Pi is.

`tests/pi/emulator.py` sets the Pis up without root. When no package index can be reached the
tests skip with the reason; with LSTM_EDGE_REQUIRE_PI=1 (CI) they fail instead."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from benchmarks.forms import paper_photo
from tests.bars import device_failures
from tests.conftest import EDGE_BENCH, EDGE_CLASSIFY, EDGE_DOCTOR, EDGE_SERVE, ROOT, run_cli
from tests.pi.boards import ROWS
from tests.pi.emulator import EmulatorUnavailable, emulator_for, setup

DIGITS = 40  # per form; each emulated run classifies them all in one process
ROW_CPUS = [pytest.param(row, cpu, id=f"{row.name}-{cpu}") for row in ROWS for cpu in row.cpus]
BY_ROW = [pytest.param(row, id=row.name) for row in ROWS]
MACHINE = {"arm64": "aarch64", "armhf": "armv7l"}


@pytest.fixture(scope="session")
def pi(edge_wheel):
    """(row, cpu) -> that emulated Pi (built once, then cached on disk)."""
    emulators = {}

    def get(row, cpu=None):
        key = (row.name, cpu)
        if key not in emulators:
            try:
                emulators[key] = emulator_for(row, edge_wheel, cpu)
            except EmulatorUnavailable as e:
                if os.environ.get("LSTM_EDGE_REQUIRE_PI"):
                    pytest.fail(f"the emulated Pi is required here but cannot be set up: {e}")
                pytest.skip(str(e))
        return emulators[key]

    return get


def run_on_pi(emulator, *args: str) -> str:
    done = emulator.run(*args)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-1000:]}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def pi_images(sample, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pi-digits")
    rng = np.random.default_rng(1)
    for i, digit in enumerate(sample.x_test[5::25][:DIGITS]):
        Image.fromarray(digit).save(folder / f"{i:03d}.png")
        paper_photo(digit, scale=5, rng=rng).save(folder / f"{i:03d}-paper.jpg", quality=90)
    return folder


def answers(stdout: str, runtime: str) -> dict[str, list[float]]:
    """name -> the 10 probabilities (from --top-k 10), each row checked to come from `runtime`."""
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert all(r["runtime"].startswith(runtime + " ") for r in rows), {r["runtime"] for r in rows}
    probabilities = {}
    for r in rows:
        vector = [0.0] * 10
        for entry in r["top_k"]:
            vector[entry["digit"]] = entry["probability"]
        probabilities[os.path.basename(r["path"])] = vector
    return probabilities


PROBE = ("import importlib.util, json, platform, sys, numpy, lstm_edge.edge; "
         "print(json.dumps({'machine': platform.machine(), 'python': '%d.%d' % sys.version_info[:2], "
         "'numpy': numpy.__version__, 'numpy_path': numpy.__file__, 'edge': lstm_edge.edge.__file__, "
         "'tensorflow': importlib.util.find_spec('tensorflow') is not None, "
         "'litert': importlib.util.find_spec('ai_edge_litert') is not None, "
         "'tflite_runtime': importlib.util.find_spec('tflite_runtime') is not None, "
         "'cpuinfo': open('/proc/cpuinfo').read()}))")


@pytest.mark.parametrize("row", BY_ROW)
def test_pi_has_the_rows_python_and_interpreter_and_no_tensorflow(pi, row):
    facts = json.loads(run_on_pi(pi(row), "-c", PROBE))
    assert facts["machine"] == MACHINE[row.guest.arch] and facts["python"] == row.guest.python_version
    assert not facts["tensorflow"]
    assert facts["litert" if row.runtime == "litert" else "tflite_runtime"]
    assert "/lstm-edge-" in facts["edge"]  # the wheel's edge package, not this checkout's
    if row.runtime == "tflite-runtime":
        assert facts["numpy"].startswith("1.")  # tflite-runtime 2.14 needs numpy < 2
    if "python3-numpy" in row.apt_packages:
        assert "/usr/lib/python3/dist-packages/numpy" in facts["numpy_path"]  # Debian's, as on the Pi
    # qemu 10 emulates /proc/cpuinfo: the guest sees an ARM core, never the host's x86 one
    assert "GenuineIntel" not in facts["cpuinfo"] and "AuthenticAMD" not in facts["cpuinfo"]


@pytest.mark.parametrize("mode", ["none", "int8"])
@pytest.mark.parametrize("row, cpu", ROW_CPUS)
def test_pi_answers_equal_x86(pi, exports, pi_images, row, cpu, mode):
    """edge-classify as the user runs it (no --runtime): it must pick the row's interpreter."""
    model, _ = exports(mode)
    args = (str(pi_images), "--model", str(model), "--json", "--top-k", "10")
    x86 = answers(run_cli(*EDGE_CLASSIFY, *args, "--runtime", row.runtime).stdout, row.runtime)
    arm = answers(run_on_pi(pi(row, cpu), *EDGE_CLASSIFY, *args), row.runtime)
    assert len(arm) == 2 * DIGITS
    assert not device_failures(x86, arm, quantized=mode != "none")


@pytest.mark.parametrize("mode", ["none", "int8"])
@pytest.mark.parametrize("row", BY_ROW)
def test_edge_doctor_passes_on_the_pi(pi, exports, row, mode):
    """The user's own check after installing: the golden digits give the exported answers there."""
    report = json.loads(run_on_pi(pi(row), *EDGE_DOCTOR, "--model", str(exports(mode)[0]), "--json"))
    assert report["ok"] and report["runtime"] == row.runtime, report["checks"]
    assert report["environment"]["machine"] == MACHINE[row.guest.arch]


@pytest.mark.parametrize("row", BY_ROW)
def test_edge_bench_runs_on_the_pi(pi, int8_model, row):
    out = run_on_pi(pi(row), *EDGE_BENCH, str(int8_model), "--repeats", "20", "--threads", "1",
                    "--batch-size", "8")
    assert row.runtime in out and "us" in out  # it runs and reports; emulated timings mean nothing


def test_readme_gives_each_rows_commands():
    readme = (ROOT / "README.md").read_text()
    for row in ROWS:
        assert row.image in readme, row.image
        for command in row.install:
            assert command in readme, command


# What `pip install 'lstm-edge[serve]'` adds, as a Pi's user installs it beside the row's own
# commands (docs/raspberry-pi.md): pure Python, so every row, the 32-bit one included, takes it.
SERVE_PACKAGES = ("starlette", "uvicorn", "prometheus-client", "python-multipart")
SERVE_ROWS = [pytest.param(row, id=row.name) for row in ROWS if row.name in ("bookworm-64-litert",
                                                                            "bookworm-32-tflite-runtime")]


@pytest.mark.parametrize("row", SERVE_ROWS)
def test_edge_serve_on_the_pi_answers_with_x86s_digits(edge_wheel, int8_model, pi_images, row):
    import http.client
    import re

    try:
        emulator = setup(row.guest, [*row.pip_commands, SERVE_PACKAGES], edge_wheel, row.cpus[0])
    except EmulatorUnavailable as e:
        if os.environ.get("LSTM_EDGE_REQUIRE_PI"):
            pytest.fail(f"the emulated Pi is required here but cannot be set up: {e}")
        pytest.skip(str(e))
    server = emulator.start(*EDGE_SERVE, "--model", str(int8_model), "--port", "0")
    try:
        first = server.stderr.readline()
        found = re.match(r"edge-serve: http://([\d.]+):(\d+)/", first)
        assert found, f"edge-serve did not start on the Pi: {first}"
        host, port = found.group(1), int(found.group(2))
        images = sorted(pi_images.glob("*-paper.jpg"))[:20]
        arm = {}
        for path in images:
            connection = http.client.HTTPConnection(host, port, timeout=600)
            connection.request("POST", "/classify?top_k=10", body=path.read_bytes(),
                               headers={"Content-Type": "image/jpeg"})
            response = connection.getresponse()
            body = json.loads(response.read())
            connection.close()
            assert response.status == 200, body
            arm[path.name] = body
        connection = http.client.HTTPConnection(host, port, timeout=600)
        connection.request("GET", "/health")
        health = json.loads(connection.getresponse().read())
        assert health["ok"] and health["runtime"].startswith(row.runtime + " "), health
    finally:
        server.terminate()
        server.wait(timeout=60)
    x86 = answers(run_cli(*EDGE_CLASSIFY, *map(str, images), "--model", str(int8_model), "--json", "--top-k", "10",
                          "--runtime", row.runtime).stdout, row.runtime)
    served = answers("\n".join(json.dumps({**body, "path": name}) for name, body in arm.items()), row.runtime)
    assert not device_failures(x86, served, quantized=True)
