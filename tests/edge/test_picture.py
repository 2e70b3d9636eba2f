"""Decoded inputs at the work scale (edge/picture.py): a box of work-scale pixels is what the whole
resampled picture holds there (to Pillow's rounding), however the picture came (file, bytes, array)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from benchmarks.forms import paper_frame
from benchmarks.numbers import compose
from lstm_edge.edge import ImageError, NoDigitError
from lstm_edge.edge.jpeg import plain_size
from lstm_edge.edge.picture import (
    GREY_WHOLE_PIXELS,
    WORK_SIZE,
    _decode,
    _draft_size,
    _GreyImage,
    _PixelArray,
    open_picture,
    work_size,
)
from lstm_edge.edge.preprocess import STAGES, read_digits
from lstm_edge.edge.segment import label_runs


def jpeg(array: np.ndarray, **extra) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=90, **extra)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def line(sample) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(2)
    index = [3, 250, 480, 920]
    return compose(list(sample.x_test[index]), [8, 8, 8], rng), "".join(str(sample.y_test[i]) for i in index)


@pytest.mark.parametrize("size", [(640, 480), (4032, 3024), (513, 2000), (512, 512), (100, 37), (3000, 1)])
def test_work_size_is_pillows_thumbnail(size):
    image = Image.new("L", size)
    image.thumbnail((WORK_SIZE, WORK_SIZE))
    assert work_size(size) == image.size


@pytest.mark.parametrize("size, factor", [((640, 480), 0), ((2400, 1500), 0), ((2400, 1500), 3), ((640, 480), 2)])
def test_a_box_of_work_pixels_is_what_the_whole_picture_holds_there(size, factor):
    """Resampled box by box (the region around the digits, the frame's strips) or whole: the same
    numbers, for a grey image and for a large camera array converted only where it is looked at, to
    one grey level (Pillow rounds its two resampling passes' intermediate differently for a box)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    for picture in (open_picture(Image.fromarray(frame)), _PixelArray(frame)):
        if factor:
            picture = picture.reduced(factor)
        whole = picture._resample(None)  # what the whole picture at the work scale holds
        width, height = picture.work_size
        boxes = ((0, 0, width, 3), (width - 5, 0, width, height), (width // 3, height // 4, width // 2, height // 2))
        for box in boxes:
            difference = np.abs(picture._resample(box) - whole[box[1] : box[3], box[0] : box[2]])
            assert difference.max() <= 1.001 / 255 and difference.mean() < 0.5 / 255, (picture, box)


def test_only_large_camera_arrays_are_converted_by_the_box():
    assert isinstance(open_picture(np.zeros((1080, 1920, 3), np.uint8)), _GreyImage)
    assert isinstance(open_picture(np.zeros((3024, 4032, 3), np.uint8)), _PixelArray)
    assert 1080 * 1920 <= GREY_WHOLE_PIXELS < 3024 * 4032


def test_a_camera_array_reads_as_its_lossless_file_does(line):
    ink, truth = line
    frame = paper_frame(ink, (1280, 720), 0.6, np.random.default_rng(1))
    png = io.BytesIO()
    Image.fromarray(frame).save(png, "PNG")
    from_array, from_file = read_digits(frame), read_digits(png.getvalue())
    assert from_array.boxes == from_file.boxes and len(from_array.inputs) == len(truth)
    assert all(np.array_equal(a, b) for a, b in zip(from_array.inputs, from_file.inputs))


def test_boxes_are_in_the_inputs_own_pixels_though_a_jpeg_decodes_smaller(line):
    ink, _ = line
    frame = paper_frame(ink, (4032, 3024), 0.6, np.random.default_rng(1))
    assert open_picture(jpeg(frame)).decoded_size == (1008, 756)  # DCT scaling: decoded at 1/4
    from_jpeg, from_array = read_digits(jpeg(frame)), read_digits(frame)
    assert len(from_jpeg.boxes) == len(from_array.boxes) == 4
    for a, b in zip(from_jpeg.boxes, from_array.boxes):  # one work-scale pixel is ~8 of these
        assert max(abs(p - q) for p, q in zip(a, b)) <= 24, (a, b)
    dark = frame.mean(axis=2) < 100  # the ink, in the frame's own pixels
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    assert from_jpeg.boxes[0][0] <= cols[0] + 24 and from_jpeg.boxes[-1][2] >= cols[-1] - 24
    assert min(b[1] for b in from_jpeg.boxes) <= rows[0] + 24 and max(b[3] for b in from_jpeg.boxes) >= rows[-1] - 24


def test_an_exif_turned_jpeg_is_read_upright_with_boxes_in_upright_pixels(line):
    ink, truth = line
    frame = paper_frame(ink, (800, 600), 0.6, np.random.default_rng(1))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown after turning it 90 degrees clockwise
    stored = np.ascontiguousarray(np.rot90(frame, 1))  # (800, 600): what the camera wrote
    turned = read_digits(jpeg(stored, exif=exif.tobytes()))
    upright = read_digits(jpeg(frame))
    assert open_picture(jpeg(stored, exif=exif.tobytes())).original_size == (800, 600)
    assert len(turned.inputs) == len(upright.inputs) == len(truth)
    for a, b in zip(turned.boxes, upright.boxes):
        assert max(abs(p - q) for p, q in zip(a, b)) <= 4, (a, b)


@pytest.mark.parametrize("form", ["png-exif", "jpeg-xmp"])
def test_orientation_is_read_wherever_pillow_finds_it(line, form):
    ink, _ = line
    frame = paper_frame(ink, (400, 300), 0.6, np.random.default_rng(1))
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(frame, 1)))  # (300, 400): as the camera wrote it
    buffer = io.BytesIO()
    if form == "png-exif":
        exif = Image.Exif()
        exif[0x0112] = 6
        stored.save(buffer, "PNG", exif=exif)
    else:
        xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>'
               b'<rdf:Description tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
        stored.save(buffer, "JPEG", quality=90, xmp=xmp)
    assert open_picture(buffer.getvalue()).original_size == (400, 300)


def _decoded_by_pillow(data: bytes) -> Image.Image:
    """What `Image.open` and `draft` make of a JPEG (picture.py before its plain-JPEG path)."""
    image = Image.open(io.BytesIO(data))
    image.draft("L", _draft_size(image.size))
    image.load()
    return image


@pytest.mark.parametrize("size", [(224, 224), (17, 33), (1025, 513), (1920, 1080), (4032, 3024)])
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("extra", [{}, {"progressive": True}, {"subsampling": 0}, {"subsampling": 1},
                                   {"optimize": True}, {"restart_marker_blocks": 1}])
def test_a_plain_jpeg_decodes_past_image_open_to_the_same_pixels(size, mode, extra, monkeypatch):
    """Read from its frame header and handed to libjpeg directly (`edge.jpeg`), at every DCT scale
    (224 px whole; 1080p at 1/2, 12 MP at 1/4): the very pixels Image.open and draft decode."""
    rng = np.random.default_rng(size[0])
    array = (rng.integers(0, 64, (size[1], size[0], 3)) + np.linspace(0, 190, size[0])[None, :, None]).astype(np.uint8)
    data = jpeg(array if mode == "RGB" else array[..., 0], **extra)
    assert plain_size(data) == size
    expected = _decoded_by_pillow(data)
    monkeypatch.setattr(Image, "open", None)  # the plain path does without it
    image, original_size = _decode(data)
    assert original_size == size and image.mode == "L" and image.size == expected.size
    assert np.array_equal(np.asarray(image), np.asarray(expected))


def test_a_jpeg_that_is_not_plain_goes_by_image_open(line, tmp_path):
    """EXIF (which may turn it), a colour profile, CMYK: Pillow's own way; a file and its bytes alike."""
    array = np.asarray(paper_frame(line[0], (300, 200)))
    exif = Image.Exif()
    exif[0x0112] = 6
    for data in (jpeg(array, exif=exif), jpeg(array, icc_profile=b"profile" * 20), _cmyk_jpeg(array)):
        assert plain_size(data) is None
        path = tmp_path / "photo.jpg"
        path.write_bytes(data)
        for source in (data, path):
            image, _ = _decode(source)
            assert np.array_equal(np.asarray(image), np.asarray(ImageOps.exif_transpose(_decoded_by_pillow(data))))
    assert _decode(jpeg(array, exif=exif))[0].size == (200, 300)  # turned upright


def _cmyk_jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert("CMYK").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("cut", [0.9, 0.5, 0.2])
def test_a_truncated_plain_jpeg_is_refused_in_one_line(line, cut, tmp_path):
    data = jpeg(np.asarray(paper_frame(line[0], (640, 480))))
    assert plain_size(data) is not None
    short = data[: int(len(data) * cut)]
    path = tmp_path / "cut.jpg"
    path.write_bytes(short)
    for source in (short, path):
        with pytest.raises(ImageError, match="truncated or corrupt|Truncated"):
            read_digits(source)


def test_a_plain_jpeg_over_the_pixel_limit_is_refused_before_decoding():
    header = jpeg(np.zeros((8, 8), np.uint8))
    at = header.index(b"\xff\xc0") + 5  # the frame header's height, then width
    huge = header[:at] + (10000).to_bytes(2, "big") + (9000).to_bytes(2, "big") + header[at + 4 :]
    assert plain_size(huge) == (9000, 10000)
    with pytest.raises(ImageError, match="90 MP"):
        open_picture(huge)


def test_every_stage_is_timed(line):
    ink, _ = line
    found = read_digits(paper_frame(ink, (640, 480), 0.6, np.random.default_rng(1)))
    assert [stage for stage, _ in found.seconds] == list(STAGES)
    assert all(seconds >= 0 for _, seconds in found.seconds)


def test_a_blank_frame_has_no_digit():
    frame = paper_frame(np.zeros((28, 28), np.uint8), (1920, 1080), 0.6, np.random.default_rng(1))
    with pytest.raises(NoDigitError):
        read_digits(frame)


def reference_labels(mask: np.ndarray) -> np.ndarray:
    """8-connected components by flood fill, numbered in raster order of first pixel."""
    labels = -np.ones(mask.shape, int)
    count = 0
    for r, c in zip(*np.nonzero(mask)):
        if labels[r, c] >= 0:
            continue
        labels[r, c], todo = count, [(r, c)]
        while todo:
            y, x = todo.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and labels[ny, nx] < 0:
                        labels[ny, nx] = count
                        todo.append((ny, nx))
        count += 1
    return labels


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 24), st.integers(1, 24), st.floats(0.1, 0.7), st.integers(0, 2**31 - 1))
def test_runs_are_labelled_as_flood_fill_labels_pixels(height, width, density, seed):
    mask = np.random.default_rng(seed).random((height, width)) < density
    runs, labels = label_runs(mask)
    pixels = -np.ones(mask.shape, int)
    for (row, start, stop), label in zip(runs, labels):
        pixels[row, start:stop] = label
    reference = reference_labels(mask)
    # the same partition, and numbered by first appearance in raster order
    assert np.array_equal(pixels, reference)
