"""The benchmark's parts: the fused Keras-LSTM baseline (and the edge's state reset on it), the
runtime's limits, the report, and the command's bad input."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from benchmarks.child import ROOT
from benchmarks.roofline import MACS_PER_DIGIT
from tests.conftest import EXPECTED_RUNTIMES, run_cli

RUNTIMES = EXPECTED_RUNTIMES
DIGITS = 200

BUILD_FUSED = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from benchmarks.baselines import FUSED_OP, fused_lstm_tflite, op_names
    from lstm_edge.edge.contract import scale_pixels
    from lstm_edge.train.loop import predict_logits
    from lstm_edge.train.model import get_weights
    from lstm_edge.train.run import load_run, restore_model
    run, out, n = load_run(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    data = run.load_data()
    model = restore_model(run)
    digits = scale_pixels(data.x_test[:n])
    calibration = scale_pixels(data.x_train[::40])
    for name, quantized in (("float32", False), ("int8", True)):
        flatbuffer = fused_lstm_tflite(get_weights(model), quantized, calibration, run.model.cell_bound)
        assert FUSED_OP in op_names(flatbuffer), op_names(flatbuffer)
        (out / f"fused-{name}.tflite").write_bytes(flatbuffer)
    np.save(out / "digits.npy", digits)
    np.save(out / "float.npy", predict_logits(model, digits).argmax(-1))
""")

CHECK_FUSED = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from lstm_edge.edge.runtime import TFLiteModel
    from tests.bars import fused_failures
    folder, name, runtime = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    digits, answers = np.load(folder / "digits.npy"), np.load(folder / "float.npy")
    model = TFLiteModel(str(folder / f"fused-{name}.tflite"), runtime=runtime)
    assert model.stateful, "the fused LSTM keeps state between invokes: it must be detected"
    MAX_CHANGED = 4  # of 200: the same math as the float model, int8 rounding apart (0-1 seen)
    assert not fused_failures(model.predict(digits).argmax(-1), answers, MAX_CHANGED)
    # Each answer equals a fresh interpreter's first answer for that digit...
    with_reset = model.predict(digits[:20])
    for digit, answer in zip(digits[:5], with_reset):
        fresh = TFLiteModel(str(folder / f"fused-{name}.tflite"), runtime=runtime)
        np.testing.assert_allclose(fresh.invoke(digit[None])[0], answer, atol=1e-6)
    # ... while without the reset the fused op carries each digit's state into the next answer.
    raw = model._interpreter
    raw.reset_all_variables()
    carried = []
    for digit in digits:
        raw.set_tensor(model._input["index"], model._input_codec.quantize(digit[None]))
        raw.invoke()
        carried.append(model._output_codec.dequantize(raw.get_tensor(model._output["index"]))[0])
    # How much it carries depends on the trained weights (another CPU trains others): over 1e-2 in
    # probability on AMD EPYC Zen 5, 0.004 (float32) and 2 output steps (int8) on Zen 3. Any change
    # beyond the output's resolution proves the reset matters.
    step = float(model._output_codec.scale) if model._output_codec.quantized else 1e-4
    assert np.abs(np.array(carried[:20]) - with_reset).max() > step, "no state carried over: the test proves nothing"
    # Where the carried state changes answers beyond the bar, the agreement bar above must catch it.
    damaged = np.array(carried).argmax(-1)
    if np.sum(damaged != answers) > 2 * MAX_CHANGED:
        assert fused_failures(damaged, answers, MAX_CHANGED), "the bar does not bite"
""")


@pytest.fixture(scope="module")
def fused(trained_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fused")
    run_cli("-c", BUILD_FUSED, str(trained_run), str(folder), str(DIGITS))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("name", ["float32", "int8"])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fused_keras_lstm_baseline_agrees_and_its_state_is_reset(fused, name, runtime):
    run_cli("-c", CHECK_FUSED, str(fused), name, runtime)


@pytest.mark.slow
def test_roofline_measures_the_runtime_limits(tmp_path):
    done = run_cli("-m", "benchmarks.roofline", str(tmp_path / "new" / "probes"), "--json")  # made as needed
    r = json.loads(done.stdout)
    assert MACS_PER_DIGIT == 28 * 28 * 512 + 27 * 128 * 512 + 128 * 10 == r["macs_per_digit"]
    assert r["gemv_us"]["gemv-int8"] > 0 and r["gemv_us"]["gemv-float32"] > 0
    assert r["latency_floor_us"] == pytest.approx(27 * min(r["gemv_us"].values()))
    assert r["throughput_ceiling"] == pytest.approx(max(r["gemm_gmacs"].values()) * 1e9 / MACS_PER_DIGIT)


def results_fixture() -> dict:
    def row(model, family, runtime, p50, rate, accuracy):
        return {"model": model, "family": family, "runtime": runtime, "version": "1.0", "size_bytes": 100_000,
                "accuracy": accuracy, "agreement": 0.99, "p50_us": p50, "p99_us": 2 * p50, "invoke_p50_us": p50 / 2,
                "digits_per_second": rate, "best": "2 threads, batch 64", "repeats": 100}

    return {
        "created": "2026-11-29T00:00:00+00:00",
        "machine": {"cpu": "Test CPU", "cores": 2, "machine": "x86_64", "python": "3.11"},
        "test_digits": 1000, "dataset": "mnist-sample", "float_accuracy": 0.97,
        "rows": [row("lstm-edge int8", "lstm-edge", "litert", 150.0, 20_000.0, 0.97),
                 row("Keras fused LSTM int8", "fused", "litert", 1500.0, 600.0, 0.96),
                 row("numpy float32", "numpy", "numpy", 2500.0, 3000.0, 0.97)],
        "roofline": {"runtime": "litert 2.3", "rounds": 9, "gemv_us": {"gemv-int8": 3.0, "gemv-float32": 7.0},
                     "gemm_gmacs": {"gemm-int8": 60.0, "gemm-float32": 65.0}, "gemm_threads": 2,
                     "macs_per_digit": MACS_PER_DIGIT, "latency_floor_us": 81.0, "throughput_ceiling": 29_924.0},
        "layouts": {"runtime": "litert 2.3", "rounds": 15, "calls": 200, "results": [
            {"layout": "export (i,f,o | c)", "ops": 340, "size_bytes": 135_000, "invoke_us": 126.0, "agreement": 0.998,
             "top_difference_p99": 0.046},
            {"layout": "one-product", "ops": 340, "size_bytes": 134_000, "invoke_us": 120.0,
             "agreement": 0.997, "top_difference_p99": 0.061}]},
        "fidelity": {"dataset": "mnist-sample", "rows": [
            {"candidate": "bounded cell, split products (the export)", "mode": "int8", "runtime": "litert 2.3",
             "size_bytes": 139_000, "digits": 1000, "changed": 2, "agreement": 0.998, "top_difference_p99": 0.046,
             "accuracy": 0.968, "float_accuracy": 0.968, "latency_us": 65.0}]},
        "cold_start": {"rows": [{"environment": "edge-only install: /usr/bin/python3 (Python 3.11.2), numpy 2.4.6",
                                 "runtime": "litert", "median_s": 0.25, "min_s": 0.2, "max_s": 0.5,
                                 "floor_median_s": 0.22, "ours_median_s": 0.03, "python_median_s": 0.02,
                                 "repeats": 5}],
                       "skipped": [{"python": "/opt/python3", "reason": "pip install failed: no network"}]},
        "training": {"digits": 4000, "dataset": "mnist-sample", "batch_size": 100, "units": 128, "epochs_timed": 4,
                     "lstm_edge_median": 2400.0, "keras_fit_median": 2000.0, "ratio": 1.2, "tensorflow": "2.21",
                     "keras": "3"},
    }


def test_report_states_the_ratios_and_limits_and_draws_the_chart(tmp_path):
    from benchmarks.chart import draw
    from benchmarks.report import write_section
    from benchmarks.run import render

    table = render(results_fixture())
    assert "| lstm-edge int8 | litert 1.0 | 98 KB | 97.0% | 99.0% | 150 us | 300 us | 75 us | 20,000 |" in table
    assert "**10.0x** lower batch-1 latency through the API (10.0x invoke alone), **33.3x** the batched" in table
    assert "| export (i,f,o | c) | 340 | 132 KB | 126 us | 99.8% | 0.046 |" in table
    assert "The export's layout against the one-product layout, same run: **1.05x** the invoke time." in table
    assert ("| bounded cell, split products (the export) | litert 2.3 | 99.80% | 2 | 0.046 | 96.80% (96.80%) | "
            "65 us | 136 KB |") in table
    assert "**batch-1 floor 81 us**" in table and "**throughput ceiling 29,924 digits/s**" in table
    assert ("| edge-only install: /usr/bin/python3 (Python 3.11.2), numpy 2.4.6 | litert | **0.250 s** | 0.200 s | "
            "0.500 s | 0.220 s | 0.030 s | 0.020 s |") in table
    assert "| edge-only install: /opt/python3 | not measured: pip install failed: no network |" in table
    draw(results_fixture(), tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = tmp_path / "benchmarks.md"
    doc.write_text("intro\n<!-- bench:start -->\nold\n<!-- bench:end -->\nrest\n")
    assert write_section("bench", table, doc)
    text = doc.read_text()
    assert "old" not in text and table in text and text.startswith("intro") and text.endswith("rest\n")
    assert not write_section("bench", table, tmp_path / "missing.md")
    assert not write_section("numbers", table, doc)  # another section's markers are not there


def test_benchmarks_write_the_docs_never_the_readme():
    """make bench and friends write docs/benchmarks.md's sections; the README quotes no figure a run changes."""
    from benchmarks.report import DOCS, markers

    sources = "".join(path.read_text() for path in (ROOT / "benchmarks").glob("*.py"))
    assert "README.md" not in sources.replace('project["project"]["readme"]', "")
    doc, readme = DOCS.read_text(), (ROOT / "README.md").read_text()
    for section in ("bench", "tradeoff", "numbers", "micro"):
        start, end = markers(section)
        assert start in doc and end in doc and start not in readme, section


def test_the_trade_off_names_where_each_mode_runs():
    from benchmarks.fidelity import tradeoff
    from lstm_edge.export.modes import RUNS_ON

    full = results_fixture()["fidelity"]
    full["rows"].append({**full["rows"][0], "candidate": "dynamic (bounded cell)", "mode": "dynamic", "changed": 0,
                         "agreement": 1.0})
    text = tradeoff(full, "Test CPU")
    assert f"| int8 | litert 2.3 | 99.80% (2) | 0.046 | 96.80% (96.80%) | 65 us | 136 KB | {RUNS_ON['int8']} |" in text
    assert "| dynamic | litert 2.3 | 100.00% (0) |" in text and RUNS_ON["dynamic"] in text
    assert "on Test CPU" in text


@pytest.mark.slow
def test_cold_starts_are_timed_beside_their_floor_and_a_failing_command_stops_them(int8_model, tmp_path):
    from benchmarks import coldstart
    from benchmarks.errors import BenchError

    digit = ROOT / "examples" / "digits" / "7.png"
    r = coldstart.measure(int8_model, digit, RUNTIMES, tmp_path, repeats=2, log=lambda _: None, bases=[])
    assert [row["runtime"] for row in r["rows"]] == RUNTIMES and r["skipped"] == []
    for row in r["rows"]:
        assert row["kind"] == "benchmark's venv" and row["repeats"] == 2 and row["litert"] == ("litert" in RUNTIMES)
        assert row["numpy"] == np.__version__ and row["environment"].endswith(f"numpy {np.__version__}, "
                                                                             "TensorFlow installed")
        assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["floor_median_s"] > 0 and row["python_median_s"] > 0
    with pytest.raises(BenchError, match=r"edge-classify: error: .*missing\.tflite"):
        coldstart.measure(tmp_path / "missing.tflite", digit, RUNTIMES[:1], tmp_path, repeats=1, bases=[])


@pytest.mark.slow
def test_an_edge_only_install_that_cannot_be_made_is_skipped_with_its_reason(tmp_path):
    from benchmarks import coldstart

    had_build = (ROOT / "build").exists()
    made, skipped = coldstart.edge_installs([str(tmp_path / "no-python")], tmp_path, log=lambda _: None)
    assert made == [] and [s["python"] for s in skipped] == [str(tmp_path / "no-python")]
    reason = skipped[0]["reason"]  # with a package index the wheel builds and the venv fails; without, the wheel
    assert reason.startswith((f"{tmp_path / 'no-python'} -m venv failed: ", "pip wheel failed")), reason
    assert (ROOT / "build").exists() == had_build  # the wheel is built from a copy


def test_bench_refuses_a_missing_run(tmp_path):
    done = run_cli("-m", "benchmarks.run", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "out"),
                   check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"bench: error: --run {tmp_path / 'nope'}: not a run folder (no "
                                                "config.json); train one with `lstm-edge train`"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (("--measure",), "no such folder"),
    ((), "cannot make the folder"),
])
def test_roofline_bad_folder_is_one_line(tmp_path, args, message):
    (tmp_path / "file").write_text("not a folder")
    target = tmp_path / "missing" if args else tmp_path / "file" / "probes"
    done = run_cli("-m", "benchmarks.roofline", str(target), *args, check=False)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_the_documented_recipes_are_the_measured_ones():
    """The commands people copy are the recipes the benchmarks and tests train (train.recipes), flag for flag."""
    from lstm_edge.train.recipes import FULL_MNIST, QUICKSTART

    training = (ROOT / "docs" / "training.md").read_text()
    assert f"lstm-edge train --data ../shared/data/mnist {' '.join(FULL_MNIST)} --seed 0" in training
    makefile = (ROOT / "Makefile").read_text()
    assert f"lstm-edge train {' '.join(QUICKSTART)} --out $(RUN)" in makefile
    assert f"lstm-edge train {' '.join(QUICKSTART)}" in (ROOT / "README.md").read_text()


def test_full_mnist_rows_say_when_the_data_is_missing(tmp_path):
    from benchmarks import fullmnist

    result = fullmnist.measure(tmp_path)
    assert "no MNIST IDX files in" in result["skipped"] and "not measured" in fullmnist.render(result)


def test_board_fit_uses_the_stated_allowances():
    from benchmarks.micro import BOARDS, FIRMWARE_FLASH, FIRMWARE_RAM, fits

    pico = BOARDS[0]
    assert fits(pico, 140_000, 92_000)
    assert not fits(pico, 140_000, pico.ram_bytes - FIRMWARE_RAM + 1)
    assert not fits(pico, pico.flash_bytes - FIRMWARE_FLASH + 1, 10_000)


def test_numbers_refuse_the_samples_digits_for_a_model_trained_on_full_mnist(tmp_path):
    from benchmarks.numbers import _check_held_out

    model = tmp_path / "model.tflite"
    model.with_suffix(".json").write_text(json.dumps({"training": {"dataset": "mnist-sample", "data_path": None}}))
    _check_held_out([str(model)], None)  # trained on the sample: its held-out digits are held out
    lines = tmp_path / "model.lines.tflite"
    lines.with_suffix(".json").write_text(json.dumps({"training": {"dataset": "mnist-sample",
                                                                   "data_path": "../shared/data/mnist"}}))
    with pytest.raises(SystemExit, match="trained on full MNIST"):
        _check_held_out([str(model), str(lines)], None)
    _check_held_out([str(model), str(lines)], "../shared/data/mnist")  # its test split is held out from both
