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
    """The CPU's name: x86's model name, an ARM core's name from its part number, or the machine.

    A virtual machine's x86 name can be as bare as "AMD EPYC", which hides the generation that
    decides rounding and kernel speed: such a name gets its family and model (and AMD's core
    generation), e.g. "AMD EPYC family 26 model 2 (Zen 5)"."""
    info = cpuinfo()
    for key in ("model name", "Model"):
        if key in info and not info[key].startswith("ARMv"):
            name = info[key]
            if key == "model name" and not any(c.isdigit() for c in name) and "cpu family" in info:
                name += " " + _x86_generation(info.get("vendor_id", ""), info["cpu family"], info.get("model", "?"))
            return name
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


def _x86_generation(vendor: str, family: str, model: str) -> str:
    """"family F model M", with AMD's Zen generation, "(Zen 5)", where the family and model say it."""
    text = f"family {family} model {model}"
    if vendor != "AuthenticAMD" or not (family.isdigit() and model.isdigit()):
        return text
    family_, model_ = int(family), int(model)
    zen = {23: "Zen 2" if model_ >= 0x30 else "Zen", 26: "Zen 5"}.get(family_)
    if family_ == 25:
        zen = "Zen 4" if 0x10 <= model_ <= 0x1F or 0x60 <= model_ <= 0x7F or 0xA0 <= model_ <= 0xAF else "Zen 3"
    return f"{text} ({zen})" if zen else text


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
