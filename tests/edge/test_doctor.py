"""`edge-doctor` and the golden digits the export ships for it: it passes where the model runs as
exported, and names the failing check, never with a traceback, where it does not."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lstm_edge.edge.doctor import compare_outputs
from lstm_edge.edge.manifest import golden_path, sha256_hex
from tests.conftest import EDGE_DOCTOR, EXPECTED_RUNTIMES, ROOT, needs_tflite_runtime, read_manifest, run_cli

DOCTOR = EDGE_DOCTOR


def doctor(model, *args, check_ok=None, env=None, python=None):
    command = [python or sys.executable, *DOCTOR, "--model", str(model), "--json", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["ok"] else 1)
    if check_ok is not None:
        assert report["ok"] is check_ok, report["checks"]
    return report


def failed(report) -> dict[str, str]:
    return {c["name"]: c["detail"] + " | " + c["advice"] for c in report["checks"] if c["status"] == "fail"}


def copy_export(model, folder):
    """The model, its manifest and its golden digits, as a user copies them to a device."""
    for path in (model, model.with_suffix(".json"), golden_path(model)):
        shutil.copy(path, folder)
    return folder / model.name


def test_export_ships_golden_digits(int8_model, sample):
    manifest = read_manifest(int8_model)
    sidecar = golden_path(int8_model)
    data = open(sidecar, "rb").read()
    assert manifest["golden"]["sha256"] == sha256_hex(data) and len(data) < 16 * 1024  # a few KB
    with np.load(sidecar) as golden:
        labels, digits = golden["labels"], golden["digits"]
        assert digits.shape == (32, 28, 28) and digits.dtype == np.uint8
        assert np.bincount(labels, minlength=10).min() >= 3  # class-balanced
        assert set(golden.files) >= {"float_probabilities", *(f"outputs-{r}" for r in EXPECTED_RUNTIMES)}
        # they are real test digits, with the float model's least sure digit among them
        index = [int(np.flatnonzero((sample.x_test == d).all(axis=(1, 2)))[0]) for d in digits]
        assert (sample.y_test[index] == labels).all()
        assert golden["float_probabilities"].max(-1).min() < 0.9
    assert manifest["converter"]["cpu"]


@pytest.mark.parametrize("mode", ["int8", "none"])
@pytest.mark.parametrize("runtime", ["litert", pytest.param("tflite-runtime", marks=needs_tflite_runtime)])
def test_doctor_passes_where_the_model_runs_as_exported(exports, mode, runtime):
    report = doctor(exports(mode)[0], "--runtime", runtime, check_ok=True)
    assert report["runtime"] == runtime and report["p50_us"] > 0
    names = [c["name"] for c in report["checks"]]
    assert names[:4] == ["python", "cpu", "interpreters", "packages"] and "self-test" in names
    facts = report["environment"]
    assert {"python", "machine", "cpu", "cpu_features", "page_size", "libc", "numpy", "pillow"} <= set(facts)


def test_text_report_ends_with_the_verdict(int8_model):
    done = run_cli(*DOCTOR, "--model", str(int8_model))
    assert done.stdout.strip().splitlines()[-1] == "all checks passed"
    assert any(line.split()[:2] == ["ok", "self-test"] for line in done.stdout.splitlines())


def test_missing_manifest(int8_model, tmp_path):
    shutil.copy(int8_model, tmp_path)
    assert "manifest" in failed(doctor(tmp_path / int8_model.name, check_ok=False))


def test_altered_sidecar(int8_model, tmp_path):
    model = copy_export(int8_model, tmp_path)
    sidecar = golden_path(model)
    data = bytearray(open(sidecar, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(sidecar, "wb").write(bytes(data))
    assert "does not match" in failed(doctor(model, check_ok=False))["golden"]


def test_altered_exported_outputs_fail_the_self_test(int8_model, tmp_path):
    """A sidecar that claims other answers (hash updated, as a faulty export would write it)."""
    model = copy_export(int8_model, tmp_path)
    sidecar = golden_path(model)
    with np.load(sidecar) as golden:
        arrays = {k: golden[k] for k in golden.files}
    for key in ("outputs-litert", "outputs-tflite-runtime"):
        arrays[key] = np.roll(arrays[key], 1, axis=-1)  # every answer one digit along
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    open(sidecar, "wb").write(buffer.getvalue())
    manifest = json.loads(model.with_suffix(".json").read_text())
    manifest["golden"]["sha256"] = sha256_hex(buffer.getvalue())
    model.with_suffix(".json").write_text(json.dumps(manifest))
    assert "answers" in failed(doctor(model, "--runtime", "litert", check_ok=False))["self-test"]


def test_a_runtime_that_crashes_at_load_is_a_failed_check(int8_model, tmp_path):
    fake = tmp_path / "fake" / "ai_edge_litert"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = '0.0-crashing'\n")
    (fake / "interpreter.py").write_text("import os, signal\nclass Interpreter:\n    def __init__(self, *a, **k):\n"
                                         "        os.kill(os.getpid(), signal.SIGSEGV)\n")
    report = doctor(int8_model, "--runtime", "litert", env={"PYTHONPATH": f"{fake.parent}:{ROOT}"}, check_ok=False)
    assert "crashed (SIGSEGV)" in failed(report)["runtime"]


@pytest.mark.slow
@needs_tflite_runtime
def test_tflite_runtime_beside_numpy_2_is_named_with_the_fix(int8_model, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", "tflite-runtime==2.14.0", "numpy>=2", "pillow"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot install tflite-runtime beside numpy 2 here: {done.stderr.strip()[-200:]}")
    report = doctor(int8_model, "--runtime", "tflite-runtime", python=str(venv / "bin" / "python"), check_ok=False)
    problems = failed(report)
    assert "pip install 'numpy<2'" in problems["packages"] and "runtime" in problems


def test_usage_errors_exit_2():
    done = run_cli(*DOCTOR, "--runtime", "nope", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_compare_outputs_lets_rounding_decide_only_near_ties():
    exported = np.array([[0.50, 0.48] + [0.0025] * 8, [0.9, 0.1] + [0.0] * 8])
    flipped_tie = exported[:, [1, 0, 2, 3, 4, 5, 6, 7, 8, 9]].copy()
    assert compare_outputs(exported[:1], flipped_tie[:1], tolerance=0.05) == []  # 2 points apart: a tie
    assert compare_outputs(exported[1:], flipped_tie[1:], tolerance=0.05)  # 80 points apart: wrong
    nudged = exported + np.array([[0.04, -0.04] + [0.0] * 8, [0.06, -0.06] + [0.0] * 8])
    assert len(compare_outputs(exported, nudged, tolerance=0.05)) == 1


@pytest.mark.parametrize("fields, name", [
    ({"vendor_id": "AuthenticAMD", "model name": "AMD EPYC", "cpu family": "26", "model": "2"},
     "AMD EPYC family 26 model 2 (Zen 5)"),
    ({"vendor_id": "AuthenticAMD", "model name": "AMD EPYC", "cpu family": "25", "model": "17"},
     "AMD EPYC family 25 model 17 (Zen 4)"),
    ({"vendor_id": "AuthenticAMD", "model name": "AMD EPYC", "cpu family": "25", "model": "1"},
     "AMD EPYC family 25 model 1 (Zen 3)"),
    ({"vendor_id": "GenuineIntel", "model name": "Intel Xeon Processor", "cpu family": "6", "model": "143"},
     "Intel Xeon Processor family 6 model 143"),
    ({"vendor_id": "GenuineIntel", "model name": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
      "cpu family": "6", "model": "143"}, "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"),
    ({"CPU part": "0xd08", "Features": "fp asimd"}, "Cortex-A72"),
])
def test_the_cpu_is_named_down_to_its_generation(monkeypatch, fields, name):
    from lstm_edge.edge import machine

    monkeypatch.setattr(machine, "cpuinfo", lambda: fields)
    assert machine.cpu_model() == name
