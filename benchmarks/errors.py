class BenchError(Exception):
    """A benchmark step failed; the message says which and why, in one line."""
