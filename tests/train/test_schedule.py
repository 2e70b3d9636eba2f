"""The learning-rate schedule and the choice of the best epoch."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("tensorflow")

from lstm_edge.train.errors import TrainError  # noqa: E402
from lstm_edge.train.loop import EpochResult, LearningRate, TrainConfig, best_epoch, make_optimizer  # noqa: E402


def rates(schedule: LearningRate, steps) -> list[float]:
    return [float(schedule(step)) for step in steps]


def test_constant_is_the_seed_and_warm_up_climbs_linearly():
    assert rates(LearningRate(0.01, "constant", 100), [0, 50, 99]) == pytest.approx([0.01] * 3)
    warm = LearningRate(0.01, "constant", 100, warmup_steps=10)
    assert rates(warm, [0, 4, 9, 10, 99]) == pytest.approx([0.001, 0.005, 0.01, 0.01, 0.01])


def test_cosine_falls_from_the_peak_to_zero_after_the_warm_up():
    cosine = LearningRate(0.01, "cosine", 110, warmup_steps=10)
    assert rates(cosine, [0, 9]) == pytest.approx([0.001, 0.01])
    assert float(cosine(60)) == pytest.approx(0.005, rel=1e-5)  # half way: half the peak
    assert float(cosine(110)) == pytest.approx(0.0, abs=1e-9)
    middle = rates(cosine, range(10, 111))
    assert all(a >= b for a, b in zip(middle, middle[1:]))


def test_the_optimizer_follows_its_step_count():
    """A resumed run restores the optimizer's step count, so its schedule goes on where it stopped."""
    optimizer = make_optimizer(TrainConfig(epochs=4, lr_schedule="cosine", warmup_epochs=1), steps_per_epoch=10)
    optimizer.iterations.assign(25)
    assert float(optimizer.learning_rate) == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 15 / 30)), rel=1e-5)
    assert type(make_optimizer(TrainConfig(weight_decay=1e-4), 10)).__name__ == "AdamW"


@pytest.mark.parametrize("kwargs, message", [
    ({"lr_schedule": "step"}, "unknown learning-rate schedule 'step'"),
    ({"warmup_epochs": 2}, "fewer than the epochs"),
    ({"label_smoothing": 1.0}, "label smoothing must be in"),
    ({"weight_decay": -1.0}, "weight decay must be 0 or more"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(TrainError, match=message):
        TrainConfig(**kwargs)


def epoch(number: int, val: float | None, test: float = 0.9) -> EpochResult:
    return EpochResult(number, 0.1, 0.95, 0.2 if val is not None else None, val, 0.2, test, 1.0, 1000.0)


def test_best_epoch_is_chosen_on_validation_never_on_test():
    history = [epoch(1, 0.90, test=0.99), epoch(2, 0.95, test=0.91), epoch(3, 0.95, test=0.92), epoch(4, 0.93)]
    assert best_epoch(history).epoch == 2  # the earliest of equals; the test split has no say
    assert best_epoch([epoch(1, None), epoch(2, None)]).epoch == 2  # no validation digits: the last
