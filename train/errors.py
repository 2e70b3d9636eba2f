"""The training side's expected failures: each becomes one line on stderr in the CLI."""


class TrainError(Exception):
    """An expected failure: bad data, bad flags, a missing or foreign run folder."""
