"""The documentation site builds with --strict (no broken link or page), its settings
reference lists every setting of the code, and its pictures show in Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.runtime.settings import Settings
from tests.helpers import ROOT

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_setting_is_in_the_reference(site: Path) -> None:
    page = (site / "configuration" / "index.html").read_text()
    missing = [name for name in Settings.model_fields
               if name != "run_dir" and f"CNNLAB_{name.upper()}" not in page]
    assert missing == [], f"settings missing from the reference: {missing}"
    assert "<!-- settings table -->" not in page


@pytest.mark.parametrize(("page", "picture"), [
    ("limits", "img/request-path.svg"),
    ("operations", "img/deployment.svg"),
    ("performance", "img/performance.png"),
    ("training", "img/reports/mnist-9-training_curves.png"),
])
def test_the_pictures_show_in_chromium(site: Path, page: str, picture: str) -> None:
    """Each page's picture loads (its natural size is known) in the built site; the
    screenshots are kept in test-artifacts/."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1400})
            tab.goto((site / page / "index.html").as_uri())
            image = tab.locator(f"img[src$='{picture.rsplit('/', 1)[-1]}']").first
            image.scroll_into_view_if_needed()
            tab.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                  arg=image.element_handle(), timeout=10_000)
            tab.screenshot(path=str(ARTIFACTS / f"site-{page}.png"), full_page=False)
        finally:
            browser.close()
