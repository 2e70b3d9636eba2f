"""edge-doctor's checks: proof on this device that the model gives the answers its export verified.

It reports the environment (Python, OS, CPU and the features that matter, page size, glibc, numpy,
Pillow, the installed interpreters), checks the model against its manifest and golden digits (the
checks edge-classify makes, `manifest`), runs those digits through the interpreter in a child
process (a runtime that crashes at load is then a failed check, not a lost report), and times a
batch-1 invoke. The command line is `cli.doctor_main`; the service runs the same self-test at start.
"""

from __future__ import annotations

import json
import os
import platform
import signal
from dataclasses import asdict, dataclass
from typing import Any, Optional

from .errors import ModelError
from .interpreters import AUTO_RUNTIMES, DISTRIBUTIONS, installed_runtimes
from .machine import cpu_features, cpu_model
from .manifest import check_golden, check_manifest, manifest_path

CHILD_TIMEOUT_S = 600  # a Pi Zero is slow, emulation slower
TIMED_INVOKES = 300
# int8 kernels round otherwise per CPU and per kernel library, and a one-code difference in the
# state is carried through the remaining steps: measured up to 12 output steps between x86 and ARM
# on one runtime, 22 between two runtimes on one x86. A float32 model differs by summation order.
INT8_TOLERANCE_STEPS = 32
FLOAT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Check:
    """One line of the report: ok, warn (works, but read this) or fail."""

    name: str
    status: str
    detail: str
    advice: str = ""


@dataclass(frozen=True)
class Report:
    model: str
    runtime: str
    checks: tuple[Check, ...]
    figures: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "model": self.model, "runtime": self.runtime,
                "checks": [asdict(c) for c in self.checks], **self.figures}

    def text(self) -> str:
        lines = [f"edge-doctor: {self.model} on {self.runtime}"]
        for c in self.checks:
            lines.append(f"  {c.status:<5} {c.name:<13} {c.detail}" + (f"\n{'':22}-> {c.advice}" if c.advice else ""))
        failed = [c.name for c in self.checks if c.status == "fail"]
        lines.append("all checks passed" if not failed else f"FAILED: {', '.join(failed)}")
        return "\n".join(lines)


def compare_outputs(expected, actual, tolerance: float, names=None) -> list[str]:
    """Where `actual` probabilities stop giving `expected`'s answers.

    A digit may differ only where the expected top two lie within `tolerance` of each other (a near
    tie that rounding decides); elsewhere every probability must lie within `tolerance`.

    Args:
      expected, actual: (N, 10) probabilities.
      names: what to call each digit in the sentences (default: "digit i").
    Returns:
      one sentence per digit that fails; empty when all hold.
    """
    import numpy as np

    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    failures = []
    for i, (e, a) in enumerate(zip(expected, actual)):
        name = names[i] if names is not None else f"digit {i}"
        top, runner_up = np.sort(e)[::-1][:2]
        difference = float(np.max(np.abs(a - e)))
        if int(a.argmax()) != int(e.argmax()):
            if top - runner_up > tolerance:
                failures.append(f"{name}: answers {int(a.argmax())} where {int(e.argmax())} was expected "
                                f"({100 * top:.1f}% against {100 * runner_up:.1f}%)")
        elif difference > tolerance:
            failures.append(f"{name}: a probability differs by {difference:.6f} > {tolerance:.6f}")
    return failures


def _version(distribution: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment(runtime: str) -> tuple[list[Check], dict[str, Any]]:
    """The environment's facts and the checks on them; `runtime` is the one asked for."""
    features = cpu_features()
    facts = {
        "python": platform.python_version(), "os": platform.platform(), "machine": platform.machine(),
        "cpu": cpu_model(), "cpu_features": features, "page_size": os.sysconf("SC_PAGE_SIZE"),
        "libc": " ".join(platform.libc_ver()).strip() or "unknown",
        "numpy": _version("numpy"), "pillow": _version("Pillow") or _version("pillow"),
        "interpreters": {name: _version(DISTRIBUTIONS[name]) or "installed" for name in installed_runtimes()},
    }
    chosen = _chosen(runtime, facts["interpreters"])
    flags = ", ".join(name if present else f"no {name}" for name, present in features.items())
    checks = [
        Check("python", "ok", f"{facts['python']} on {facts['os']}, {facts['libc']}, "
                              f"page size {facts['page_size'] // 1024} KB"),
        Check("cpu", "ok", f"{facts['cpu']} ({flags or facts['machine']})"),
    ]
    if not facts["interpreters"]:
        checks.append(Check("interpreters", "fail", "no TFLite interpreter installed",
                            "pip install ai-edge-litert (64-bit ARM, x86-64), or tflite-runtime with numpy<2"))
    else:
        checks.append(Check("interpreters", "ok", ", ".join(f"{n} {v}" for n, v in facts["interpreters"].items())))
    numpy_2 = facts["numpy"] is not None and int(facts["numpy"].split(".")[0]) >= 2
    versions = f"numpy {facts['numpy']}, Pillow {facts['pillow']}"
    if facts["numpy"] is None or facts["pillow"] is None:
        checks.append(Check("packages", "fail", versions, "pip install numpy pillow"))
    elif numpy_2 and chosen == "tflite-runtime":
        checks.append(Check("packages", "fail", f"{versions}: tflite-runtime 2.14 was built for numpy 1 "
                            "and fails under numpy 2 ('compiled using NumPy 1.x')", "pip install 'numpy<2'"))
    elif numpy_2 and "tflite-runtime" in facts["interpreters"]:
        checks.append(Check("packages", "warn", f"{versions}: tflite-runtime, installed too, needs numpy < 2",
                            "pip install 'numpy<2' to use --runtime tflite-runtime"))
    else:
        checks.append(Check("packages", "ok", versions))
    return checks, facts


def model_checks(path: str) -> tuple[list[Check], Optional[dict], Optional[str]]:
    """The model file, its manifest and its golden digits, checked as edge-classify checks them:
    (checks, manifest, golden sidecar path)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return [Check("model", "fail", f"{path}: {e.strerror}", "give the model with --model PATH")], None, None
    checks = [Check("model", "ok", f"{path}, {len(data) / 1024:.1f} KB")]
    try:
        manifest = check_manifest(path, data)
    except ModelError as e:
        return [*checks, Check("manifest", "fail", str(e))], None, None
    if manifest is None:
        checks.append(Check("manifest", "fail", f"no manifest {os.path.basename(manifest_path(path))} beside the "
                            "model", "copy the export's model.json beside model.tflite: it holds what was verified"))
        return checks, None, None
    converter = manifest.get("converter", {})
    checks.append(Check("manifest", "ok", f"hash matches; {manifest.get('quantization')} model, exported with "
                        f"TensorFlow {converter.get('tensorflow')} on {converter.get('cpu', 'an unnamed CPU')}"))
    try:
        sidecar = check_golden(path, manifest)
    except ModelError as e:
        return [*checks, Check("golden", "fail", str(e))], manifest, None
    golden = manifest["golden"]
    verified = ", ".join(f"{n} {v}" for n, v in golden.get("runtimes", {}).items())
    checks.append(Check("golden", "ok", f"{golden.get('digits')} digits, exported answers of {verified}"))
    return checks, manifest, sidecar


def line_reader_checks(path: str) -> list[Check]:
    """The line reader beside the model, when there is one: its manifest's hash and what its export proved."""
    from .lines import lines_path

    reader = lines_path(path)
    if not os.path.isfile(reader):
        return []
    name = os.path.basename(reader)
    try:
        with open(reader, "rb") as f:
            manifest = check_manifest(reader, f.read())
    except OSError as e:
        return [Check("line reader", "fail", f"{reader}: {e.strerror}")]
    except ModelError as e:
        return [Check("line reader", "fail", str(e))]
    if manifest is None:
        return [Check("line reader", "warn", f"{name}: no manifest {os.path.basename(manifest_path(reader))} beside it",
                      "copy it from the export-lines output, or export the reader again")]
    parity = manifest.get("parity", {})
    verified = ", ".join(f"{c.get('runtime')} {c.get('version')}" for c in parity.get("verified_on", []))
    quantization = {"none": "float32"}.get(manifest.get("quantization"), manifest.get("quantization"))
    return [Check("line reader", "ok", f"{name}, hash matches; {quantization}, read "
                  f"{100 * parity.get('float_accuracy', 0):.1f}% of {parity.get('numbers')} held-out numbers whole; "
                  f"verified on {verified or 'nothing'}")]


def _float_sibling(path: str) -> Optional[str]:
    """A float32 export in the same folder (its manifest says so), to time beside an int8 one."""
    folder = os.path.dirname(os.path.abspath(path))
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.endswith(".tflite") and os.path.abspath(entry.path) != os.path.abspath(path):
            try:
                with open(os.path.splitext(entry.path)[0] + ".json", encoding="utf-8") as f:
                    if json.load(f).get("quantization") == "none":
                        return entry.path
            except (OSError, ValueError, AttributeError):
                continue
    return None


def run_isolated(work, timeout_s: int = CHILD_TIMEOUT_S) -> tuple[Optional[Any], str]:
    """`work()` in a forked child, so that a runtime crashing (SIGSEGV, SIGILL) or hanging costs
    the child, not the report. A fork, not a new interpreter: under qemu-user (the emulated Pi)
    a process cannot exec the guest's python, and a fork also skips a second start-up.

    Returns:
      (work's JSON-able result, "") or (None, why it failed: the signal or the error's last line).
    """
    if not hasattr(os, "fork"):  # not a POSIX system: no isolation to be had
        try:
            return work(), ""
        except Exception as e:  # report, not crash: this is a diagnosis
            return None, str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    import tempfile

    with tempfile.TemporaryFile() as errors:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its stderr (a runtime's own complaints) goes to the report, not the terminal
            os.close(read_end)
            os.dup2(errors.fileno(), 2)
            signal.alarm(timeout_s)
            try:
                payload = {"result": work()}
            except BaseException as e:
                payload = {"error": (str(e).strip().splitlines() or [type(e).__name__])[-1]}
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(payload))
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            return None, f"did not finish in {timeout_s} s" if name == "SIGALRM" else f"crashed ({name})"
        if not data:
            errors.seek(0)
            lines = errors.read().decode(errors="replace").strip().splitlines()
            return None, lines[-1] if lines else f"exit status {os.WEXITSTATUS(status)}"
    payload = json.loads(data)
    return (payload["result"], "") if "result" in payload else (None, payload["error"])


def self_test(path: str, runtime: str, sidecar: str, manifest: dict, compare_float: bool) -> tuple[list[Check], dict]:
    """Run the golden digits in a child process and hold its answers to the exported ones."""
    sibling = _float_sibling(path) if compare_float else None
    result, failure = run_isolated(lambda: _golden_run(path, runtime, sidecar, sibling))
    if result is None:
        advice = "try the other runtime (--runtime), or another release of it"
        if "SIGILL" in failure:
            advice = "the interpreter uses an instruction this CPU lacks: " + advice
        elif "numpy" in failure.lower():
            advice = "pip install 'numpy<2'"
        return [Check("runtime", "fail", f"{runtime} cannot run the model: {failure[:300]}", advice)], {}
    io = result["io"]
    checks = [Check("runtime", "ok", f"{result['runtime']} {result['version']} runs it: {io['input']['dtype']} "
                    f"{io['input']['shape']} -> {io['output']['dtype']} {io['output']['shape']}"),
              golden_check(sidecar, manifest, result["runtime"], io, result["outputs"])]
    figures = {"p50_us": result["p50_us"], "float32_p50_us": result.get("float_p50_us")}
    speed = f"batch-1 p50 {result['p50_us']:.0f} us over {TIMED_INVOKES} invokes, one thread"
    if result.get("float_p50_us") is not None:
        speed += f"; the float32 model beside it: {result['float_p50_us']:.0f} us"
    checks.append(Check("speed", "ok", speed))
    return checks, figures


def golden_digits(sidecar: str):
    """The golden digits as the model's input: float32 (N, 28, 28) in [0, 1]."""
    import numpy as np

    from .contract import scale_pixels

    with np.load(sidecar) as golden:
        return scale_pixels(golden["digits"])


def golden_check(sidecar: str, manifest: dict, runtime: str, io: dict, outputs) -> Check:
    """This device's outputs for the golden digits, held to the answers exported on `runtime` (or
    on the first runtime the export verified, where that one is not among them).

    Args:
      io: the model's input and output contract (runtime.TFLiteModel.io_contract).
      outputs: (N, 10) the probabilities here.
    """
    import numpy as np

    with np.load(sidecar) as golden:
        exported = {k.removeprefix("outputs-"): golden[k] for k in golden.files if k.startswith("outputs-")}
    reference_runtime = runtime if runtime in exported else next(iter(exported))
    quantized = io["output"]["dtype"] != "float32"
    tolerance = INT8_TOLERANCE_STEPS * io["output"]["scale"] if quantized else FLOAT_TOLERANCE
    actual = np.asarray(outputs, np.float32)
    failures = compare_outputs(exported[reference_runtime], actual, tolerance)
    worst = float(np.max(np.abs(actual - exported[reference_runtime])))
    how = (f"{INT8_TOLERANCE_STEPS} output steps of {io['output']['scale']:.6f}" if quantized else "float32")
    export_cpu = manifest.get("converter", {}).get("cpu", "the exporting machine")
    detail = (f"{len(actual) - len(failures)}/{len(actual)} digits as exported on {reference_runtime} "
              f"({export_cpu}); largest probability difference {worst:.4f}, tolerance {tolerance:.4f} ({how})")
    if failures:
        return Check("self-test", "fail", detail + "; " + "; ".join(failures[:3]),
                     "this device computes other answers: report it with `edge-doctor --json`, and try "
                     "the other runtime (--runtime)")
    return Check("self-test", "ok", detail)


def diagnose(path: str, runtime: str = "auto") -> Report:
    """Every check, in order; a failed model check skips the self-test that needs it."""
    env_checks, facts = environment(runtime)
    checks = list(env_checks)
    chosen = _chosen(runtime, facts["interpreters"]) or "none"
    found, manifest, sidecar = model_checks(path)
    checks += found
    checks += line_reader_checks(path)
    figures: dict[str, Any] = {"environment": facts}
    if sidecar and facts["interpreters"]:
        features = facts["cpu_features"]
        no_dot_product = platform.machine() == "aarch64" and not features.get("asimddp", True)
        test_checks, speed = self_test(path, chosen, sidecar, manifest,
                                       compare_float=no_dot_product and manifest.get("quantization") == "int8")
        checks += test_checks
        figures.update(speed)
        if speed and no_dot_product and manifest.get("quantization") == "int8" and speed["float32_p50_us"] is None:
            checks.append(Check("speed", "warn", "no dot-product instructions (asimddp) here: int8 may be no faster "
                                "than float32", "export --quantize none too, put it beside this one, and compare"))
    return Report(path, chosen, tuple(checks), figures)


def _chosen(runtime: str, installed) -> Optional[str]:
    """The runtime edge-classify would use: the one named, or the best installed for "auto"."""
    return runtime if runtime != "auto" else next((r for r in installed if r in AUTO_RUNTIMES), None)


def _golden_run(path: str, runtime: str, sidecar: str, float_sibling: Optional[str]) -> dict:
    """The golden digits through the interpreter, and the timing (in the isolated child)."""
    import numpy as np

    from .bench import latencies_us
    from .runtime import TFLiteModel

    digits = golden_digits(sidecar)
    model = TFLiteModel(path, runtime=runtime, threads=1)
    result = {"runtime": model.runtime.name, "version": model.runtime.version, "io": model.io_contract(),
              "outputs": model.predict(digits).tolist(),
              "p50_us": float(np.median(latencies_us(model, digits, TIMED_INVOKES)))}
    if float_sibling:
        sibling = TFLiteModel(float_sibling, runtime=runtime, threads=1)
        result["float_p50_us"] = float(np.median(latencies_us(sibling, digits, TIMED_INVOKES)))
    return result
