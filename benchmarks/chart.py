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
    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    for family, colour in COLOURS.items():
        mine = [r for r in rows if r["family"] == family]
        if mine:
            ax.scatter([r["p50_us"] for r in mine], [100 * r["accuracy"] for r in mine],
                       s=[max(20.0, r["size_bytes"] / 1024) for r in mine], c=colour, alpha=0.6,
                       edgecolors="black", linewidths=0.5, label=LABELS[family])
    # Labels: points of equal accuracy crowd one line, so their labels take turns above and below.
    offsets = [(0, 9), (0, -13), (0, 19), (0, -23)]
    for accuracy in sorted({r["accuracy"] for r in rows}):
        same = sorted((r for r in rows if r["accuracy"] == accuracy), key=lambda r: r["p50_us"])
        for k, r in enumerate(same):
            runtime = r["runtime"].replace("tflite-runtime", "tflite-rt")
            label = r["model"] if r["family"] in ("numpy", "tensorflow") else f"{r['model'].split(' ')[-1]}, {runtime}"
            ax.annotate(label, (r["p50_us"], 100 * accuracy), fontsize=7,
                        xytext=offsets[k % len(offsets)], textcoords="offset points", ha="center",
                        color=COLOURS[r["family"]])
    accuracies = [100 * r["accuracy"] for r in rows]
    ax.set_ylim(min(accuracies) - 0.4, max(accuracies) + 0.3)
    floor = results["roofline"]["latency_floor_us"]
    ax.axvline(floor, color="grey", linestyle="--", linewidth=1)
    ax.annotate(f"LiteRT's batch-1 floor for this model: {floor:.0f} us (invoke alone)", (floor, ax.get_ylim()[1]),
                fontsize=7, rotation=90, xytext=(-9, -4), textcoords="offset points", color="grey", va="top")
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency through the Python API, median (us, log scale; 1 thread)")
    ax.set_ylabel(f"accuracy on {results['test_digits']:,} held-out digits (%)")
    m = results["machine"]
    ax.set_title(f"lstm-edge and baselines, same weights; point area = model size\n{m['cpu']}, {m['cores']} cores, "
                 f"Python {m['python']}, {results['created'][:10]} (make bench)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), markerscale=0.5, borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
