"""`lstm-edge train` and `evaluate` through the real CLI on real digits."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from tests.bars import FIXTURE_SEED, held_out_failures
from tests.conftest import LSTM_EDGE, ROOT, TRAIN_EPOCHS, run_cli


def test_trained_run_folder(trained_run):
    config = json.loads((trained_run / "config.json").read_text())
    history = json.loads((trained_run / "history.json").read_text())
    assert config["model"] == {"units": 128, "cell": "basic", "cell_bound": 1.0}
    assert config["training"]["lr"] == 0.01 and config["training"]["batch_size"] == 100
    assert config["dataset"] == "mnist-sample" and config["epochs_done"] == TRAIN_EPOCHS
    assert config["training"]["seed"] == FIXTURE_SEED
    assert {"tensorflow", "keras", "numpy", "python"} <= set(config["versions"])
    assert len(history) == TRAIN_EPOCHS and history[-1]["digits_per_second"] > 0
    assert (trained_run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # The best epoch is chosen on the 400 validation digits; the test split is only recorded.
    assert config["validation_digits"] == 400 and config["best"]["chosen_by"] == "validation accuracy"
    best = max(history, key=lambda e: (e["val_accuracy"], -e["epoch"]))
    assert [e["epoch"] for e in history if e["best"]] == [best["epoch"]] == [config["best"]["epoch"]]
    assert config["metrics"]["test_accuracy"] == best["test_accuracy"] == config["best"]["test_accuracy"]
    assert (trained_run / "best" / f"ckpt-{best['epoch']}.index").is_file()


def test_evaluate_and_export_take_the_best_epoch_not_the_last(trained_run):
    from lstm_edge.train.run import load_run, restore_model

    run = load_run(trained_run)
    best, last = restore_model(run), restore_model(run, "last")
    same = all((a.numpy() == b.numpy()).all() for a, b in zip(best.weights, last.weights))
    assert same == (run.best_epoch == run.epochs_done)


def test_evaluate_json(trained_run):
    done = run_cli(*LSTM_EDGE, "evaluate", str(trained_run), "--json")
    result = json.loads(done.stdout)
    assert sum(map(sum, result["confusion"])) == 1000 and set(result["per_class"]) == {str(d) for d in range(10)}
    assert not held_out_failures(sum(result["confusion"][d][d] for d in range(10)))
    config = json.loads((trained_run / "config.json").read_text())
    assert abs(result["accuracy"] - config["metrics"]["test_accuracy"]) < 1e-9


def test_seed_repeats_and_resume_continues_exactly(tmp_path):
    common = ("train", "--dataset", "mnist-sample", "--units", "32", "--quiet")
    run_cli(*LSTM_EDGE, *common, "--epochs", "2", "--out", str(tmp_path / "a"))
    run_cli(*LSTM_EDGE, *common, "--epochs", "1", "--out", str(tmp_path / "b"))
    run_cli(*LSTM_EDGE, "train", "--resume", str(tmp_path / "b"), "--epochs", "2", "--quiet")
    a = json.loads((tmp_path / "a" / "history.json").read_text())
    b = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [e["loss"] for e in a] == pytest.approx([e["loss"] for e in b], rel=1e-6)
    assert [e["val_accuracy"] for e in a] == [e["val_accuracy"] for e in b]


@pytest.mark.parametrize("args, message", [
    (("--epochs", "0"), "Invalid value for '--epochs': 0 is not in the range x>=1"),
    (("--lr", "-0.1"), "Invalid value for '--lr'"),
    (("--dataset", "cifar"), "Invalid value for '--dataset'"),
    (("--data", "/nonexistent/mnist.npz"), "no such file or folder"),
    (("--lr-schedule", "step"), "Invalid value for '--lr-schedule'"),
    (("--warmup-epochs", "2"), "warm-up epochs must be 0 or more and fewer than the epochs (got 2.0)"),
    (("--dataset", "mnist-sample", "--val-split", "4000"), "leaves no training digits"),
    (("--dataset", "mnist-sample", "--val-split", "-1"), "Invalid value for '--val-split'"),
    (("--cell", "keras", "--cell-bound", "1"), "keras.layers.LSTMCell keeps its cell state inside"),
    (("--cell-bound", "wide"), "--cell-bound must be a positive number or none"),
    (("--cell-bound", "-1"), "cell bound must be a positive number or none"),
])
def test_bad_flags_give_one_line(tmp_path, args, message):
    done = run_cli(*LSTM_EDGE, "train", *args, "--out", str(tmp_path / "x"), check=False)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr


def test_bad_run_folders(tmp_path, trained_run):
    assert "no such run folder" in run_cli(*LSTM_EDGE, "evaluate", str(tmp_path / "none"), check=False).stderr
    (tmp_path / "empty").mkdir()
    assert "not an lstm-edge run folder" in run_cli(*LSTM_EDGE, "evaluate", str(tmp_path / "empty"),
                                                    check=False).stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    config = json.loads((trained_run / "config.json").read_text())
    config["model"]["units"] = 64  # config says 64 units, the checkpoint holds 128
    (foreign / "config.json").write_text(json.dumps(config))
    for folder in ("checkpoints", "best"):
        (foreign / folder).symlink_to(trained_run / folder)
    done = run_cli(*LSTM_EDGE, "evaluate", str(foreign), check=False)
    assert done.returncode == 1 and "does not fit" in done.stderr and "Traceback" not in done.stderr
    (foreign / "config.json").write_text("{broken")
    assert "corrupt run config" in run_cli(*LSTM_EDGE, "evaluate", str(foreign), check=False).stderr
    done = run_cli(*LSTM_EDGE, "train", "--resume", str(trained_run), "--units", "64", check=False)
    assert "a resumed run keeps its settings" in done.stderr
    done = run_cli(*LSTM_EDGE, "train", "--resume", str(trained_run), "--cell-bound", "none", check=False)
    assert "trained with --cell-bound 1.0; a resumed run keeps its settings" in done.stderr


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from lstm_edge.train.cli import main
        main(["train", "--dataset", "mnist-sample", "--units", "32", "--epochs", "2", "--strategy", "mirrored",
              "--device", "cpu", "--quiet", "--out", r"{tmp_path / 'mirrored'}"], standalone_mode=False)
    """)
    done = run_cli("-c", script, cwd=ROOT)
    assert "2 replica(s)" in done.stdout
    config = json.loads((tmp_path / "mirrored" / "config.json").read_text())
    assert config["replicas"] == 2 and config["strategy"] == "mirrored"
    assert config["metrics"]["test_accuracy"] > 0.6  # two epochs of a 32-unit model learn; a broken sync would not


def test_tensorflow_log_stays_off_the_terminal(trained_run, tmp_path):
    """Without a GPU, TensorFlow writes cuda and oneDNN lines at import, some before its log level
    is read: a user sees ours alone, unless they ask (--verbose)."""
    done = run_cli(*LSTM_EDGE, "evaluate", str(tmp_path / "none"), check=False)  # fails after TensorFlow started
    assert done.stderr.strip().splitlines() == [f"Error: {tmp_path / 'none'}: no such run folder"]
    assert run_cli(*LSTM_EDGE, "evaluate", str(trained_run)).stderr == ""
    verbose = run_cli(*LSTM_EDGE, "evaluate", str(trained_run), "--verbose")
    assert verbose.stderr.strip(), "TensorFlow wrote nothing here: this test no longer proves the hiding"


def test_a_users_own_tensorflow_log_level_is_honoured_and_the_error_is_still_last(tmp_path):
    """TF_CPP_MIN_LOG_LEVEL set by the user lets TensorFlow write what that level allows (often set
    to 2 on TensorFlow's advice): the command's own failure is still one line, the last."""
    done = run_cli(*LSTM_EDGE, "evaluate", str(tmp_path / "none"), env={"TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"Error: {tmp_path / 'none'}: no such run folder"


def test_progress_bar_shows_rounded_grouped_figures(tmp_path):
    done = run_cli(*LSTM_EDGE, "train", "--dataset", "mnist-sample", "--units", "8", "--epochs", "1",
                   "--out", str(tmp_path / "run"))
    # 3,600 training digits once 400 validate: 36 batches of 100
    bar = next(line for line in done.stdout.splitlines() if line.startswith("36/36 ["))
    assert re.search(r" - loss: \d\.\d{4} - accuracy: \d{1,3}\.\d\d% - digits/s: \d{1,3}(,\d{3})*$", bar), bar
