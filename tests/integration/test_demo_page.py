"""The demo page in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.helpers import BUNDLED_MODELS, FIXTURES, ROOT, Server, run_server, shape_picture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def page(bundled_server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: make test installs Debian's chromium package")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.goto(bundled_server.url + "/")
        yield pg
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            ARTIFACTS.mkdir(exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


def loaded(page: Page, selector: str) -> None:
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('{selector}');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=20_000)


def test_upload_predict_feature_maps_and_filter(page: Page) -> None:
    expect(page.locator("#model option")).to_have_count(2, timeout=20_000)
    page.select_option("#model", "mnist")
    # the sample's answer, arriving late, must not overwrite the upload's
    page.set_input_files("#file", str(FIXTURES / "digits" / "3_test18.png"))
    expect(page.get_by_test_id("prediction")).to_contain_text("3  (", timeout=20_000)
    loaded(page, "#seen")
    loaded(page, "#maps")
    loaded(page, "#gradcam")
    loaded(page, "#filters")

    page.select_option("#layer", "conv2")  # switch to another layer's feature maps
    page.wait_for_function("() => document.querySelector('#maps').src.startsWith('blob:')")
    loaded(page, "#maps")

    page.select_option("#kernel", "sobel_right")
    page.click("#runfilter")
    expect(page.locator("#filtered-caption")).to_contain_text("28x28", timeout=20_000)
    loaded(page, "#filtered")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
    expect(page.locator("#error")).to_have_text("")


def test_drawing_a_digit_predicts_it(page: Page) -> None:
    expect(page.locator("#model option")).to_have_count(2, timeout=20_000)
    page.select_option("#model", "mnist")
    box = page.locator("#pad").bounding_box()
    assert box is not None
    x, top = box["x"] + box["width"] / 2, box["y"] + 40
    page.mouse.move(x, top)
    page.mouse.down()
    for step in range(1, 21):  # a vertical stroke: a "1"
        page.mouse.move(x + step * 0.5, top + step * 10)
    page.mouse.up()
    expect(page.get_by_test_id("prediction")).to_contain_text("1  (", timeout=20_000)
    expect(page.get_by_test_id("ood")).to_be_hidden()  # a digit is in distribution


def test_a_scribble_is_shown_as_not_a_digit(page: Page) -> None:
    expect(page.locator("#model option")).to_have_count(2, timeout=20_000)
    page.select_option("#model", "mnist")
    box = page.locator("#pad").bounding_box()
    assert box is not None
    left, top = box["x"] + 20, box["y"] + 20
    width, height = box["width"] - 40, box["height"] - 40
    page.mouse.move(left, top)
    page.mouse.down()
    for row in range(12):  # a zigzag filling the pad: no digit looks like that
        y = top + height * row / 11
        page.mouse.move(left + (width if row % 2 == 0 else 0), y, steps=8)
    page.mouse.up()
    expect(page.get_by_test_id("ood")).to_contain_text("does not look like a digit",
                                                       timeout=20_000)
    # why a user may see it, and the prediction still shown
    expect(page.get_by_test_id("ood")).to_contain_text("printed in a font")
    expect(page.locator("#prediction")).not_to_be_empty()


def test_the_first_screen_shows_a_prediction_and_no_broken_image(page: Page) -> None:
    """A fresh page predicts a sample test-set digit: the pad shows it, every panel has
    its picture (the playground's too), and nothing is broken. Its screenshot, in
    test-artifacts/, is the README's (`make screenshot` copies it to docs/demo.png)."""
    expect(page.locator("#model option")).to_have_count(2, timeout=20_000)
    expect(page.locator("#model")).to_have_value("mnist")  # not the first alphabetically
    expect(page.get_by_test_id("prediction")).to_contain_text("7  (", timeout=20_000)
    for picture in ("#seen", "#maps", "#gradcam", "#filters", "#filtered"):
        loaded(page, picture)
    broken = page.evaluate(
        "() => [...document.images].filter((i) => i.getAttribute('src') ?"
        " !(i.complete && i.naturalWidth > 0) : getComputedStyle(i).display !== 'none')"
        ".map((i) => i.id)")
    assert broken == []
    ink = page.evaluate("() => { const c = document.getElementById('pad');"
                        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                        " let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 128;"
                        " return n; }")
    assert ink > 1000  # the sample is in the pad (light strokes on its dark ground)
    one_line = page.evaluate("() => { const p = document.getElementById('prediction');"
                             " return p.getClientRects().length; }")
    assert one_line == 1
    wrapped = page.evaluate("() => [...document.querySelectorAll('#bars .bar')].filter((b) =>"
                            " b.querySelector('.pct').offsetHeight >"
                            " b.querySelector('.name').offsetHeight).length")
    assert wrapped == 0  # "100.0 %" on one line
    assert page.evaluate("() => document.querySelector('link[rel=icon]').href").endswith(
        "/static/favicon.svg")
    expect(page.locator("#error")).to_have_text("")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "first-screen.png"), full_page=True)


HOSTILE = ['<img src=x onerror="window.__pwned=1">', "</option><script>window.__pwned=2</script>",
           '"><svg onload="window.__pwned=3">', "zero", "one", "two", "three", "four", "five",
           "six"]


def test_hostile_class_names_are_shown_as_text(tiny_repo: Path, tmp_path: Path) -> None:
    """A version whose metadata carries HTML in its class names: the page shows the text,
    and nothing in it runs (data goes in as text; the policy forbids inline script)."""
    repo = tmp_path / "models"
    shutil.copytree(tiny_repo / "tiny", repo / "tiny")
    meta = repo / "tiny" / "1" / "metadata.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "class_names": HOSTILE}))
    with run_server(repo, tmp_path) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server.url + "/")
        expect(page.locator("#model option")).to_have_count(1, timeout=20_000)
        page.set_input_files("#file", str(FIXTURES / "digits" / "7_test0.png"))
        expect(page.locator("#bars .bar")).to_have_count(5, timeout=20_000)
        shown = page.locator("#bars .name").all_text_contents()
        pwned = page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
        injected = page.locator("#bars img, #bars svg, #bars script").count()
        browser.close()
    assert set(shown) <= set(HOSTILE) and any("<" in s for s in shown)
    assert (pwned, injected, dialogs) == (None, 0, [])


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".swagger-ui .info .title"),
                                                 ("/redoc", "h1")])
def test_the_api_docs_render_offline(bundled_server: Server, path: str,
                                     rendered: str) -> None:
    """Swagger UI and ReDoc come from the package's own files (this machine has no
    internet), under a policy that runs their scripts and nothing else, and keeps every
    request on this server (ReDoc's footer logo from its CDN is refused: harmless)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text)
                if "Content Security Policy" in m.text else None)
        outside: list[str] = []  # code or styles from elsewhere (ReDoc's footer logo is
        # an image from its CDN, which the policy refuses: harmless)
        page.on("request", lambda r: outside.append(r.url)
                if r.resource_type in ("script", "stylesheet", "font", "fetch", "xhr")
                and not r.url.startswith((bundled_server.url, "data:", "blob:")) else None)
        page.goto(bundled_server.url + path)
        expect(page.locator(rendered).first).to_contain_text("CNN Lab Server", timeout=30_000)
        browser.close()
    assert [m for m in refused if "script-src" in m] == []
    assert outside == []


def test_the_page_asks_right_and_sends_the_answer(tmp_path: Path) -> None:
    """With capture on, a prediction is followed by "Right?"; "no, it is" sends the class
    picked, even when another answer about the same picture arrived after the pick, and the
    feedback summary counts it."""
    with run_server(BUNDLED_MODELS, tmp_path, capture_rate="1",
                    capture_dir=str(tmp_path / "captures")) as server, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page()
        page.goto(server.url + "/")
        expect(page.locator("#model option")).to_have_count(2, timeout=20_000)
        page.select_option("#model", "mnist")
        page.set_input_files("#file", str(FIXTURES / "digits" / "3_test18.png"))
        expect(page.get_by_test_id("prediction")).to_contain_text("3  (", timeout=20_000)
        expect(page.get_by_test_id("feedback")).to_be_visible(timeout=20_000)
        page.select_option("#truth", "8")  # say it was an 8
        # a newer answer about the same picture (here the predict button; in use also a
        # version switch or a model change still in flight) keeps the pick
        with page.expect_response(lambda r: "/predict" in r.url):
            page.click("#predict")
        expect(page.locator("#truth")).to_have_value("8")
        page.click("#wrong")
        expect(page.get_by_test_id("feedback-note")).to_have_text("thanks: recorded as 8",
                                                                  timeout=20_000)
        browser.close()
        summary = httpx.get(f"{server.url}/api/models/mnist/feedback").json()
    [served] = [v for v in summary["versions"] if v["labelled"]]
    assert served["labelled"] == 1 and served["confusion_matrix"][8][3] == 1


def test_a_colour_model_works_on_the_page(shapes_models: tuple[Path, Path],
                                          tmp_path: Path) -> None:
    """A model trained on a folder of 64x64 colour pictures: the page says what it expects,
    an upload is predicted, what the model saw is shown in colour, and its feature maps,
    colour filters and Grad-CAM load, with no error. The screenshot is kept in
    test-artifacts/."""
    models, _ = shapes_models
    picture = tmp_path / "circle.png"
    cv2.imwrite(str(picture), shape_picture("circle", np.random.default_rng(2)))
    with run_server(models, tmp_path) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.goto(server.url + "/")
            expect(page.get_by_test_id("expects")).to_contain_text(
                "circle, square or triangle", timeout=20_000)
            expect(page.get_by_test_id("expects")).to_contain_text("64x64 colour")
            loaded(page, "#filters")
            page.set_input_files("#file", str(picture))
            expect(page.get_by_test_id("prediction")).to_contain_text("circle  (",
                                                                      timeout=20_000)
            for shown in ("#seen", "#maps", "#gradcam", "#filtered"):
                loaded(page, shown)
            seen = page.evaluate(
                "() => { const i = document.getElementById('seen');"
                " const c = document.createElement('canvas'); c.width = i.naturalWidth;"
                " c.height = i.naturalHeight; const x = c.getContext('2d');"
                " x.drawImage(i, 0, 0); const d = x.getImageData(0, 0, c.width, c.height).data;"
                " let colour = 0; for (let p = 0; p < d.length; p += 4)"
                " colour += Math.abs(d[p] - d[p + 1]) + Math.abs(d[p + 1] - d[p + 2]) > 60;"
                " return [c.width, c.height, colour]; }")
            assert seen[:2] == [64, 64] and seen[2] > 100  # the picture, in colour
            expect(page.locator("#error")).to_have_text("")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "demo-colour.png"), full_page=True)
        finally:
            browser.close()
