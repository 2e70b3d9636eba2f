"""Run folders of earlier formats, read as the current format (train.runformat)."""

from __future__ import annotations

import pytest

from lstm_edge.train.runformat import BEST, CHECKPOINTS, FORMAT, upgrade

EPOCH = {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "seconds": 1.0,
         "digits_per_second": 100.0}


def format_1(**extra) -> dict:
    return {"format": "lstm-edge-run/1", "model": {"units": 16, "cell": "basic"},
            "training": {"epochs": 1, "batch_size": 100, "lr": 0.01, "clip_norm": 5.0, "seed": 0, "augment": False},
            "epochs_done": 1, "metrics": {"test_accuracy": 0.85}, **extra}


def test_a_run_without_validation_is_its_last_epoch_in_checkpoints_and_its_val_figures_were_the_tests():
    config, history = upgrade(format_1(), [EPOCH])
    assert config["format"] == FORMAT
    assert config["model"]["cell_bound"] is None and config["training"]["val_split"] == 0
    assert config["best"]["epoch"] == 1 and config["best"]["folder"] == CHECKPOINTS
    assert (history[0]["test_accuracy"], history[0]["val_accuracy"]) == (0.85, None)


def test_a_run_with_a_best_epoch_keeps_it_in_best():
    best = {"epoch": 1, "chosen_by": "validation accuracy", "val_accuracy": 0.9, "test_accuracy": 0.85}
    entry = {**EPOCH, "test_loss": 0.3, "test_accuracy": 0.85}
    config, history = upgrade(format_1(best=best, model={"units": 16, "cell": "basic", "cell_bound": 1.0}), [entry])
    assert config["best"] == {**best, "folder": BEST} and config["model"]["cell_bound"] == 1.0
    assert history == [entry]


def test_the_current_format_is_read_as_it_is_and_the_input_is_left_alone():
    old = format_1()
    upgrade(old, [EPOCH])
    assert old == format_1()  # not changed in place
    current = {"format": FORMAT, "anything": 1}
    assert upgrade(current, []) == (current, [])


def test_an_unknown_format_is_named():
    with pytest.raises(ValueError, match="'lstm-edge-run/9'; this lstm-edge reads"):
        upgrade({"format": "lstm-edge-run/9"}, [])
