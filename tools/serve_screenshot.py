"""The docs' picture of the web app: ``i2i serve`` on a model, a bundled photo degraded as the
README demo's data is (blur, noise, JPEG), converted in headless Chromium with a target given for
the error map, and the page's screenshot.

    python tools/serve_screenshot.py runs/demo/checkpoints/last.pt docs/images/serve.png

Needs the ``serve`` extra, Playwright's Python package and Debian's chromium. Prints how many
requests tried to leave the machine (blocked; must be 0).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
from playwright.sync_api import sync_playwright

from i2i.serve import create_app

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "datasets"))
sys.path.insert(0, str(ROOT / "tools"))
from bench_serve import running  # noqa: E402
from make_paired import degrade  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("output")
    ap.add_argument("--width", type=int, default=320, help="the photo is resized to this width")
    args = ap.parse_args()
    photo = cv2.cvtColor(cv2.imread(str(ROOT / "datasets" / "sample" / "photos" / "coffee.jpg")), cv2.COLOR_BGR2RGB)
    h = round(photo.shape[0] * args.width / photo.shape[1]) // 16 * 16
    clean = cv2.resize(photo, (args.width, h), interpolation=cv2.INTER_AREA)
    noisy = degrade(clean, np.random.default_rng(0))
    outside: list[str] = []

    def route(r) -> None:  # noqa: ANN001  (a Playwright route)
        if r.request.url.startswith(("data:", "blob:")) or urlparse(r.request.url).hostname in ("127.0.0.1",):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with tempfile.TemporaryDirectory() as tmp:
        cv2.imwrite(str(Path(tmp) / "coffee_degraded.png"), cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(Path(tmp) / "coffee_clean.png"), cv2.cvtColor(clean, cv2.COLOR_RGB2BGR))
        app = create_app([args.model], device="cpu", workdir=tmp)
        with running(app) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.route("**/*", route)
            page.goto(base + "/")
            page.wait_for_selector("#model option", state="attached")
            page.set_input_files("#files", str(Path(tmp) / "coffee_degraded.png"))
            page.set_input_files("#target", str(Path(tmp) / "coffee_clean.png"))
            page.click("#go")
            page.wait_for_selector("#result:not([hidden])", timeout=300_000)
            page.wait_for_timeout(300)
            page.screenshot(path=args.output, full_page=True)
            print(page.inner_text("#status"), "|", page.inner_text("#error-info"))
            browser.close()
    print(f"wrote {args.output}; requests that tried to leave the machine: {len(outside)}")


if __name__ == "__main__":
    main()
