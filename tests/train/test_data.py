"""Datasets: the offline sample, local files in Keras' and MNIST's formats, and their failures."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from lstm_edge.train.data import balanced_subset, load_dataset, read_idx, validation_size
from lstm_edge.train.errors import TrainError


def write_idx(path, array: np.ndarray, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_sample_is_a_stratified_4000_1000_split_of_real_digits(sample):
    assert (len(sample.x_train), len(sample.x_test)) == (4000, 1000)
    assert np.bincount(sample.y_test).tolist() == [100] * 10
    assert np.bincount(sample.y_train).tolist() == [400] * 10
    assert sample.x_train.dtype == np.uint8 and sample.x_train.max() == 255
    again = load_dataset("mnist-sample")
    np.testing.assert_array_equal(again.y_test, sample.y_test)  # fixed seed: the same split every time
    train_rows = {row.tobytes() for row in sample.x_train}
    assert not any(row.tobytes() in train_rows for row in sample.x_test)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder(tmp_path, sample, compress):
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", sample.x_train[:50], compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", sample.y_train[:50], compress)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", sample.x_test[:20], compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", sample.y_test[:20], compress)
    data = load_dataset(path=str(tmp_path))
    np.testing.assert_array_equal(data.x_test, sample.x_test[:20])
    np.testing.assert_array_equal(data.y_train, sample.y_train[:50])


def test_keras_npz(tmp_path, sample):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=sample.x_train[:30], y_train=sample.y_train[:30], x_test=sample.x_test[:10],
             y_test=sample.y_test[:10])
    data = load_dataset(path=str(path))
    assert (len(data.x_train), len(data.x_test)) == (30, 10)


def test_corrupt_and_mismatched_files(tmp_path, sample):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x08\x03\x00\x00garbage")
    with pytest.raises(TrainError, match="bad magic"):
        read_idx(bad)
    short = tmp_path / "short-idx"
    write_idx(short, sample.x_test[:5])
    short.write_bytes(short.read_bytes()[:-10])
    with pytest.raises(TrainError, match="header says"):
        read_idx(short)
    npz = tmp_path / "labels.npz"
    np.savez(npz, x_train=sample.x_train[:5], y_train=np.array([0, 1, 2, 3, 12]), x_test=sample.x_test[:5],
             y_test=sample.y_test[:5])
    with pytest.raises(TrainError, match="labels outside 0-9"):
        load_dataset(path=str(npz))
    shapes = tmp_path / "shapes.npz"
    np.savez(shapes, x_train=np.zeros((5, 32, 32)), y_train=np.zeros(5), x_test=np.zeros((5, 28, 28)),
             y_test=np.zeros(5))
    with pytest.raises(TrainError, match="expected \\(N, 28, 28\\)"):
        load_dataset(path=str(shapes))
    (tmp_path / "notnpz.npz").write_text("hello")
    with pytest.raises(TrainError, match="not a readable .npz"):
        load_dataset(path=str(tmp_path / "notnpz.npz"))
    with pytest.raises(TrainError, match="no train-images"):
        load_dataset(path=str(tmp_path / "empty_dir")) if (tmp_path / "empty_dir").mkdir() is None else None


def test_unknown_dataset_names_the_choices():
    with pytest.raises(TrainError, match="mnist-sample"):
        load_dataset("cifar")


def test_balanced_subset(sample):
    x, y = balanced_subset(sample.x_train, sample.y_train, 300)
    assert len(x) == 300 and np.bincount(y).tolist() == [30] * 10
    with pytest.raises(TrainError):
        balanced_subset(sample.x_train, sample.y_train, 4001)


@pytest.mark.parametrize("n_train, val_split, expected", [
    (60_000, None, 5_000),  # MNIST: the seed's 55,000 / 5,000 split
    (4_000, None, 400),  # smaller sets: a tenth
    (4_000, 0.25, 1_000),
    (4_000, 123, 123),
    (4_000, 0, 0),
])
def test_validation_sizes(n_train, val_split, expected):
    assert validation_size(n_train, val_split) == expected


@pytest.mark.parametrize("val_split, message", [(-0.1, "0 or more"), (4_000, "leaves no training digits"),
                                                (12.5, "a count of digits"), (float("nan"), "0 or more")])
def test_bad_validation_splits(val_split, message):
    with pytest.raises(TrainError, match=message):
        validation_size(4_000, val_split)


def test_validation_digits_are_held_out_balanced_and_the_same_every_time(sample):
    data = sample.with_validation()
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3_600, 400, 1_000)
    assert np.bincount(data.y_val).tolist() == [40] * 10
    train_rows = {row.tobytes() for row in data.x_train}
    assert not any(row.tobytes() in train_rows for row in data.x_val)
    assert sorted(train_rows | {row.tobytes() for row in data.x_val}) == sorted(r.tobytes() for r in sample.x_train)
    np.testing.assert_array_equal(sample.with_validation().x_val, data.x_val)
    assert "3,600 train / 400 validation / 1,000 test" in data.describe()
    assert sample.with_validation(0) is sample
