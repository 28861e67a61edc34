"""The web app as users meet it (issue 46): served by uvicorn over loopback, driven by headless
Chromium (Debian's package, through Playwright's Python package), with every request that would
leave the machine blocked and counted; and 50 concurrent uploads, each answered with its own
translation."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from i2i.serve import create_app  # noqa: E402  (after the skip: the serve extra)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from bench_serve import expected, images, load, running  # noqa: E402

PHOTO = ROOT / "datasets" / "sample" / "photos" / "coffee.jpg"


@pytest.fixture(scope="module")
def model(tiny_x2: Path) -> Path:
    return tiny_x2


def chromium() -> str:
    """Debian's Chromium; required on CI (``.ci/run`` installs it), skipped elsewhere without it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium for the browser test (.ci/run does)")
        pytest.skip("no chromium here (apt-get install chromium)")
    return path


def test_a_browser_converts_a_photo_offline_and_downloads_the_same_bytes_as_convert(model, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    browser_path = chromium()
    photo = tmp_path / "coffee.jpg"
    shutil.copy(PHOTO, photo)
    want = expected(str(model), {"coffee.jpg": photo.read_bytes()}, tmp_path / "cli")["coffee.jpg"]
    outside: list[str] = []

    def route(r) -> None:  # noqa: ANN001  (a Playwright route)
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    app = create_app([str(model)], device="cpu", workdir=str(tmp_path))
    with running(app) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
        context.route("**/*", route)
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#model option", state="attached")
        assert "x2" in page.inner_text("#model-info") and "tiny_x2" in page.inner_text("#model")
        page.set_input_files("#files", str(photo))
        page.click("#go")
        page.wait_for_selector("#result:not([hidden])", timeout=120_000)
        assert page.inner_text("#status").startswith("done: 1 converted")
        with page.expect_download() as download:
            page.click("#download")
        got = Path(download.value.path()).read_bytes()
        shot = tmp_path / "app.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
        left = list(app.state.jobs.root.rglob("*"))
    assert outside == []  # nothing was asked of any other machine
    assert got == want  # the browser's download is what i2i convert writes
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 20 and pixels.shape[0] > 600  # the page and the compared photos, not a blank
    assert len(left) > 0  # the finished job stays for its download until it expires or the server stops
    if os.environ.get("I2I_DOCS_SCREENSHOT"):
        shutil.copy(shot, os.environ["I2I_DOCS_SCREENSHOT"])


def test_fifty_concurrent_uploads_each_get_their_own_answer_and_leave_nothing(model, tmp_path):
    files = images(50, 32)
    want = expected(str(model), files, tmp_path / "cli")
    app = create_app([str(model)], device="cpu", workdir=str(tmp_path))
    with running(app) as base:
        r = load(base, files, concurrency=50)
        left = list(app.state.jobs.root.rglob("*"))
    assert all(r["answers"][n] == want[n] for n in files), [n for n in files if r["answers"][n] != want[n]][:3]
    assert left == []  # every request's folder removed
    assert not app.state.jobs.root.exists()  # and the root when the server stopped
