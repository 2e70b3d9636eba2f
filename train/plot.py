"""The loss and accuracy curves of a run, as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # no display needed: runs on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: Sequence, path: Path, best: Optional[int] = None) -> None:
    """Write loss and accuracy per epoch (train, validation and test split) to `path`; the best epoch
    (`best`, chosen on the validation split) is marked."""
    epochs = [h.epoch for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    has_val = history[-1].val_accuracy is not None
    loss_ax.plot(epochs, [h.loss for h in history], "o-", label="train")
    acc_ax.plot(epochs, [100 * h.accuracy for h in history], "o-", label="train")
    if has_val:
        loss_ax.plot(epochs, [h.val_loss for h in history], "^-", label="validation")
        acc_ax.plot(epochs, [100 * h.val_accuracy for h in history], "^-", label="validation")
    loss_ax.plot(epochs, [h.test_loss for h in history], "s--", label="test")
    acc_ax.plot(epochs, [100 * h.test_accuracy for h in history], "s--", label="test")
    if best is not None:
        for ax in (loss_ax, acc_ax):
            ax.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best})")
    loss_ax.set(title="loss", xlabel="epoch")
    acc_ax.set(title="accuracy (%)", xlabel="epoch")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
