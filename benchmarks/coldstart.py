"""`edge-classify digit.png` from process start to answer, in the environments users run it in.

- The environment the benchmark runs in (a checkout's `.venv`: TensorFlow beside the edge, numpy < 2
  for tflite-runtime), on every installed edge runtime.
- An edge-only install made as docs/raspberry-pi.md installs the Pi (`python3 -m venv`, then `pip install`
  the wheel, which pulls LiteRT, numpy, Pillow and click from the package index): with the Python
  this benchmark runs on, and with the system's `/usr/bin/python3` when that is another interpreter
  (Raspberry Pi OS runs Debian's python3).

Each command is timed beside its floor, the same interpreter importing numpy, Pillow's PNG plugin and
the runtime's interpreter module and nothing else (then ending as edge-classify ends, with os._exit),
which no code of ours can remove; and beside `python -c pass`, the interpreter's own start. All
commands alternate round by round, so the shared machine's drift hits them alike; "ours" is the
median of each round's command minus its floor.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .child import ROOT, failure
from .errors import BenchError

SYSTEM_PYTHON = "/usr/bin/python3"
BENCHMARK_VENV, EDGE_ONLY = "benchmark's venv", "edge-only install"
_RUNTIME_MODULES = {"litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}
_PROBE = ("import importlib.util, json, platform, numpy; print(json.dumps({'python': platform.python_version(), "
          "'numpy': numpy.__version__, 'tensorflow': importlib.util.find_spec('tensorflow') is not None, "
          "'litert': importlib.util.find_spec('ai_edge_litert') is not None}))")


@dataclass(frozen=True)
class Environment:
    """A Python environment with lstm-edge installed: its interpreter and what it holds."""

    kind: str  # BENCHMARK_VENV or EDGE_ONLY
    base: str  # the interpreter it was made from
    python: Path  # its own interpreter
    facts: dict  # python, numpy, tensorflow, litert (from _PROBE)

    @property
    def label(self) -> str:
        extra = ", TensorFlow installed" if self.facts["tensorflow"] else ""
        return f"{self.kind}: {self.base} (Python {self.facts['python']}), numpy {self.facts['numpy']}{extra}"


def measure(model: Path, digit: Path, runtimes: list[str], work: Path, repeats: int,
            log: Callable[[str], None] = print, bases: Optional[list[str]] = None) -> dict:
    """Cold starts of `edge-classify digit --model model` in every environment, with their floors.

    Args:
      runtimes: the runtimes timed in the benchmark's venv (edge-only installs have LiteRT).
      bases: the interpreters that get an edge-only install; default this venv's base interpreter,
        and SYSTEM_PYTHON when it is another one.

    Returns:
      {"rows": one per environment x runtime, "skipped": edge-only installs that could not be made, and why}.
    Raises:
      BenchError: a command fails in an environment that was made.
    """
    this = _environment(BENCHMARK_VENV, getattr(sys, "_base_executable", sys.executable), Path(sys.executable))
    if bases is None:
        bases = [this.base]
        if os.path.exists(SYSTEM_PYTHON) and os.path.realpath(SYSTEM_PYTHON) != os.path.realpath(this.base):
            bases.append(SYSTEM_PYTHON)
    installs, skipped = edge_installs(bases, work, log)
    timed = [(environment, runtime) for environment in [this, *installs]
             for runtime in (runtimes if environment is this else ["litert"])]
    times = _in_turn([_commands(environment, runtime, model, digit) for environment, runtime in timed], repeats)
    rows = []
    for (environment, runtime), t in zip(timed, times):
        rows.append({"environment": environment.label, "kind": environment.kind, "base": environment.base,
                     **environment.facts, "runtime": runtime, "repeats": repeats,
                     "median_s": statistics.median(t["full"]), "min_s": min(t["full"]), "max_s": max(t["full"]),
                     "floor_median_s": statistics.median(t["floor"]),
                     "python_median_s": statistics.median(t["python"]),
                     "ours_median_s": statistics.median(a - b for a, b in zip(t["full"], t["floor"]))})
    return {"rows": rows, "skipped": skipped}


def edge_installs(bases: list[str], work: Path, log: Callable[[str], None]) -> tuple[list[Environment], list[dict]]:
    """An edge-only install on each base interpreter; those that cannot be made, with the reason."""
    if not bases:
        return [], []
    try:
        wheel = build_wheel(work)
    except BenchError as e:
        return [], [{"python": base, "reason": str(e)} for base in bases]
    made, skipped = [], []
    for i, base in enumerate(bases):
        log(f"  an edge-only install on {base} ...")
        try:
            made.append(edge_install(base, wheel, work / f"edge-venv-{i}"))
        except BenchError as e:
            skipped.append({"python": base, "reason": str(e)})
    return made, skipped


def _commands(environment: Environment, runtime: str, model: Path, digit: Path) -> dict[str, list[str]]:
    python, script = str(environment.python), environment.python.with_name("edge-classify")
    command = [str(script)] if script.exists() else [python, "-m", "lstm_edge.edge.cli"]  # a checkout not installed
    return {
        "full": [*command, str(digit), "--model", str(model), "--runtime", runtime],
        # Ends with os._exit as edge-classify does: a normal shutdown with numpy loaded costs ~50 ms more.
        "floor": [python, "-c", f"import os, numpy, PIL.Image, PIL.PngImagePlugin, {_RUNTIME_MODULES[runtime]}; "
                                "os._exit(0)"],
        "python": [python, "-c", "pass"],
    }


def _in_turn(command_sets: list[dict[str, list[str]]], repeats: int) -> list[dict[str, list[float]]]:
    """Wall times of every command, `repeats` rounds of all of them in turn, after one untimed run
    each (which writes any missing bytecode caches, as an install would)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for commands in command_sets:
        for command in commands.values():
            _run(command, env)
    times = [{name: [] for name in commands} for commands in command_sets]
    for _ in range(repeats):
        for commands, mine in zip(command_sets, times):
            for name, command in commands.items():
                start = time.perf_counter()
                _run(command, env)
                mine[name].append(time.perf_counter() - start)
    return times


def wheel_sources() -> list[str]:
    """What a wheel is built from: pyproject.toml, the README it names, and the folders it maps into lstm_edge."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = project["tool"]["setuptools"]["package-dir"].values()
    return ["pyproject.toml", project["project"]["readme"], *dict.fromkeys(folders)]


def build_wheel(work: Path) -> Path:
    """This checkout as a wheel, built from a copy so the checkout gets no build folder."""
    if not (ROOT / "pyproject.toml").is_file():
        raise BenchError(f"{ROOT} is not a checkout: an edge-only install needs this checkout's wheel")
    source = work / "wheel-source"
    for name in wheel_sources():
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    _pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(source))
    wheels = sorted((work / "dist").glob("lstm_edge-*.whl"))
    if not wheels:
        raise BenchError("pip wheel made no lstm_edge wheel")
    return wheels[-1]


def edge_install(base: str, wheel: Path, venv: Path) -> Environment:
    """A fresh virtual environment from `base` with the wheel and its dependencies alone."""
    try:
        done = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
    except OSError as e:
        raise BenchError(f"{base} -m venv failed: {e.strerror or e}") from None
    if done.returncode != 0:
        raise BenchError(f"{base} -m venv failed: {failure(done)}")
    python = venv / "bin" / "python"
    _pip(str(python), "install", str(wheel))
    environment = _environment(EDGE_ONLY, base, python)
    if not environment.facts["litert"]:
        raise BenchError(f"LiteRT did not install on {base} (Python {environment.facts['python']})")
    return environment


def _environment(kind: str, base: str, python: Path) -> Environment:
    done = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"{python}: cannot import numpy: {failure(done)}")
    return Environment(kind, base, python, json.loads(done.stdout))


def _pip(python: str, *args: str) -> None:
    done = subprocess.run([python, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"pip {args[0]} failed on {python}: {failure(done)}")


def _run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` failed: {failure(done)}")
