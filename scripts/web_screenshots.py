"""Screenshots of the page for the README: docs/web-desktop.png (1280x800) and
docs/web-phone.png (390 px wide), with a few generated tracks, one selected and played a
little, and one generated through the form.

A throwaway ``dgx-music serve`` (history and files in a temporary folder) and Debian's
Chromium driven by Playwright:

    python scripts/web_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.service import running_service, service_env  # noqa: E402

PROMPTS = [
    ("dark techno in A minor at 128 BPM", 3), ("uplifting house in C major at 124 BPM", 5),
    ("chill lofi hip hop in E minor at 85 BPM", 7), ("drum and bass in F minor at 174 BPM", 2),
    ("dreamy ambient pads in D major at 70 BPM", 4), ("funky disco in G major at 118 BPM", 9),
]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars"]


def stage(page, url: str, *, generate: bool) -> None:
    """The page with a track selected, played to about 40 %, paused."""
    page.goto(url)
    library = page.get_by_role("table", name="Library")
    if generate:
        page.get_by_role("textbox", name="Prompt").fill("epic trance in B minor at 138 BPM")
        page.get_by_label("Duration (s)").fill("8")
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("Completed: ready to play").wait_for(timeout=60_000)
    library.get_by_role("button", name=PROMPTS[0][0]).click()
    waveform = page.get_by_role("slider", name="Waveform")
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
    box = waveform.bounding_box()
    waveform.click(position={"x": box["width"] * 0.4, "y": box["height"] / 2})
    page.wait_for_timeout(300)
    page.mouse.move(0, 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dgx-web-shots-") as temporary:
        work = Path(temporary)
        with running_service(work, service_env(work, f"sqlite:///{work / 'history.db'}")) as service, \
                sync_playwright() as playwright:
            for prompt, seed in PROMPTS:
                accepted = service.submit(prompt, duration=8, seed=seed)
                service.wait_for_status(accepted["id"], "completed")
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            try:
                for name, viewport, scale, generate in (("desktop", (1280, 800), 1, True),
                                                        ("phone", (390, 844), 2, False)):
                    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                                  device_scale_factor=scale)
                    page = context.new_page()
                    stage(page, service.base_url + "/", generate=generate)
                    path = args.out / f"web-{name}.png"
                    page.screenshot(path=str(path), full_page=name == "phone")
                    print(path)
                    context.close()
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
