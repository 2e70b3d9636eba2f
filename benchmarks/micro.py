"""Sizes for real boards: the offline recipe at --units 32, 64 and 128, each exported with
`--quantize --target micro` (so verified in TFLM), and what each needs on a microcontroller.

    python -m benchmarks.micro [--units 32,64,128] [--out DIR]      (make bench-micro)

Writes benchmarks/results/micro.json and micro.md, and docs/benchmarks.md's "micro" section
(benchmarks.report). Flash is the model's bytes (the generated C array);
RAM is the tensor arena the export measured in TFLM, with its margin. A board "fits" when the
model leaves FIRMWARE_FLASH bytes of its flash for TFLM and the application, and the arena leaves
FIRMWARE_RAM bytes of its RAM for stacks and the application: rough allowances, stated, not measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lstm_edge.edge.machine import describe as describe_machine
from lstm_edge.train.recipes import QUICKSTART

from .child import LSTM_EDGE, python
from .errors import BenchError
from .report import RESULTS, publish

UNITS = (32, 64, 128)
RECIPE = (*QUICKSTART, "--seed", "0")
# Bars loose enough that every size gets measured: the table shows what each one kept (small
# models lose more to int8; the export's default bars refuse a 32-unit model that changes 11 digits).
BARS = ("--tolerance", "2", "--min-agreement", "97")
FIRMWARE_FLASH = 256 * 1024  # TFLM with these ops and a small application, an allowance
FIRMWARE_RAM = 64 * 1024  # stacks, heap and the application's buffers, an allowance


@dataclass(frozen=True)
class Board:
    name: str
    ram_bytes: int
    flash_bytes: int
    source: str


BOARDS = (
    Board("Raspberry Pi Pico (RP2040)", 264 * 1024, 2 * 1024 * 1024,
          "RP2040 datasheet: 264 kB on-chip SRAM; Pico datasheet: 2 MB QSPI flash"),
    Board("ESP32-S3-DevKitC-1 N8", 512 * 1024, 8 * 1024 * 1024,
          "ESP32-S3 datasheet: 512 KB SRAM; DevKitC-1 user guide: ESP32-S3-WROOM-1-N8, 8 MB flash"),
    Board("Cortex-M4, 256 KB RAM (nRF52840)", 256 * 1024, 1024 * 1024,
          "nRF52840 product specification: 1 MB flash, 256 KB RAM"),
)


def fits(board: Board, flash: int, arena: int) -> bool:
    return flash + FIRMWARE_FLASH <= board.flash_bytes and arena + FIRMWARE_RAM <= board.ram_bytes


def measure(units: tuple[int, ...], work: Path, log=print) -> dict:
    rows = []
    for n in units:
        run, model = work / f"run-{n}", work / f"units{n}" / "model.tflite"
        model.parent.mkdir()
        log(f"training --units {n} (the offline recipe) and exporting --target micro ...")
        python(*LSTM_EDGE, "train", *RECIPE, "--units", str(n), "--quiet", "--out", str(run))
        python(*LSTM_EDGE, "export", str(run), "--quantize", "--target", "micro", "--out", str(model), *BARS)
        manifest = json.loads(model.with_suffix(".json").read_text())
        checks = {c["runtime"]: c for c in manifest["parity"]["verified_on"]}
        micro, tflm = manifest["micro"], checks["tflite-micro"]
        rows.append({"units": n, "flash_bytes": manifest["size_bytes"], "arena_bytes": micro["arena_bytes"],
                     "arena_measured_bytes": micro["arena_measured_bytes"], "ops": micro["ops"],
                     "digits": tflm["digits"], "float_accuracy": manifest["parity"]["float_accuracy"],
                     "tflm_accuracy": tflm["accuracy"], "tflm_agreement": tflm["agreement"],
                     "tflm_latency_us": tflm["latency_us"],
                     "litert_latency_us": checks.get("litert", {}).get("latency_us"),
                     "fits": [b.name for b in BOARDS if fits(b, manifest["size_bytes"], micro["arena_bytes"])],
                     "tflite_micro": tflm["version"]})
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": describe_machine(),
            "recipe": " ".join(RECIPE), "export_bars": " ".join(BARS), "rows": rows,
            "boards": [{"name": b.name, "ram_bytes": b.ram_bytes, "flash_bytes": b.flash_bytes, "source": b.source}
                       for b in BOARDS],
            "allowances": {"firmware_flash_bytes": FIRMWARE_FLASH, "firmware_ram_bytes": FIRMWARE_RAM}}


def render(r: dict) -> str:
    m = r["machine"]
    rows = r["rows"]
    lines = [f"Measured by `make bench-micro` on {m['cpu']} ({m['cores']} cores, {m['machine']}), "
             f"{r['created'][:10]}: `lstm-edge train {r['recipe']} --units N`, then `export --quantize --target micro "
             f"{r['export_bars']}` "
             f"(TFLM {rows[0]['tflite_micro'] if rows else '?'}, reference kernels). Accuracy on the "
             f"{rows[0]['digits'] if rows else '?':,} held-out sample digits; TFLM latency is one digit on x86 "
             "(a Cortex-M runs the same kernels much slower: only the board can tell).", "",
             "| units | flash (model) | RAM (tensor arena) | float accuracy | TFLM accuracy | TFLM = float digit | "
             "TFLM latency, x86 | fits |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['units']} | {row['flash_bytes'] / 1024:,.1f} KB | {row['arena_bytes'] / 1024:,.1f} KB "
                     f"({row['arena_measured_bytes']:,} B measured) | {100 * row['float_accuracy']:.1f}% | "
                     f"{100 * row['tflm_accuracy']:.1f}% | {100 * row['tflm_agreement']:.1f}% | "
                     f"{row['tflm_latency_us'] / 1000:.2f} ms | {', '.join(row['fits']) or 'none of these'} |")
    allow = r["allowances"]
    lines += ["", f"A board fits when the model leaves {allow['firmware_flash_bytes'] // 1024} KB of its flash "
              f"for TFLM and the application, and the arena leaves {allow['firmware_ram_bytes'] // 1024} KB of its "
              "RAM (allowances, not measurements). Boards:", ""]
    for b in r["boards"]:
        lines.append(f"- {b['name']}: {b['ram_bytes'] // 1024} KB RAM, {b['flash_bytes'] // 1024 // 1024} MB "
                     f"flash ({b['source']})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", default=",".join(map(str, UNITS)), help="comma-separated unit counts")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    try:
        units = tuple(int(u) for u in args.units.split(",") if u)
    except ValueError:
        parser.error("--units: comma-separated whole numbers")
    try:
        with tempfile.TemporaryDirectory(prefix="lstm-edge-micro-") as work:
            results = measure(units, Path(work), log=lambda message: print(message, flush=True))
    except BenchError as e:
        parser.exit(1, f"bench-micro: error: {e}\n")
    table = render(results)
    publish(args.out, "micro", results, table)
    print(table)


if __name__ == "__main__":
    main()
