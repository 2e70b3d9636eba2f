"""Fixtures shared by the edge tests: camera-like frames of numbers, and their readings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.forms import paper_photo
from benchmarks.numbers import compose
from lstm_edge.edge import DigitClassifier

FRAMES = 8


@pytest.fixture(scope="module")
def frames(sample, tmp_path_factory) -> Path:
    """640x480 camera-like frames, each a different 4-digit number on paper."""
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(11)
    for i in range(FRAMES):
        line = compose(list(sample.x_test[rng.integers(0, len(sample.x_test), 4)]), [8, 8, 8], rng)
        photo = paper_photo(line, scale=3, rng=rng).convert("RGB")
        frame = Image.new("RGB", (640, 480), (196, 194, 186))
        frame.paste(photo, ((640 - photo.width) // 2, (480 - photo.height) // 2))
        frame.save(folder / f"{i:03d}.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def truth(int8_model, frames) -> dict[str, dict]:
    """read_number's answer for each frame, in this process."""
    classifier = DigitClassifier(int8_model)
    answers = {}
    for path in sorted(frames.iterdir()):
        with Image.open(path) as image:
            answers[path.name] = classifier.read_number(np.asarray(image.convert("RGB"))).to_dict()
    return answers
