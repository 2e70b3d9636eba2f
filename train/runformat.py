"""The run folder's formats: config.json says which, and a run of an earlier format is read as the
current one here, in one place, so that nothing else needs to know how runs used to look.

Format 2 (written since the package became `lstm_edge`) spells out every setting and where the run's
best model is. Format 1 covered three layouts, told apart by what they lack:

- no `model.cell_bound`: the notebook's unbounded cell (the bound came later);
- no `training.val_split`, no `best`: trained on every training digit, choosing no best epoch; its
  model is its last epoch, in checkpoints/ (there is no best/); history.json's `val_*` figures were
  the test split's;
- no `training.lr_schedule`: trained before schedules, with Adam at a plain learning rate, whose
  checkpoints hold the rate as a variable of the optimizer: resuming such a run builds its optimizer
  the same way (`optimizer.learning_rate` is "float"), else the checkpoint would not fit;
- other settings added later (warm-up, label smoothing, weight decay) are absent where unused, and
  their defaults are what such a run did.
"""

from __future__ import annotations

import copy

FORMAT = "lstm-edge-run/2"
FORMAT_1 = "lstm-edge-run/1"
CHECKPOINTS = "checkpoints"  # the latest epochs, with the optimizer: what --resume continues
BEST = "best"  # the best epoch's model
SCHEDULE, FLOAT_RATE = "schedule", "float"  # the optimizer's learning rate: a schedule object, or a plain number


def upgrade(config: dict, history: list[dict]) -> tuple[dict, list[dict]]:
    """A run's config.json and history.json, of any known format, as the current format.

    Returns:
      (config, history), new objects; the inputs are left as they are.
    Raises:
      ValueError: an unknown format (a newer lstm-edge's, or not a run).
    """
    fmt = config.get("format")
    if fmt == FORMAT:
        return config, history
    if fmt != FORMAT_1:
        raise ValueError(f"format is {fmt!r}; this lstm-edge reads {FORMAT_1!r} and {FORMAT!r}")
    config, history = copy.deepcopy(config), copy.deepcopy(history)
    config["model"] = {"cell_bound": None, **config["model"]}
    config["optimizer"] = {"learning_rate": SCHEDULE if "lr_schedule" in config["training"] else FLOAT_RATE}
    config["training"] = {"val_split": 0, **config["training"]}
    if "best" in config:
        config["best"] = {"folder": BEST, **config["best"]}
    else:
        config["best"] = {"epoch": config["epochs_done"], "chosen_by": "last epoch (no validation digits)",
                          "val_accuracy": None, "test_accuracy": config.get("metrics", {}).get("test_accuracy"),
                          "folder": CHECKPOINTS}
        history = [{**entry, "test_loss": entry["val_loss"], "test_accuracy": entry["val_accuracy"],
                    "val_loss": None, "val_accuracy": None} for entry in history]
    config["format"] = FORMAT
    return config, history
