"""Product photos for the headless browser, which the live server does not serve."""

from pathlib import Path

from django.conf import settings
from playwright.sync_api import expect


def serve_media(page):
    """Answer the page's requests for product photos from MEDIA_ROOT.

    With DEBUG off Django does not serve media files (a web server does in production),
    so the live server would answer 404 and every product photo would be broken."""
    root = Path(settings.MEDIA_ROOT).resolve()

    def answer(route):
        relative = route.request.url.split(f"/{settings.MEDIA_URL.strip('/')}/", 1)[1].split("?")[0]
        path = (root / relative).resolve()
        if root in path.parents and path.is_file():
            route.fulfill(path=str(path))
        else:
            route.fulfill(status=404, body="not found")

    page.route(f"**/{settings.MEDIA_URL.strip('/')}/**", answer)


def assert_photo_shown(image):
    """The <img> has loaded and decoded a real picture (a broken one has no width)."""
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("(img) => img.naturalWidth") > 0, image.get_attribute("src")
