"""The page at ``/`` with 100,000 recorded generations, in a real browser.

A real ``dgx-music serve`` on SQLite, its history filled with ``populate`` of
``bench_service.py`` (bulk insert, then ANALYZE), and Playwright driving Debian's Chromium
(``/usr/bin/chromium``), headless, a fresh browser context (empty cache) per run.

1. Navigation to library rows visible and clickable: from ``page.goto`` to Playwright's
   actionability check of the first row's button passing (visible, stable, enabled,
   receives the click), measured here; and, inside the page, the navigation start to the
   frame that paints the first rows (the ``dgx:library-rendered`` performance mark the
   page sets in that frame). Goal: <= 1 s.
2. Search: from the last keystroke typed into "Search" (its ``input`` event) to the frame
   that paints the rows of that search (the same mark), inside the page, so Playwright's
   own latency is not counted; the page's 80 ms debounce is. Words that match many rows
   (the page of 50 comes from the newest), and a word that matches none (the worst case
   for the database: the whole history is scanned). A key + BPM range filter the same way,
   from the ``change`` of the BPM field. Goal: <= 200 ms.

    python benchmarks/bench_web.py [--count 100000] [--runs 9]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine, table  # noqa: E402
from benchmarks.bench_service import populate  # noqa: E402
from tests.service import running_service, service_env  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEARCHES = ["techno", "dreamy", "house", "epic trance", "funk", "lofi", "jazz", "dark disco", "ambient"]
NO_MATCH = "zzyzx"

# In the page: the time of the last input event, and the marks of the rendered rows.
RECORD_INPUTS = """() => {
  window.__lastInput = 0;
  document.addEventListener('input', () => { window.__lastInput = performance.now(); }, true);
}"""
RENDERED_AFTER_INPUT = """(expected) => {
  const wanted = JSON.stringify(expected);
  const mark = performance.getEntriesByName('dgx:library-rendered')
    .find((entry) => entry.startTime > window.__lastInput && JSON.stringify(entry.detail.filters) === wanted);
  return mark ? mark.startTime - window.__lastInput : null;
}"""


def filters(q: str = "", key: str = "", bpm_min: str = "", bpm_max: str = "", status: str = "") -> dict:
    return {"q": q, "key": key, "bpm_min": bpm_min, "bpm_max": bpm_max, "status": status}


def wait_rendered(page, expected: dict) -> float:
    """Seconds from the last input event to the frame painting the rows for ``expected``."""
    handle = page.wait_for_function(RENDERED_AFTER_INPUT, arg=expected, polling=10, timeout=30_000)
    return handle.json_value() / 1000


def bench_navigation(browser, url: str, runs: int):
    clickable, painted = [], []
    for _ in range(runs + 1):  # the first run warms the server (its caches and imports)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
        first = page.get_by_role("table", name="Library").locator("tbody tr").first.get_by_role("button")
        first.click(trial=True, timeout=30_000)
        clickable.append(time.perf_counter() - start)
        mark = page.wait_for_function(
            "() => (performance.getEntriesByName('dgx:library-rendered')[0] || {}).startTime", timeout=30_000)
        painted.append(mark.json_value() / 1000)
        rows = page.get_by_role("table", name="Library").locator("tbody tr").count()
        assert rows == 50, rows
        context.close()
    return clickable[1:], painted[1:]


def bench_search(browser, url: str, runs: int):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    page.get_by_role("table", name="Library").locator("tbody tr").first.wait_for()
    page.evaluate(RECORD_INPUTS)
    search = page.get_by_role("searchbox", name="Search")
    many, none, keyed = [], [], []

    def type_search(term: str) -> float:
        search.fill("")
        wait_rendered(page, filters())
        search.press_sequentially(term, delay=40)  # a quick typist; the debounce keeps the last
        return wait_rendered(page, filters(q=term))

    type_search("warm-up")
    for n in range(runs):
        many.append(type_search(SEARCHES[n % len(SEARCHES)]))
        none.append(type_search(NO_MATCH))
    search.fill("")
    wait_rendered(page, filters())
    keys = ["8A", "5A", "11B", "2B", "9A", "4B", "12A", "7B", "1A"]
    for n in range(runs):
        page.get_by_role("combobox", name="Key").select_option(keys[n % len(keys)])
        page.get_by_role("spinbutton", name="BPM from").fill("")
        page.get_by_role("spinbutton", name="BPM to").fill("")
        wait_rendered(page, filters(key=keys[n % len(keys)]))
        page.get_by_role("spinbutton", name="BPM to").fill("180")
        wait_rendered(page, filters(key=keys[n % len(keys)], bpm_max="180"))
        low = str(100 + 5 * n)
        page.get_by_role("spinbutton", name="BPM from").fill(low)  # the measured change
        keyed.append(wait_rendered(page, filters(key=keys[n % len(keys)], bpm_min=low, bpm_max="180")))
    context.close()
    return many, none, keyed


def row(label: str, values, goal: float) -> list:
    median, worst = statistics.median(values), max(values)
    return [label, len(values), f"{median * 1000:.0f} ms", f"{worst * 1000:.0f} ms", f"<= {goal * 1000:.0f} ms",
            "met" if worst <= goal else ("median met" if median <= goal else "NOT met")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="generations recorded (default 100,000)")
    parser.add_argument("--runs", type=int, default=9, help="runs of each measure (default 9)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="dgx-bench-web-") as temporary:
        work = Path(temporary)
        url = f"sqlite:///{work / 'history.db'}"
        start = time.perf_counter()
        populate(url, args.count)
        print(f"recorded {args.count:,} generations in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        with running_service(work, service_env(work, url), "--workers", "0") as service, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            version = browser.version
            try:
                clickable, painted = bench_navigation(browser, service.base_url + "/", args.runs)
                many, none, keyed = bench_search(browser, service.base_url + "/", args.runs)
            finally:
                browser.close()
    records = f"{args.count:,} records"
    rows = [
        row(f"navigation to the first row clickable (Playwright), {records}", clickable, 1.0),
        row(f"navigation start to the first rows painted (in the page), {records}", painted, 1.0),
        row("search typed to its rows painted: words matching many rows", many, 0.2),
        row(f"search typed to its rows painted: a word matching none (scans all {records})", none, 0.2),
        row("filter key + BPM range changed to its rows painted", keyed, 0.2),
    ]
    print(f"Machine: {machine()}, Chromium {version} headless")
    print(table(["measure", "runs", "median", "worst", "goal", ""], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
