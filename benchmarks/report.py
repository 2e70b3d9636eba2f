"""Where the benchmarks write what they measured: benchmarks/results/ (JSON, markdown, pictures),
and their sections of docs/benchmarks.md, each between its own markers, which only the benchmark
that owns a section rewrites. Never the README: it quotes no figure that a run could change."""

from __future__ import annotations

import json
from pathlib import Path

from .child import ROOT

RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"


def markers(section: str) -> tuple[str, str]:
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


def write_section(section: str, markdown: str, doc: Path = DOCS) -> bool:
    """Replace the doc's text between `section`'s markers; False when the doc or its markers are missing."""
    if not doc.exists():
        return False
    text = doc.read_text()
    start, end = markers(section)
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    doc.write_text(f"{head}{start}\n{markdown}\n{end}{rest.split(end, 1)[1]}")
    return True


def publish(out: Path, name: str, results: dict, markdown: str, log=print,
            sections: dict[str, str] | None = None) -> None:
    """`out`/NAME.json and NAME.md; with `out` the checkout's own results folder, the docs' sections too
    (`sections`: section -> markdown; default NAME -> the markdown)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    if out.resolve() != RESULTS.resolve():
        return
    for section, text in (sections or {name: markdown}).items():
        if write_section(section, text):
            log(f"updated {DOCS.relative_to(ROOT)} ({section})")
