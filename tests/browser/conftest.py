"""A real headless Chromium (Debian's package) driven by Playwright against live_server."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
# The chromium flags this machine needs: no sandbox as root, no background networking.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Step screenshots of browser journeys, kept by CI as artifacts (git-ignored).
SCREENSHOT_DIR = Path(
    os.environ.get("SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: `make browser` installs Debian's chromium")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def page_without_js(chromium):
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def mobile_page(chromium):
    """A phone-sized page (an iPhone 12-14 is 390 CSS pixels wide)."""
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def cnn():
    """The real image model, loaded once per run and already run on one photo: TensorFlow
    prepares its graph on the first call, which would otherwise land in a page request."""
    from recommender.active_model import get_embedder

    embedder = get_embedder()
    embedder.embed_one(np.zeros((224, 224, 3), dtype=np.uint8))
    return embedder


@pytest.fixture
def step_screenshots():
    """``step_screenshots(page, folder)`` gives ``shoot(step)``, which saves a full-page PNG
    of the page as ``SCREENSHOT_DIR/<folder>/<nn>-<step>.png``, numbered in order."""

    def start(page, folder):
        folder = SCREENSHOT_DIR / folder
        shutil.rmtree(folder, ignore_errors=True)  # no shots of an earlier run mixed in
        folder.mkdir(parents=True)
        taken = []

        def shoot(step):
            taken.append(step)
            path = folder / f"{len(taken):02d}-{step}.png"
            page.screenshot(path=path, full_page=True)
            return path

        return shoot

    return start
