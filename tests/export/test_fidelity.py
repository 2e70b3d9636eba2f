"""int8 that keeps the float model's answers (issue 14), on the model users train: the documented
full-MNIST recipe, its 10,000 test digits, LiteRT and tflite-runtime, the default `--quantize`."""

from __future__ import annotations

import numpy as np

from tests import bars
from tests.conftest import EXPECTED_RUNTIMES, read_manifest
from tests.export.test_export import INT8_MAX_BYTES


def test_full_mnist_int8_keeps_the_float_models_answers_and_confidence(full_mnist_int8):
    manifest = read_manifest(full_mnist_int8)
    parity = manifest["parity"]
    assert parity["digits"] == 10_000
    checks = {c["runtime"]: c for c in parity["verified_on"]}
    assert set(checks) == set(EXPECTED_RUNTIMES)
    for check in checks.values():
        assert not bars.full_mnist_int8_failures(check, parity["float_correct"]), check
    assert manifest["input"]["dtype"] == manifest["output"]["dtype"] == "int8"
    assert full_mnist_int8.stat().st_size <= INT8_MAX_BYTES


def test_full_mnist_bars_fail_a_damaged_model(full_mnist_int8, tmp_path):
    """The same bars, on the same model with its int8 scales made wrong: they must bite."""
    from lstm_edge.edge.contract import scale_pixels
    from lstm_edge.export.verify import check_parity
    from lstm_edge.train.data import load_dataset
    from tests.damage import damage

    data = load_dataset(path=str(read_manifest(full_mnist_int8)["training"]["data_path"]))
    digits_file = tmp_path / "digits.npy"
    np.save(digits_file, scale_pixels(data.x_test))
    # the float reference: what the export measured against (the float32 manifest is not kept): use
    # the undamaged int8 model's own answers, which the test above holds to the float model's
    from lstm_edge.edge.runtime import TFLiteModel

    reference = TFLiteModel(str(full_mnist_int8), runtime="litert").predict(scale_pixels(data.x_test))
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(damage(full_mnist_int8.read_bytes(), "wrong-scale"))
    parity = check_parity(broken, "int8", digits_file, data.y_test, reference, runtimes=["litert"])
    (check,) = parity.checks
    assert bars.full_mnist_int8_failures(check.to_dict(), parity.float_correct)
