"""The edge runtime on a real exported model: the API, the CLI, and accuracy on image files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from benchmarks.forms import off_centre_transparent, paper_photo
from lstm_edge.edge import DigitClassifier, ImageError, ModelError, Prediction, scale_pixels
from tests.bars import CLI_MIN_CORRECT_OF_500, files_failures
from tests.conftest import EDGE_BENCH, EDGE_CLASSIFY, EXPECTED_RUNTIMES, ROOT, needs_tflite_runtime, run_cli

IMAGES = 500  # held-out sample digits saved as files, per form (the bars in tests/bars.py count of 500)


@pytest.fixture(scope="module")
def classifier(int8_model):
    return DigitClassifier(int8_model, runtime="litert")


@pytest.fixture(scope="module")
def digit_files(sample, tmp_path_factory):
    """The first held-out digits as files in three forms a user has: MNIST PNG, paper JPEG, transparent."""
    root = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    for form in ("png28", "paper", "transparent"):
        (root / form).mkdir()
    for i, digit in enumerate(sample.x_test[:IMAGES]):
        Image.fromarray(digit).save(root / "png28" / f"{i:04d}.png")
        paper_photo(digit, scale=6, rng=rng).save(root / "paper" / f"{i:04d}.jpg", quality=85)
        off_centre_transparent(digit).save(root / "transparent" / f"{i:04d}.png")
    return root


def test_classify_returns_a_frozen_prediction(classifier, sample):
    prediction = classifier.classify(sample.x_test[0])
    assert isinstance(prediction, Prediction)
    assert prediction.digit == int(np.argmax(prediction.probabilities))
    assert abs(sum(prediction.probabilities) - 1) < 0.02 and len(prediction.probabilities) == 10
    assert prediction.top_k(3)[0] == (prediction.digit, prediction.confidence)
    with pytest.raises(AttributeError):
        prediction.digit = 3


def test_classify_many_matches_classify(classifier, sample):
    raw = scale_pixels(sample.x_test[:50])
    many = classifier.classify_many(list(raw), preprocess=False)
    one_by_one = [classifier.classify(d, preprocess=False) for d in raw[:10]]
    assert [p.digit for p in many[:10]] == [p.digit for p in one_by_one]
    np.testing.assert_allclose([p.probabilities for p in many[:10]], [p.probabilities for p in one_by_one], atol=1e-6)


def test_preprocess_false_checks_the_contract(classifier):
    with pytest.raises(ImageError):
        classifier.classify(np.zeros((28, 27)), preprocess=False)
    with pytest.raises(ImageError):
        classifier.classify(np.full((28, 28), 3.0), preprocess=False)


@pytest.mark.parametrize("form", ["png28", "paper", "transparent"])
def test_image_files_score_within_one_point_of_raw_arrays(classifier, digit_files, sample, form):
    labels = sample.y_test[:IMAGES]
    raw = classifier.classify_many(list(scale_pixels(sample.x_test[:IMAGES])), preprocess=False)
    files = sorted((digit_files / form).iterdir())
    from_files = classifier.classify_many(files)
    assert not files_failures([p.digit for p in raw], [p.digit for p in from_files], labels), form


@pytest.mark.parametrize("runtime", ["litert", pytest.param("tflite-runtime", marks=needs_tflite_runtime)])
def test_cli_classifies_a_folder_json(int8_model, digit_files, sample, runtime):
    done = run_cli(*EDGE_CLASSIFY, str(digit_files / "png28"), "--model", str(int8_model), "--json",
                   "--top-k", "3", "--runtime", runtime)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == IMAGES
    assert set(rows[0]) == {"path", "digit", "confidence", "top_k", "runtime"}
    assert rows[0]["runtime"].startswith(runtime) and len(rows[0]["top_k"]) == 3
    assert sum(r["digit"] == label for r, label in zip(rows, sample.y_test[:IMAGES])) >= CLI_MIN_CORRECT_OF_500


def test_cli_human_output_show_and_verbose(int8_model, digit_files):
    image = digit_files / "png28" / "0000.png"
    done = run_cli(*EDGE_CLASSIFY, str(image), "--show", "--verbose", env={"LSTM_EDGE_MODEL": str(int8_model)})
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"{image}: ") and first.endswith("%)")
    assert len(done.stdout.splitlines()) == 1 + 28
    assert "loaded" in done.stderr and "inference" in done.stderr
    # each image's stages, so a user on a Pi sees where the time goes
    stages = next(line for line in done.stderr.splitlines() if line.startswith(f"{image}: "))
    assert [part.split()[0] for part in stages.split(": ", 1)[1].split(", ")] == ["decode", "ink", "segment", "layout"]


def test_cli_jobs_prepare_side_by_side_with_the_same_answers_in_order(int8_model, digit_files, tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    images = [*sorted((digit_files / "paper").iterdir())[:40], tmp_path / "text.png"]
    args = (*map(str, images), "--model", str(int8_model), "--json")
    one, two = (run_cli(*EDGE_CLASSIFY, *args, "--jobs", jobs, check=False) for jobs in ("1", "2"))
    assert one.returncode == two.returncode == 1  # the bad image fails alone, in both
    assert one.stdout == two.stdout and len(one.stdout.splitlines()) == 40
    assert one.stderr == two.stderr and "text.png: error: not an image" in two.stderr


def test_cli_reads_standard_input(int8_model, digit_files):
    data = (digit_files / "png28" / "0001.png").read_bytes()
    done = run_cli(*EDGE_CLASSIFY, "-", "--model", str(int8_model), input=data)
    assert done.stdout.decode().startswith("-: ")


def test_cli_bad_images_are_reported_and_the_rest_go_on(int8_model, digit_files, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "blank.png").write_bytes((digit_files / "png28" / "0000.png").read_bytes())
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    empty_folder = tmp_path / "nothing"
    empty_folder.mkdir()
    good = digit_files / "png28" / "0002.png"
    done = run_cli(*EDGE_CLASSIFY, str(tmp_path / "missing.png"), str(tmp_path / "empty.png"), str(good),
                   str(tmp_path / "text.png"), str(tmp_path / "blank.png"), str(empty_folder),
                   "--model", str(int8_model), check=False)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [line for line in done.stdout.splitlines() if line.startswith(str(good))]
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 5 and all(": error: " in line for line in errors)
    assert "Traceback" not in done.stderr
    assert any("no digit found" in line for line in errors)


@pytest.mark.parametrize("content, message", [
    (b"garbage that is not a model", "not a TFLite model"),
    (None, "no such model file"),
])
def test_cli_bad_model_exits_2_with_one_line(tmp_path, digit_files, content, message):
    model = tmp_path / "bad.tflite"
    if content is not None:
        model.write_bytes(content)
    done = run_cli(*EDGE_CLASSIFY, str(digit_files / "png28"), "--model", str(model), check=False)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def test_cli_usage_error_exits_2():
    assert run_cli(*EDGE_CLASSIFY, check=False).returncode == 2


def test_truncated_model_is_refused(int8_model, tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(int8_model.read_bytes()[:5000])
    with pytest.raises(ModelError):
        DigitClassifier(cut, runtime="litert")


def test_manifest_hash_mismatch_is_refused(int8_model, tmp_path):
    copy = tmp_path / "model.tflite"
    data = bytearray(int8_model.read_bytes())
    data[-1] ^= 0xFF  # one byte changed: not the model that was verified
    copy.write_bytes(bytes(data))
    copy.with_suffix(".json").write_text(int8_model.with_suffix(".json").read_text())
    with pytest.raises(ModelError, match="does not match its manifest"):
        DigitClassifier(copy, runtime="litert")


def test_edge_runs_without_tensorflow(int8_model, digit_files, tmp_path):
    """A fake `tensorflow` that cannot be imported: the edge must never need it."""
    blocker = tmp_path / "blocker" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('TensorFlow is not on this device')\n")
    env = {"PYTHONPATH": f"{blocker.parent}:{ROOT}"}
    for runtime in EXPECTED_RUNTIMES:
        done = run_cli(*EDGE_CLASSIFY, str(digit_files / "png28"), "--model", str(int8_model), "--runtime", runtime,
                       env=env)
        assert len(done.stdout.splitlines()) == IMAGES
    done = run_cli("-c", "import sys, lstm_edge.edge.cli, lstm_edge.edge.bench; print('tensorflow' in sys.modules)",
                   env=env)
    assert done.stdout.strip() == "False"


def test_edge_bench_reports_every_runtime_and_the_best_batch_size(int8_model):
    done = run_cli(*EDGE_BENCH, str(int8_model), "--json", "--repeats", "20", "--threads", "1",
                   "--batch-size", "4", "--batch-size", "32")
    report = json.loads(done.stdout)
    assert [r["runtime"] for r in report["results"]] == EXPECTED_RUNTIMES
    for r in report["results"]:
        assert r["threads"] == 1 and r["repeats"] == 20
        assert 0 < r["p50_us"] <= r["p90_us"] <= r["p99_us"] and 0 < r["invoke_p50_us"]
        sizes = dict(r["by_batch_size"])
        assert sorted(sizes) == [4, 32]
        assert r["digits_per_second"] == max(sizes.values()) and sizes[r["batch_size"]] == r["digits_per_second"]


@pytest.mark.parametrize("args", [("--batch-size", "0"), ("--threads", "0"), ("--repeats", "3")])
def test_edge_bench_bad_arguments_exit_2(int8_model, args):
    done = run_cli(*EDGE_BENCH, str(int8_model), *args, check=False)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("edge-bench: error:")


THREAD_CPU = r"""
import io, os, sys, time
import numpy as np
from PIL import Image
from benchmarks.forms import paper_frame, paper_photo
from lstm_edge.edge import DigitClassifier
from lstm_edge.train.data import load_dataset

digits = load_dataset("mnist-sample").x_test[:40]
rng = np.random.default_rng(0)
photos = []
for digit in digits:
    buffer = io.BytesIO()
    paper_photo(digit, scale=6, rng=rng).save(buffer, "JPEG")
    photos.append(buffer.getvalue())
frame = paper_frame(np.concatenate(list(digits[:4]), axis=1), (1280, 720), rng=rng)
classifier = DigitClassifier(sys.argv[1])

def cpu(task):
    with open(f"/proc/self/task/{task}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

def ticks():
    tasks = os.listdir("/proc/self/task")
    return cpu(os.getpid()), sum(cpu(t) for t in tasks if int(t) != os.getpid())

# Counted from after a first pass and a pause: OpenBLAS's threads spin for a while once started (at
# numpy's import) or woken (by a picture size's first frame fit), a fixed cost of ~0.1 s each, not
# a share of the work (they took 12 + 13 ticks here whatever the code read; run alone, with the
# other core idle, that was 30% of this loop's ticks).
classifier.classify_many(photos)
classifier.read_number(frame)
time.sleep(0.5)
main_before, others_before = ticks()
for _ in range(5):
    classifier.classify_many(photos)
    classifier.read_number(frame)
main_after, others_after = ticks()
print(main_after - main_before, others_after - others_before)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_reading_images_keeps_to_one_core(int8_model):
    """Nothing on the way from an image to its answer hands work to a thread pool that then spins:
    OpenBLAS shares a 4096 x 6 matrix-vector product with its threads, which then burn a core
    while they wait for more (a server's clients, or --jobs, lose that core)."""
    result = run_cli("-c", THREAD_CPU, str(int8_model), env={"PYTHONPATH": str(ROOT)})
    main, others = map(int, result.stdout.split())
    assert main > 0 and others < 0.2 * main, f"other threads took {others} ticks of CPU to the main thread's {main}"
