"""The benchmark's chart: batch-1 latency against accuracy, one point per model and runtime, point
area by model size, with the runtime's batch-1 floor as a line."""

from __future__ import annotations

from pathlib import Path

COLOURS = {"lstm-edge": "tab:blue", "fused": "tab:orange", "numpy": "tab:green", "tensorflow": "tab:red"}
LABELS = {"lstm-edge": "lstm-edge (unrolled TFLite)", "fused": "Keras fused LSTM (TFLite)", "numpy": "numpy",
          "tensorflow": "TensorFlow CPU"}


def draw(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r["accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for family, colour in COLOURS.items():
        mine = [r for r in rows if r["family"] == family]
        if not mine:
            continue
        ax.scatter([r["p50_us"] for r in mine], [100 * r["accuracy"] for r in mine],
                   s=[max(20.0, r["size_bytes"] / 1024) for r in mine], c=colour, alpha=0.6,
                   edgecolors="black", linewidths=0.5, label=LABELS[family])
        for r in mine:
            ax.annotate(f"{r['model'].split(' ')[-1]} {r['runtime']}", (r["p50_us"], 100 * r["accuracy"]),
                        fontsize=7, xytext=(4, 3), textcoords="offset points")
    floor = results["roofline"]["latency_floor_us"]
    ax.axvline(floor, color="grey", linestyle="--", linewidth=1)
    ax.annotate(f"batch-1 floor {floor:.0f} us", (floor, ax.get_ylim()[0]), fontsize=7, rotation=90,
                xytext=(-10, 5), textcoords="offset points", color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency, median (us, log scale; 1 thread)")
    ax.set_ylabel(f"accuracy on {results['test_digits']:,} held-out digits (%)")
    m = results["machine"]
    ax.set_title(f"lstm-edge and baselines, same weights; point area = model size\n{m['cpu']}, {m['cores']} cores, "
                 f"Python {m['python']}, {results['created'][:10]} (make bench)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", markerscale=0.5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
