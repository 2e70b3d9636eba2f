"""`lstm-edge export`: every mode, parity on both runtimes, the manifest, and failures that
leave the earlier model untouched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from tests.bars import parity_failures
from tests.conftest import EXPECTED_RUNTIMES, LSTM_EDGE, read_manifest, run_cli

MODES = ["none", "dynamic", "float16", "int8", "int16x8"]
INT8_MAX_BYTES = 150 * 1024  # the int8 model's size is its structure's, whatever the weights: no noise


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_passes_parity_on_both_runtimes(exports, mode):
    model, stdout = exports(mode)
    manifest = read_manifest(model)
    assert manifest["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert manifest["quantization"] == mode and manifest["labels"] == list(range(10))
    checks = {c["runtime"]: c for c in manifest["parity"]["verified_on"]}
    assert set(checks) == set(EXPECTED_RUNTIMES)
    assert all(c["passed"] for c in checks.values())
    for check in checks.values():
        assert check["digits"] == manifest["parity"]["digits"] == 1000
        assert not parity_failures(check, manifest["parity"]["float_correct"], mode)
    assert "float32" in stdout and "wrote" in stdout  # the closing table


def test_default_quantize_is_int8_small_and_keeps_accuracy(trained_run, tmp_path, int8_model):
    manifest = read_manifest(int8_model)
    assert manifest["input"]["dtype"] == "int8" and manifest["output"]["dtype"] == "int8"
    assert manifest["input"]["shape"] == [1, 28, 28]
    assert int8_model.stat().st_size <= INT8_MAX_BYTES
    for check in manifest["parity"]["verified_on"]:
        assert not parity_failures(check, manifest["parity"]["float_correct"], "int8")


@pytest.mark.parametrize("wrong, changed, passes", [
    (4, 4, True),  # 0.4 points of 1,000 digits: 4 may be lost ...
    (5, 5, False),  # ... not 5
    (0, 5, True),  # 99.5% agreement of 1,000: 5 answers may change (between wrong answers) ...
    (0, 6, False),  # ... not 6
])
def test_parity_bars_are_counted_in_whole_digits(tmp_path, monkeypatch, wrong, changed, passes):
    """The default bars at their edges, on answers made to order: 0.4 points and 99.5% of 1,000 digits
    are 4 lost and 5 changed, exactly (in floating point, 100 - 99.5 and 0.4 * 1000 / 100 need care)."""
    from lstm_edge.export import verify

    labels = np.arange(1000) % 10
    reference = np.full((1000, 10), 0.01)
    reference[np.arange(1000), labels] = 0.91
    reference[:20, :] = 0.1  # 20 digits the float model gets wrong: a near tie, answered 0
    reference[:20, 0] = 0.11
    labels[:20] = 1
    answers = reference.argmax(-1)
    answers[500 : 500 + wrong] = (labels[500 : 500 + wrong] + 1) % 10  # right digits lost
    answers[: changed - wrong] = 2  # wrong digits that change to another wrong digit
    probabilities = np.full((1000, 10), 0.01)
    probabilities[np.arange(1000), answers] = 0.91
    monkeypatch.setattr(verify, "edge_runtimes", lambda runtimes=None, micro=False: ["litert"])
    monkeypatch.setattr(verify, "run_edge", lambda *args: (probabilities, {"runtime": "litert", "version": "test",
                                                                            "io": {}}))
    parity = verify.check_parity(tmp_path / "m.tflite", "int8", tmp_path / "d.npy", labels, reference)
    (check,) = parity.checks
    assert (parity.float_correct - check.correct, check.changed) == (wrong, changed)
    assert check.passed == passes, check.failures


def test_the_parity_report_names_the_changed_digits_and_the_confidence_drift(int8_model, exports, sample):
    """Which test digits changed their answer, and how far the float model's top-class probability
    moved (99th percentile), per runtime: recomputed here from the runtime's own answers."""
    from lstm_edge.edge.contract import scale_pixels
    from lstm_edge.edge.runtime import TFLiteModel

    manifest = read_manifest(int8_model)
    litert = next(c for c in manifest["parity"]["verified_on"] if c["runtime"] == "litert")
    assert 0 <= litert["top_difference_p99"] <= litert["max_difference"]
    float_manifest = read_manifest(exports("none")[0])
    float_check = next(c for c in float_manifest["parity"]["verified_on"] if c["runtime"] == "litert")
    assert float_check["changed_digits"] == [] and float_check["top_difference_p99"] < 1e-5
    digits = scale_pixels(sample.x_test)
    answers = TFLiteModel(str(int8_model), runtime="litert").predict(digits).argmax(-1)
    float_answers = TFLiteModel(str(exports("none")[0]), runtime="litert").predict(digits).argmax(-1)
    assert sorted(int(i) for i in np.flatnonzero(answers != float_answers)) == litert["changed_digits"]
    stdout = exports("int8")[1]
    assert "top-class p99" in stdout
    if litert["changed_digits"]:
        assert f"answers changed on test digits {litert['changed_digits'][0]}" in stdout


def test_int8_graph_is_integer_only_and_whole_for_xnnpack(int8_model):
    """No float tensor between input and output (a split with an unused output once stayed float
    at step 1), and no SPLIT_V (XNNPACK does not take it: the graph would be cut in pieces)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(int8_model))
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert "SPLIT_V" not in ops and "DEQUANTIZE" not in ops and "QUANTIZE" not in ops
    # the input projections and 27 recurrent products, each apart for the gates and the cell, and the head
    assert ops.count("FULLY_CONNECTED") == 2 + 2 * 27 + 1
    assert "MINIMUM" not in ops and "MAXIMUM" not in ops  # the cell bound is fused into the cell's add
    used = {i for op in interpreter._get_ops_details() for i in (*op["inputs"], *op["outputs"]) if i >= 0}
    kinds = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details() if t["index"] in used}
    assert kinds <= {"int8", "int32"}, kinds


def test_failed_parity_leaves_the_earlier_model_untouched(trained_run, int8_model, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from lstm_edge.export import verify
    from lstm_edge.export.errors import ExportError
    from lstm_edge.export.publish import export_run

    out = tmp_path / "model.tflite"
    out.write_bytes(int8_model.read_bytes())
    out.with_suffix(".json").write_text(int8_model.with_suffix(".json").read_text())
    before = out.read_bytes(), out.with_suffix(".json").read_text()
    monkeypatch.setattr(verify, "allowed_digits", lambda percent, digits: -1)  # bars no model can clear
    with pytest.raises(ExportError, match="parity failed.*left untouched.*agrees on"):
        export_run(trained_run, "int8", out)
    assert (out.read_bytes(), out.with_suffix(".json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.tflite"]  # no leftovers


@pytest.mark.parametrize("args, message", [
    (("--quantize", "int4"), "Invalid value for '--quantize'"),
    (("--representative", "999999"), "999999 representative digits: choose 1 to 4,000"),
    (("--representative", "0"), "Invalid value for '--representative'"),
    (("--out", "/nonexistent/dir/model.tflite"), "does not exist"),
    (("--out", "model.onnx"), "must end in .tflite"),
    (("--tolerance", "-1"), "Invalid value for '--tolerance'"),
    (("--min-agreement", "101"), "Invalid value for '--min-agreement'"),
])
def test_bad_export_arguments(trained_run, tmp_path, args, message):
    done = run_cli(*LSTM_EDGE, "export", str(trained_run), *args, check=False, cwd=tmp_path)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.tflite"))


def test_missing_run_folder(tmp_path):
    done = run_cli(*LSTM_EDGE, "export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.tflite"), check=False)
    assert done.returncode == 1 and "no such run folder" in done.stderr


@pytest.mark.parametrize("where", ["read-only folder", "/proc"])
def test_unwritable_output(trained_run, tmp_path, where):
    if where == "/proc":  # no one may create files there, root included (CI runs as root)
        if not os.path.isdir("/proc/self"):
            pytest.skip("no /proc here")
        target = Path("/proc/m.tflite")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder; the /proc case covers root")
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "m.tflite"
    try:
        done = run_cli(*LSTM_EDGE, "export", str(trained_run), "--out", str(target), check=False)
    finally:
        if where != "/proc":
            locked.chmod(0o700)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"Error: {target}: cannot write in {target.parent} ("), line


def test_manifest_records_the_contract_and_provenance(float_model):
    manifest = read_manifest(float_model)
    assert manifest["input"]["dtype"] == "float32" and "/ 255" in manifest["input"]["pixel_scaling"]
    assert manifest["training"]["model"]["units"] == 128
    assert manifest["converter"]["tensorflow"] and manifest["converter"]["cpu"]
