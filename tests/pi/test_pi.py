"""The edge package on an emulated Raspberry Pi (Debian 12 arm64, Python 3.11, Cortex-A72 under
qemu-user, no TensorFlow), with each interpreter a Pi user installs: its answers must be x86's.
This proves the software runs the same there, not how fast a Pi is.

`tests/pi/emulator.py` sets the Pi up without root. When no package index can be reached the
tests skip with the reason; with LSTM_EDGE_REQUIRE_PI=1 (CI) they fail instead."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.bars import device_failures
from tests.conftest import EDGE_CLASSIFY, run_cli
from tests.edge.test_preprocess import paper_photo
from tests.pi.emulator import EmulatorUnavailable, setup

DIGITS = 40  # per form; each emulated run classifies them all in one process
SITES = ["tflite-runtime", "litert"]


@pytest.fixture(scope="module")
def pi():
    """site -> the emulated Pi with that interpreter installed (built once, then cached)."""
    emulators = {}

    def get(site: str):
        if site not in emulators:
            try:
                emulators[site] = setup(site)
            except EmulatorUnavailable as e:
                if os.environ.get("LSTM_EDGE_REQUIRE_PI"):
                    pytest.fail(f"the emulated Pi is required here but cannot be set up: {e}")
                pytest.skip(str(e))
        return emulators[site]

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


def answers(stdout: str, runtime: str) -> dict[str, tuple[int, float, float]]:
    """name -> (digit, confidence, runner-up probability), each row checked to come from `runtime`."""
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert all(r["runtime"].startswith(runtime + " ") for r in rows), {r["runtime"] for r in rows}
    return {os.path.basename(r["path"]): (r["digit"], r["confidence"], r["top_k"][1]["probability"]) for r in rows}


def test_no_tensorflow_on_the_pi(pi):
    out = run_on_pi(pi("tflite-runtime"), "-c", "import importlib.util, platform, sys, numpy, tflite_runtime; "
                    "print(platform.machine(), sys.version_info[:2], numpy.__version__, tflite_runtime.__version__, "
                    "importlib.util.find_spec('tensorflow'))")
    machine, rest = out.split(" ", 1)
    assert machine == "aarch64" and "(3, 11)" in rest and rest.strip().endswith("None")
    assert " 1." in rest  # numpy < 2 for tflite-runtime


def test_the_guest_sees_a_pi_cpu(pi):
    """qemu 10 emulates /proc/cpuinfo: the guest sees the Cortex-A72 (part 0xd08), not the host's
    x86 CPU, which is what LiteRT's CPU detection needs."""
    out = run_on_pi(pi("litert"), "-c", "print(open('/proc/cpuinfo').read())")
    assert "0xd08" in out and "asimd" in out and "GenuineIntel" not in out and "AuthenticAMD" not in out


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("mode", ["none", "int8"])
def test_pi_answers_equal_x86(pi, exports, pi_images, mode, site):
    model, _ = exports(mode)
    args = (str(pi_images), "--model", str(model), "--json", "--top-k", "2", "--runtime", site)
    x86 = answers(run_cli(*EDGE_CLASSIFY, *args).stdout, site)
    arm = answers(run_on_pi(pi(site), "-m", "edge.cli", *args), site)
    assert len(arm) == 2 * DIGITS
    assert not device_failures(x86, arm, quantized=mode != "none")
