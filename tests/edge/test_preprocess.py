"""The image contract on real MNIST digits and on the kinds of file a user feeds it."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from benchmarks.forms import off_centre_transparent, paper_photo
from lstm_edge.edge import ImageError, NoDigitError, preprocess_image, scale_pixels
from lstm_edge.edge.contract import IMAGE_SIZE
from lstm_edge.edge.picture import MAX_PIXELS, WholePicture
from lstm_edge.edge.preprocess import Paper, render_ascii


def centre_of_mass(digit):
    rows, cols = np.indices(digit.shape)
    return (digit * rows).sum() / digit.sum(), (digit * cols).sum() / digit.sum()


def test_mnist_digits_pass_through_nearly_unchanged(sample):
    raw = scale_pixels(sample.x_test[:300])
    out = np.stack([preprocess_image(d) for d in sample.x_test[:300]])
    diffs = np.abs(out - raw).mean(axis=(1, 2))
    assert out.shape == (300, IMAGE_SIZE, IMAGE_SIZE) and out.dtype == np.float32
    assert np.median(diffs) < 1e-6  # most come back exactly
    assert np.percentile(diffs, 95) < 0.02


@pytest.mark.parametrize("form", ["paper_jpeg", "transparent", "inverted_png", "16bit"])
def test_other_forms_come_back_as_the_mnist_digit(sample, form, tmp_path):
    digit = sample.x_test[7]
    if form == "paper_jpeg":
        path = tmp_path / "d.jpg"
        paper_photo(digit).save(path, quality=90)
    elif form == "transparent":
        path = tmp_path / "d.png"
        off_centre_transparent(digit).save(path)
    elif form == "inverted_png":
        path = tmp_path / "d.png"
        Image.fromarray(255 - digit).resize((112, 112), Image.BILINEAR).save(path)
    else:
        path = tmp_path / "d.png"
        Image.fromarray(digit.astype(np.uint16) * 257).save(path)  # 16-bit grey, mode I;16
    out = preprocess_image(path)
    raw = scale_pixels(digit)
    assert np.corrcoef(out.ravel(), raw.ravel())[0, 1] > 0.85
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1


def test_exif_orientation_is_applied(sample, tmp_path):
    digit = sample.x_test[3]
    rotated = Image.fromarray(np.rot90(digit, -1).copy())  # stored turned 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CW to view": the viewer turns it back
    path = tmp_path / "exif.jpg"
    rotated.save(path, exif=exif, quality=95)
    upright = preprocess_image(path)
    assert np.corrcoef(upright.ravel(), scale_pixels(digit).ravel())[0, 1] > 0.9


def test_shadowed_paper_is_not_ink(sample):
    digit = np.asarray(paper_photo(sample.x_test[11]).convert("L"), np.float32)
    shadow = np.linspace(0, 90, digit.shape[1])[None, :]  # darker towards the right
    shaded = Image.fromarray(np.clip(digit - shadow, 0, 255).astype(np.uint8))
    out = preprocess_image(shaded)
    assert np.corrcoef(out.ravel(), scale_pixels(sample.x_test[11]).ravel())[0, 1] > 0.8


@pytest.mark.parametrize("size, box", [
    ((112, 112), (0, 0, 112, 112)),  # a finder: one band
    ((512, 384), (0, 0, 512, 384)),  # a frame's work scale: bands of 170 rows, the last one short
    ((512, 384), (37, 5, 441, 300)),  # a region of it
])
@pytest.mark.parametrize("invert", [False, True])
def test_the_papers_surface_is_its_quadratic_on_every_pixel_of_the_box(size, box, invert):
    """The fitted level, made by BLAS in bands of rows, against the quadratic evaluated in float64."""
    level = (0.61, -0.07, 0.035, 0.12, -0.09, 0.05)
    paper = Paper(size, invert, level, 0.02, True)
    gray = np.random.default_rng(0).random((box[3] - box[1], box[2] - box[0]), np.float32)
    y = (np.arange(size[1]) / (size[1] - 1) - 0.5)[box[1] : box[3], None]
    x = (np.arange(size[0]) / (size[0] - 1) - 0.5)[None, box[0] : box[2]]
    c0, cy, cx, cyy, cxx, cxy = level
    surface = c0 + cy * y + cx * x + cyy * y * y + cxx * x * x + cxy * x * y
    expected = (1.0 - gray) - surface if invert else gray - surface
    ink = paper.ink(gray, box)
    assert ink.shape == gray.shape and ink.dtype == np.float32
    assert np.abs(ink - expected).max() < 1e-6


@pytest.mark.parametrize("stroke", [False, True])
def test_the_papers_level_is_fitted_to_the_paper_not_to_ink_across_the_frame(stroke):
    """Shaded paper, and a dark stroke running through the frame (a digit off the edge): the level
    is refitted without the frame's ink, so it follows the paper's shading as if the stroke were
    not there (fitted to all of the frame, the stroke pulls it 0.2 off the paper here)."""
    height, width = 96, 128
    y = (np.arange(height) / (height - 1) - 0.5)[:, None]
    x = (np.arange(width) / (width - 1) - 0.5)[None, :]
    shading = 0.85 - 0.12 * x + 0.06 * y - 0.1 * y * y + 0.05 * x * y  # the paper's grey level
    gray = shading + np.random.default_rng(3).normal(0, 0.004, (height, width))
    if stroke:
        gray[:, 58:70] = 0.08  # a bold stroke from the top edge to the bottom one
    paper = Paper.measure(WholePicture(gray.astype(np.float32)))
    assert paper.invert
    surface = paper._surface((0, 0, width, height), paper.level)  # the paper's level, ink-up (1 - grey)
    assert np.abs(surface - (1.0 - shading)).max() < 0.01


@pytest.mark.parametrize("image", [
    np.full((40, 40), 255, np.uint8),  # blank paper
    np.zeros((28, 28), np.uint8),  # black
    np.clip(np.random.default_rng(1).normal(230, 3, (64, 64)), 0, 255).astype(np.uint8),  # paper texture
])
def test_no_ink_is_no_digit_not_a_guess(image):
    with pytest.raises(NoDigitError, match="no digit found"):
        preprocess_image(image)


def test_fully_transparent_image_is_no_digit():
    with pytest.raises(NoDigitError):
        preprocess_image(Image.new("RGBA", (50, 50), (0, 0, 0, 0)))


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: it must be refused before any decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (huge_png_header(10_000, 10_000), "the limit is"),
])
def test_bad_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        preprocess_image(path)


def test_truncated_png_raises_image_error(sample, tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(sample.x_test[0]).resize((200, 200)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        preprocess_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        preprocess_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        preprocess_image(tmp_path)


def test_limit_is_documented_and_sane():
    assert 10_000_000 <= MAX_PIXELS < 100_000_000


def test_render_ascii_shows_the_digit(sample):
    art = render_ascii(scale_pixels(sample.x_test[0])).splitlines()
    assert len(art) == 28 and all(len(line) == 56 for line in art)
    assert art[0].strip() == "" and any(c in "@%#" for c in "".join(art))


def check_only_documented_errors(source):
    try:
        out = preprocess_image(source)
    except ImageError:
        return
    assert out.shape == (IMAGE_SIZE, IMAGE_SIZE) and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(st.sampled_from([np.uint8, np.float32, np.float64, np.int32, np.bool_]),
                  hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=80)))
def test_random_arrays_give_a_digit_or_the_documented_error(array):
    check_only_documented_errors(array)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_give_a_digit_or_the_documented_error(data):
    check_only_documented_errors(data)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 5), st.binary(min_size=1, max_size=200))
def test_corrupted_png_bytes_give_the_documented_error(position, garbage):
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(position).random((30, 30)) * 255).astype(np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = 40 + position * 50
    data[start : start + len(garbage)] = garbage
    check_only_documented_errors(bytes(data))


@pytest.mark.parametrize("fmt, mode", [
    ("BMP", "L"), ("GIF", "P"), ("WEBP", "RGB"), ("TIFF", "L"), ("TIFF", "I;16"), ("PNG", "RGBA"), ("PNG", "P"),
])
def test_every_format_and_mode_reads_the_same_digit(sample, tmp_path, fmt, mode):
    digit = sample.x_test[150]
    if fmt == "WEBP" and not __import__("PIL.features", fromlist=["check"]).check("webp"):
        pytest.skip("this Pillow has no WebP support")
    image = Image.fromarray(255 - digit)  # dark ink on white paper
    if mode == "I;16":
        image = Image.fromarray((255 - digit).astype(np.uint16) * 257)
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([np.zeros_like(digit)] * 3 + [digit]), "RGBA")  # ink in alpha
    elif mode != "L":
        image = image.convert(mode)
    path = tmp_path / f"digit.{fmt.lower()}"
    image.save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    out = preprocess_image(path)
    assert np.corrcoef(out.ravel(), scale_pixels(digit).ravel())[0, 1] > 0.95, (fmt, mode)
