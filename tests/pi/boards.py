"""The Raspberry Pis the README tells users how to install on, one row each: the board, the OS
image, the commands, and the interpreter it gets. The emulated matrix (`test_pi.py`) runs exactly
these commands, and the README shows exactly these commands (a test holds the two together)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tests.pi.emulator import BOOKWORM_ARM64, BOOKWORM_ARMHF, TRIXIE_ARM64, Guest


@dataclass(frozen=True)
class Row:
    name: str
    boards: str
    image: str  # the Raspberry Pi OS image
    guest: Guest
    runtime: str  # the interpreter edge-classify must report
    cpus: tuple[str, ...]  # QEMU_CPU: the boards' cores
    install: tuple[str, ...]  # the user's commands, as the README prints them

    @property
    def pip_commands(self) -> list[tuple[str, ...]]:
        """The arguments of each `pip install` in `install`."""
        return [tuple(shlex.split(c)[2:]) for c in self.install if c.startswith("pip install ")]

    @property
    def apt_packages(self) -> tuple[str, ...]:
        return tuple(p for c in self.install if c.startswith("sudo apt install ") for p in shlex.split(c)[4:])


VENV = "python3 -m venv ~/lstm-edge && . ~/lstm-edge/bin/activate"

ROWS = (
    Row("bookworm-64-litert", "Pi 4, Pi 5", "Raspberry Pi OS (64-bit) bookworm, Python 3.11", BOOKWORM_ARM64,
        "litert", ("cortex-a72", "cortex-a76"), (VENV, "pip install lstm_edge-*.whl")),
    Row("bookworm-64-tflite-runtime", "Pi 4, Pi 5", "Raspberry Pi OS (64-bit) bookworm, Python 3.11", BOOKWORM_ARM64,
        "tflite-runtime", ("cortex-a72",),
        (VENV, 'pip install "numpy<2" tflite-runtime==2.14.0 pillow', "pip install --no-deps lstm_edge-*.whl")),
    Row("trixie-64-litert", "Pi 4, Pi 5", "Raspberry Pi OS (64-bit) trixie, Python 3.13", TRIXIE_ARM64,
        "litert", ("cortex-a76",), (VENV, "pip install lstm_edge-*.whl")),
    # qemu-arm offers no Cortex-A53 (the Zero 2 W's and Pi 3's core) in 32-bit mode: the A7 runs the same ARMv7 code.
    Row("bookworm-32-tflite-runtime", "Pi Zero 2 W, Pi 3", "Raspberry Pi OS (32-bit) bookworm, Python 3.11",
        BOOKWORM_ARMHF, "tflite-runtime", ("cortex-a7",),
        ("sudo apt install python3-numpy python3-pil",
         "python3 -m venv --system-site-packages ~/lstm-edge && . ~/lstm-edge/bin/activate",
         "pip install --no-deps tflite-runtime==2.14.0 lstm_edge-*.whl")),
)
