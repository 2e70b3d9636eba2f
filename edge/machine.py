"""The machine the code runs on: the CPU's name and the instruction-set features that decide which
kernels an interpreter can use. edge-doctor reports them, export records them in the manifest, and
the benchmarks name the CPU beside every figure."""

from __future__ import annotations

import os
import platform

# ARM core part numbers (/proc/cpuinfo "CPU part") of the boards people run this on.
ARM_CORES = {"0xc07": "Cortex-A7", "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76", "0xd05": "Cortex-A55"}


def cpu_model() -> str:
    """The CPU's name: x86's model name, an ARM core's name from its part number, or the machine."""
    info = cpuinfo()
    for key in ("model name", "Model"):
        if key in info and not info[key].startswith("ARMv"):
            return info[key]
    if info.get("CPU part") in ARM_CORES:
        return ARM_CORES[info["CPU part"]]
    return info.get("model name") or platform.processor() or platform.machine()


def cpu_features() -> dict[str, bool]:
    """The instruction-set features that decide which kernels an interpreter can use here."""
    info = cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    machine = platform.machine()
    if machine == "aarch64":
        wanted = ("asimd", "asimddp", "atomics")  # NEON; ARMv8.2 dot product (Pi 5, not Pi 4); LSE atomics
    elif machine.startswith("arm"):
        wanted = ("neon", "vfpv4")
    else:
        wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni")
    return {name: name in flags for name in wanted}


def describe() -> dict:
    """The facts a measurement is quoted with: CPU, cores, machine, Python."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version()}


def cpuinfo() -> dict[str, str]:
    """/proc/cpuinfo's first value of each field ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields
