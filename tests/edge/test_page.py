"""The page edge-serve serves, in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`; .ci/run installs them) driven by Selenium. A held-out digit is drawn on the pad
stroke by stroke with pointer events, and the page's answer must be the model's answer for that
drawing; a photo of a number sent from the page gets its boxes drawn; with --camera, the page shows
the live view and the newest reading.

Without the browser these tests skip, saying why; with LSTM_EDGE_REQUIRE_BROWSER=1 (CI) they fail.
LSTM_EDGE_PAGE_SCREENSHOT=PATH saves the page, as the drawing left it, to PATH (docs/serve-page.png)."""

from __future__ import annotations

import base64
import os
import shutil
import time

import numpy as np
import pytest

from benchmarks.numbers import compose, encode
from tests.conftest import EDGE_CLASSIFY, run_cli
from tests.edge.test_serve import Server

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("starlette")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAD = 280  # the pad's size in CSS pixels (index.html)
HANG_GUARD_S = 120  # waiting for the page's answer longer than this is a hung page, not a slow one


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        reason = f"no headless Chromium here ({CHROMIUM}, {DRIVER}): apt-get install chromium chromium-driver"
        if os.environ.get("LSTM_EDGE_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=900,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(int8_model, browser):
    server = Server("--model", str(int8_model))
    browser.get(f"http://{server.host}:{server.port}/")
    yield server, browser
    server.stop()


def strokes_of(digit: np.ndarray) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The digit as pen strokes: each row's runs of ink, left to right, in pad pixels from its centre."""
    scale = PAD / digit.shape[0]
    strokes = []
    for y, row in enumerate(digit > 100):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            cy = (y + 0.5) * scale - PAD / 2
            strokes.append((((start + 0.5) * scale - PAD / 2, cy), ((stop - 0.5) * scale - PAD / 2, cy)))
    return strokes


def draw(browser, strokes) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    pad = browser.find_element(By.ID, "pad")
    actions = ActionBuilder(browser, mouse=PointerInput("mouse", "pen"), duration=10)
    for (x0, y0), (x1, y1) in strokes:
        actions.pointer_action.move_to(pad, round(x0), round(y0)).pointer_down()
        actions.pointer_action.move_to(pad, round(x1), round(y1)).pointer_up()
    actions.perform()


def settled_answer(browser) -> dict:
    """The page's answer once every request it sent has been answered."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        state = browser.execute_script("return [document.body.dataset.sent, document.body.dataset.answered, "
                                       "window.lastAnswer || null]")
        if state[0] is not None and state[0] == state[1]:
            return state[2]
        time.sleep(0.1)
    raise AssertionError(f"the page sent request {state[0]} and had answered {state[1]} after {HANG_GUARD_S} s")


@pytest.mark.parametrize("index", [7, 123, 512])
def test_a_digit_drawn_on_the_page_gets_the_models_answer_for_that_drawing(page, sample, index):
    from selenium.webdriver.common.by import By

    server, browser = page
    browser.find_element(By.ID, "clear").click()
    draw(browser, strokes_of(sample.x_test[index]))
    answer = settled_answer(browser)
    shown = browser.find_element(By.ID, "answer").text
    assert shown == str(answer["digit"]), (shown, answer)
    # The model's answer for exactly what is on the pad: the drawing, sent by the test itself.
    drawing = browser.execute_script("return document.getElementById('pad').toDataURL('image/png')")
    status, direct = server.post("/classify?top_k=10", base64.b64decode(drawing.split(",", 1)[1]), "image/png")
    assert status == 200 and direct["digit"] == answer["digit"] and direct["top_k"] == answer["top_k"]
    # The ten bars and the input the model saw are on the page too.
    widths = [float(browser.find_element(By.ID, f"bar-{d}").get_attribute("style").split(":")[1].strip(" %;"))
              for d in range(10)]
    assert abs(sum(widths) - 100) < 1.5 and np.argmax(widths) == answer["digit"]
    ink = browser.execute_script("return Array.from(document.getElementById('input-view').getContext('2d')"
                                 ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 == 0 && v > 128).length")
    assert 20 < ink < 500  # a digit's worth of bright pixels in the 28x28 input
    if index == 7 and os.environ.get("LSTM_EDGE_PAGE_SCREENSHOT"):
        browser.save_screenshot(os.environ["LSTM_EDGE_PAGE_SCREENSHOT"])


def test_a_photo_of_a_number_sent_from_the_page_gets_its_boxes(page, int8_model, sample, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _, browser = page
    rng = np.random.default_rng(9)
    photo = tmp_path / "meter.jpg"
    photo.write_bytes(encode(compose(list(sample.x_test[[3, 250, 480]]), [8, 8], rng), "paper", rng))
    expected = run_cli(*EDGE_CLASSIFY, str(photo), "--number", "--model", str(int8_model)).stdout
    Select(browser.find_element(By.ID, "mode")).select_by_value("number")
    browser.find_element(By.ID, "photo").send_keys(str(photo))
    answer = settled_answer(browser)
    assert expected.startswith(f"{photo}: {answer['number']} ") and len(answer["digits"]) == 3
    deadline = time.monotonic() + HANG_GUARD_S
    while browser.execute_script("return document.getElementById('photo-view').width") == 0:
        assert time.monotonic() < deadline, "the photo was never drawn"
        time.sleep(0.1)
    red = browser.execute_script(  # the boxes' pixels: red, where the photo is grey paper and dark ink
        "const c = document.getElementById('photo-view'), d = c.getContext('2d').getImageData(0, 0, c.width, "
        "c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 180 && d[i + 1] < 90 && "
        "d[i + 2] < 90) n++; return n")
    assert red > 0 and browser.find_element(By.ID, "answer").text == answer["number"]
    Select(browser.find_element(By.ID, "mode")).select_by_value("classify")


def test_the_page_shows_the_cameras_live_view_and_reading(int8_model, browser, frames, truth):
    server = Server("--model", str(int8_model), "--camera", str(frames), "--fps", "30", "--number")
    try:
        browser.get(f"http://{server.host}:{server.port}/")
        deadline = time.monotonic() + HANG_GUARD_S
        numbers = {answer["number"] for answer in truth.values()}
        while True:
            shown = browser.execute_script(
                "const live = document.getElementById('live'); return [!document.getElementById('camera').hidden, "
                "live.naturalWidth, document.getElementById('camera-reading').textContent, "
                "document.getElementById('camera-detail').textContent]")
            if shown[0] and shown[1] == 640 and shown[2] in numbers:
                break
            assert time.monotonic() < deadline, f"the page never showed the camera: {shown}"
            time.sleep(0.1)
        assert "ms after the frame" in shown[3]
    finally:
        browser.get("about:blank")  # closes the stream and the events before the server stops
        server.stop()
