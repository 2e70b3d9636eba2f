"""`--target micro`: the model proven on TensorFlow Lite Micro, and C++ a firmware compiles in."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lstm_edge.edge.interpreters import installed_runtimes
from tests.bars import EXPORT_BARS
from tests.conftest import EDGE_CLASSIFY, LSTM_EDGE, ROOT, read_manifest, run_cli

pytestmark = pytest.mark.skipif("tflite-micro" not in installed_runtimes(),
                                reason="tflite-micro is not installed (pip install 'lstm-edge[micro]')")
COMPILER = shutil.which("g++") or shutil.which("c++")


@pytest.fixture(scope="session")
def micro_export(trained_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("micro") / "digits.tflite"
    run_cli(*LSTM_EDGE, "export", str(trained_run), "--quantize", "--target", "micro", "--c-name", "lstm_digits",
            "--out", str(out), *EXPORT_BARS)
    return out


def test_tflm_parity_is_in_the_manifest_beside_the_other_runtimes(micro_export):
    manifest = read_manifest(micro_export)
    checks = {c["runtime"]: c for c in manifest["parity"]["verified_on"]}
    assert {"litert", "tflite-micro"} <= set(checks) and all(c["passed"] for c in checks.values())
    micro = manifest["micro"]
    assert micro["c_name"] == "lstm_digits" and micro["ops"] == checks["tflite-micro"]["details"]["ops"]
    assert "FULLY_CONNECTED" in micro["ops"] and micro["arena_measured_bytes"] == checks["tflite-micro"]["details"][
        "arena_bytes"]
    assert micro["arena_measured_bytes"] < micro["arena_bytes"] <= 1.1 * micro["arena_measured_bytes"] + 1024
    for name, digest in micro["sha256"].items():
        assert hashlib.sha256((micro_export.parent / name).read_bytes()).hexdigest() == digest


def test_the_arena_is_the_smallest_tflm_runs_the_model_in(micro_export):
    from lstm_edge.edge.micro import MicroInterpreter

    model = micro_export.read_bytes()
    measured = read_manifest(micro_export)["micro"]["arena_measured_bytes"]
    MicroInterpreter(model, arena_size=measured).invoke()
    with pytest.raises(RuntimeError, match="does not fit a"):
        MicroInterpreter(model, arena_size=measured - 256)


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler (apt-get install g++)")
def test_the_generated_cpp_compiles_and_holds_the_model_bytes(micro_export, tmp_path):
    """model_data.cc compiles with -Wall -Werror; a program built with it writes out the array,
    which must be the .tflite file byte for byte, 16-byte aligned, and registers exactly the ops."""
    micro = read_manifest(micro_export)["micro"]
    fake_methods = "\n".join(f"  int {method}() {{ names.push_back(\"{method}\"); return 0; }}"
                             for method in micro["resolver_methods"])
    (tmp_path / "check.cc").write_text(f"""
#include "model_data.h"
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>
struct Resolver {{
  std::vector<std::string> names;
{fake_methods}
}};
int main(int, char** argv) {{
  Resolver resolver;
  if (!lstm_digits_register_ops(resolver)) return 2;
  if (static_cast<int>(resolver.names.size()) != lstm_digits_op_count) return 3;
  if (reinterpret_cast<std::uintptr_t>(lstm_digits_model_data) % 16 != 0) return 4;
  std::FILE* out = std::fopen(argv[1], "wb");
  std::fwrite(lstm_digits_model_data, 1, lstm_digits_model_data_len, out);
  std::fclose(out);
  std::printf("%zu %d %g %d\\n", lstm_digits_arena_bytes, lstm_digits_op_count, lstm_digits_input_scale,
              lstm_digits_input_zero_point);
  return 0;
}}
""")
    flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", str(micro_export.parent)]
    subprocess.run([COMPILER, *flags, "-c", str(micro_export.parent / "model_data.cc"), "-o", str(tmp_path / "m.o")],
                   check=True, capture_output=True, text=True)
    subprocess.run([COMPILER, *flags, str(tmp_path / "check.cc"), str(tmp_path / "m.o"), "-o", str(tmp_path / "check")],
                   check=True, capture_output=True, text=True)
    done = subprocess.run([str(tmp_path / "check"), str(tmp_path / "bytes.tflite")], capture_output=True, text=True)
    assert done.returncode == 0, done
    assert (tmp_path / "bytes.tflite").read_bytes() == micro_export.read_bytes()
    arena, ops, scale, zero_point = done.stdout.split()
    manifest = read_manifest(micro_export)
    assert (int(arena), int(ops)) == (micro["arena_bytes"], len(micro["ops"]))
    assert float(scale) == pytest.approx(manifest["input"]["scale"])
    assert int(zero_point) == manifest["input"]["zero_point"]


def test_edge_classify_on_tflm_gives_litert_s_answers(micro_export):
    images = sorted(str(p) for p in (ROOT / "examples" / "digits").glob("*.png"))

    def answers(runtime: str) -> list[int]:
        done = run_cli(*EDGE_CLASSIFY, *images, "--model", str(micro_export), "--json", "--runtime", runtime)
        return [json.loads(line)["digit"] for line in done.stdout.splitlines()]

    micro = answers("tflite-micro")
    assert micro == answers("litert") and len(micro) == len(images)
    from lstm_edge.edge.classifier import DigitClassifier

    assert DigitClassifier(str(micro_export), runtime="tflite-micro").runtime.startswith("tflite-micro ")


def test_auto_never_picks_tflm():
    from lstm_edge.edge.runtime import load_runtime

    assert load_runtime("auto").name != "tflite-micro"


def test_a_model_with_an_op_tflm_lacks_is_refused_with_one_line_naming_it(tmp_path):
    """A float model whose head uses REDUCE_PROD (TFLM has no kernel for it): LiteRT runs it, the
    TFLM parity check refuses it, naming the op."""
    tf = pytest.importorskip("tensorflow")
    from lstm_edge.export.errors import ExportError
    from lstm_edge.export.verify import check_parity

    @tf.function(input_signature=[tf.TensorSpec([1, 28, 28], tf.float32)])
    def model(digits):
        rows = tf.reduce_prod(1.0 + 0.01 * digits, axis=-1)  # (1, 28): REDUCE_PROD
        return tf.nn.softmax(rows[:, :10])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    path = tmp_path / "reduce_prod.tflite"
    path.write_bytes(converter.convert())
    digits = np.random.default_rng(0).random((20, 28, 28), dtype=np.float32)
    np.save(tmp_path / "digits.npy", digits)
    reference = np.concatenate([model(digits[i : i + 1]).numpy() for i in range(20)]).astype(np.float64)
    labels = reference.argmax(-1)
    assert check_parity(path, "none", tmp_path / "digits.npy", labels, reference, runtimes=["litert"]).passed
    with pytest.raises(ExportError) as refused:
        check_parity(path, "none", tmp_path / "digits.npy", labels, reference, runtimes=["litert"], micro=True)
    assert str(refused.value) == ("tflite-micro could not run the exported model, nothing written: "
                                  "TFLM has no kernel for REDUCE_PROD")


def test_a_model_tflm_cannot_run_or_fit_writes_nothing(trained_run, tmp_path):
    for args, message in [(("--quantize", "dynamic"), "tflite-micro could not run the exported model"),
                          (("--quantize", "--arena-limit", "20000"), "-byte tensor arena"),
                          (("--quantize", "--c-name", "9digits"), "is not a C identifier")]:
        done = run_cli(*LSTM_EDGE, "export", str(trained_run), *args, "--target", "micro",
                       "--out", str(tmp_path / "m.tflite"), *EXPORT_BARS, check=False)
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("Error: ") and "Traceback" not in done.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == []
