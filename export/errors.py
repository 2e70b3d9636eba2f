"""The export side's expected failures: each becomes one line on stderr in the CLI."""


class ExportError(Exception):
    """An expected failure: unknown mode, unwritable output, failed parity."""
