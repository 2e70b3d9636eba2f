"""Run folders and models made by earlier versions (tests/fixtures/earlier, its README says which):
they still load, evaluate, export, resume and classify."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import EDGE_CLASSIFY, EDGE_DOCTOR, EXPECTED_RUNTIMES, LSTM_EDGE, ROOT, read_manifest, run_cli

EARLIER = Path(__file__).resolve().parent / "fixtures" / "earlier"
RUNS = {  # folder -> (cell bound, where its best model is)
    "run-no-validation": (None, "checkpoints"),
    "run-unbounded": (None, "best"),
    "run-bounded": (1.0, "best"),
}
MODELS = ["model-no-golden", "model-golden"]
EXAMPLES = ROOT / "examples" / "digits"


@pytest.fixture(params=sorted(RUNS))
def earlier_run(request, tmp_path) -> Path:
    copy = tmp_path / request.param  # a copy: resuming writes to it
    shutil.copytree(EARLIER / request.param, copy)
    return copy


def recorded_test_accuracy(run: Path) -> float:
    return json.loads((run / "config.json").read_text())["metrics"]["test_accuracy"]


def test_an_earlier_run_reads_as_the_current_format(earlier_run):
    pytest.importorskip("tensorflow")
    from lstm_edge.train.run import load_run

    run = load_run(earlier_run)
    cell_bound, folder = RUNS[earlier_run.name]
    assert (run.model.cell_bound, run.best_folder, run.best_epoch, run.epochs_done) == (cell_bound, folder, 2, 2)
    assert run.history[-1].test_accuracy == pytest.approx(recorded_test_accuracy(earlier_run))


def test_an_earlier_run_evaluates_to_its_recorded_accuracy_and_exports(earlier_run, tmp_path):
    evaluation = json.loads(run_cli(*LSTM_EDGE, "evaluate", str(earlier_run), "--json").stdout)
    # The same weights on another CPU may round a near tie the other way: a digit or two of 1,000.
    assert abs(evaluation["accuracy"] - recorded_test_accuracy(earlier_run)) <= 0.003
    out = tmp_path / "float.tflite"
    run_cli(*LSTM_EDGE, "export", str(earlier_run), "--out", str(out))  # float32: TensorFlow's answers to 1e-5
    manifest = read_manifest(out)
    assert manifest["training"]["model"]["cell_bound"] == RUNS[earlier_run.name][0]
    assert {c["runtime"] for c in manifest["parity"]["verified_on"]} == set(EXPECTED_RUNTIMES)


def test_resuming_an_earlier_run_writes_the_current_format(earlier_run):
    done = run_cli(*LSTM_EDGE, "train", "--resume", str(earlier_run), "--epochs", "3", "--quiet")
    assert "saved" in done.stdout
    config = json.loads((earlier_run / "config.json").read_text())
    assert config["format"] == "lstm-edge-run/2" and config["epochs_done"] == 3
    assert config["best"]["folder"] == "best" and (earlier_run / "best").is_dir()
    assert len(json.loads((earlier_run / "history.json").read_text())) == 3
    run_cli(*LSTM_EDGE, "evaluate", str(earlier_run), "--json")


@pytest.mark.parametrize("runtime", EXPECTED_RUNTIMES)
@pytest.mark.parametrize("model", MODELS)
def test_an_earlier_model_classifies(model, runtime):
    done = run_cli(*EDGE_CLASSIFY, str(EXAMPLES), "--model", str(EARLIER / model / "model.tflite"), "--json",
                   "--runtime", runtime)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == len(list(EXAMPLES.iterdir())) and all(0 <= r["digit"] <= 9 for r in rows)


def test_edge_doctor_on_earlier_models():
    ok = json.loads(run_cli(*EDGE_DOCTOR, "--model", str(EARLIER / "model-golden" / "model.tflite"), "--json").stdout)
    assert ok["ok"], ok["checks"]
    done = run_cli(*EDGE_DOCTOR, "--model", str(EARLIER / "model-no-golden" / "model.tflite"), "--json", check=False)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and [c["name"] for c in report["checks"] if c["status"] == "fail"] == ["golden"]
    assert "exported without them" in next(c["detail"] for c in report["checks"] if c["name"] == "golden")


def test_an_unknown_run_format_is_one_line(tmp_path):
    run = tmp_path / "future"
    shutil.copytree(EARLIER / "run-bounded", run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "format": "lstm-edge-run/9"}))
    done = run_cli(*LSTM_EDGE, "evaluate", str(run), check=False)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "'lstm-edge-run/9'; this lstm-edge reads" in done.stderr
