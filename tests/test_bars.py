"""The suite's bars (tests/bars.py) still bite: each family fails on a deliberately damaged model,
through the same check the real tests use. A bar that a broken model passes proves nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.forms import off_centre_transparent
from lstm_edge.edge import DigitClassifier, scale_pixels
from tests import bars
from tests.damage import damage

DAMAGES = ["shuffled-weights", "wrong-scale"]


@pytest.fixture(scope="module")
def damaged(exports, tmp_path_factory):
    """(mode, how) -> path of the exported model with that fault."""
    pytest.importorskip("tensorflow")
    folder = tmp_path_factory.mktemp("damaged")

    def make(mode: str, how: str):
        out = folder / f"{mode}-{how}.tflite"
        if not out.exists():
            out.write_bytes(damage(exports(mode)[0].read_bytes(), how))
        return out

    return make


def classify(model, digits: np.ndarray):
    return DigitClassifier(model, runtime="litert").classify_many(list(scale_pixels(digits)), preprocess=False)


@pytest.mark.parametrize("how", DAMAGES)
def test_accuracy_floors_fail_a_damaged_model(damaged, sample, how):
    predictions = classify(damaged("int8", how), sample.x_test)
    correct = sum(p.digit == label for p, label in zip(predictions, sample.y_test))
    assert bars.held_out_failures(correct), correct
    assert sum(p.digit == label for p, label in zip(predictions[:500], sample.y_test[:500])) \
        < bars.CLI_MIN_CORRECT_OF_500


@pytest.mark.parametrize("mode, how", [("none", "shuffled-weights"), ("int8", "shuffled-weights"),
                                       ("int8", "wrong-scale")])
def test_parity_bars_fail_a_damaged_model(damaged, exports, sample, tmp_path, mode, how):
    """The export's own check refuses it, and so do the suite's bars on its record."""
    from lstm_edge.export.verify import check_parity

    digits_file = tmp_path / "digits.npy"
    np.save(digits_file, scale_pixels(sample.x_test))
    reference = np.array([p.probabilities for p in classify(exports("none")[0], sample.x_test)], np.float64)
    parity = check_parity(damaged(mode, how), mode, digits_file, sample.y_test, reference, runtimes=["litert"])
    (check,) = parity.checks
    assert not check.passed, parity.summary()
    assert bars.parity_failures(check.to_dict(), parity.float_correct, mode)


def test_int8_size_bar_fails_a_float_model(float_model):
    from tests.export.test_export import INT8_MAX_BYTES

    assert float_model.stat().st_size > INT8_MAX_BYTES


def test_files_bar_fails_a_broken_recipe(int8_model, sample, tmp_path, monkeypatch):
    """Digits off-centre on a larger canvas squeezed whole into 28x28, without MNIST's crop, fit and
    centring."""
    import lstm_edge.edge.preprocess

    files = []
    for i, digit in enumerate(sample.x_test[:500]):
        files.append(tmp_path / f"{i:04d}.png")
        off_centre_transparent(digit).save(files[-1])
    classifier = DigitClassifier(int8_model, runtime="litert")
    raw = [p.digit for p in classifier.classify_many(list(scale_pixels(sample.x_test[:500])), preprocess=False)]
    assert not bars.files_failures(raw, [p.digit for p in classifier.classify_many(files)], sample.y_test[:500])

    def squeezed(ink):
        image = Image.fromarray(np.ascontiguousarray(ink, np.float32), "F").resize((28, 28), Image.Resampling.BILINEAR)
        return np.clip(np.asarray(image, np.float32), 0, 1)

    monkeypatch.setattr(lstm_edge.edge.preprocess, "mnist_layout", squeezed)
    broken = [p.digit for p in classifier.classify_many(files)]
    assert bars.files_failures(raw, broken, sample.y_test[:500])


@pytest.mark.parametrize("how", DAMAGES)
def test_device_bars_fail_a_damaged_model(int8_model, damaged, sample, how):
    """What a device that computed something else would answer, against x86's answers."""
    digits = sample.x_test[5::25][:80]

    def answers(model):
        return {str(i): p.probabilities for i, p in enumerate(classify(model, digits))}

    good = answers(int8_model)
    assert not bars.device_failures(good, answers(int8_model), quantized=True)
    assert bars.device_failures(good, answers(damaged("int8", how)), quantized=True)
