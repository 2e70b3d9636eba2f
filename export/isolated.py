"""Our modules in fresh Python processes that nothing in the user's folder can take over.

A plain `python -m lstm_edge.edge.predict` puts the current folder first on the child's path, so a
user's own `edge.py`, `lstm_edge.py` or `numpy.py` there would be imported instead of ours. The
child runs isolated (`python -I`: no current folder, no PYTHON* variables, no user site) and gets
this process's own path back, without the current folder: the same packages, found the same way.
"""

from __future__ import annotations

import os
import sys

import lstm_edge


def module_command(module: str, *args: str) -> list[str]:
    """The command line that runs `python -m MODULE ARGS` in an isolated child.

    Args:
      module: one of our modules with a `__main__` block, e.g. "lstm_edge.edge.predict".
    """
    here = os.path.realpath(os.getcwd())
    root = os.path.dirname(os.path.dirname(os.path.abspath(lstm_edge.__file__)))  # the folder holding lstm_edge
    path = [root] + [p for p in sys.path if p and os.path.realpath(p) != here]
    bootstrap = (f"import runpy, sys; sys.path[:0] = {path!r}; "
                 f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    return [sys.executable, "-I", "-c", bootstrap, *args]
