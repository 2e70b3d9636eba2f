"""`lstm-edge export`: every mode, parity on both runtimes, the manifest, and failures that
leave the earlier model untouched."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.bars import parity_failures
from tests.conftest import LSTM_EDGE, read_manifest, run_cli

MODES = ["none", "dynamic", "float16", "int8", "int16x8"]
INT8_MAX_BYTES = 150 * 1024  # the int8 model's size is its structure's, whatever the weights: no noise


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_passes_parity_on_both_runtimes(exports, mode):
    model, stdout = exports(mode)
    manifest = read_manifest(model)
    assert manifest["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert manifest["quantization"] == mode and manifest["labels"] == list(range(10))
    checks = {c["runtime"]: c for c in manifest["parity"]["verified_on"]}
    assert set(checks) == {"litert", "tflite-runtime"}
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


def test_parity_is_counted_in_whole_digits(int8_model):
    """0.949 - 0.946 is not <= 0.003 in floating point: the manifest carries counts, and the
    fractions are derived from them."""
    parity = read_manifest(int8_model)["parity"]
    assert parity["float_accuracy"] == parity["float_correct"] / parity["digits"]
    for check in parity["verified_on"]:
        assert isinstance(check["correct"], int) and isinstance(check["changed"], int)
        assert check["agreement"] == 1 - check["changed"] / check["digits"]


def test_the_parity_report_names_the_changed_digits_and_the_confidence_drift(int8_model, exports, sample):
    """Which test digits changed their answer, and how far the float model's top-class probability
    moved (99th percentile), per runtime: recomputed here from the runtime's own answers."""
    from edge.preprocess import scale_pixels
    from edge.runtime import TFLiteModel

    manifest = read_manifest(int8_model)
    litert = next(c for c in manifest["parity"]["verified_on"] if c["runtime"] == "litert")
    assert len(litert["changed_digits"]) == litert["changed"]
    assert litert["changed_digits"] == sorted(set(litert["changed_digits"]))
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
    from export import verify
    from export.errors import ExportError
    from export.publish import export_run

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
    (("--representative", "999999"), "--representative 999999: choose 1 to 4,000"),
    (("--out", "/nonexistent/dir/model.tflite"), "does not exist"),
    (("--out", "model.onnx"), "must end in .tflite"),
    (("--tolerance", "-1"), "--tolerance must be between"),
    (("--min-agreement", "101"), "--min-agreement must be between"),
])
def test_bad_export_arguments(trained_run, tmp_path, args, message):
    done = run_cli(*LSTM_EDGE, "export", str(trained_run), *args, check=False, cwd=tmp_path)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.tflite"))


def test_missing_run_folder(tmp_path):
    done = run_cli(*LSTM_EDGE, "export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.tflite"), check=False)
    assert done.returncode == 1 and "no such run folder" in done.stderr


def test_unwritable_output(trained_run, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        done = run_cli(*LSTM_EDGE, "export", str(trained_run), "--out", str(locked / "m.tflite"), check=False)
        # root can write anywhere; everyone else gets the one-line refusal
        assert done.returncode == 0 or "not writable" in done.stderr
    finally:
        locked.chmod(0o700)


def test_manifest_records_the_contract_and_provenance(float_model):
    manifest = read_manifest(float_model)
    assert manifest["input"]["dtype"] == "float32" and "/ 255" in manifest["input"]["pixel_scaling"]
    assert manifest["training"]["model"]["units"] == 128
    assert manifest["converter"]["tensorflow"]
    assert json.dumps(manifest)  # plain JSON all the way down
