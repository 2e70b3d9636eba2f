"""`make bench`: lstm-edge beside its baselines, on this machine."""
