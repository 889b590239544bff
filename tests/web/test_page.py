"""The page at ``/`` in a real browser: Playwright driving Debian's Chromium against a real
``dgx-music serve`` on a free port (history and files under the test's temporary folder).

Things are found as a person (or a screen reader) finds them: by role and accessible name
("Prompt", "Generate", "Search", "Library", "Play"/"Pause", "API key"). What the page
shows is checked against what the API says, read independently over HTTP.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.service import running_service, service_env, wait_for

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# Tracks recorded through the API before the page opens: distinct keys and tempos to filter on.
SEEDED = ["dark techno in A minor at 128 BPM", "uplifting house in C major at 124 BPM",
          "chill lofi hip hop in E minor at 85 BPM"]
TRACK_SECONDS = 5
KEY = "sesame-web-test"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
                       reason="Debian's chromium is not installed (apt-get install chromium; scripts/test.sh does)"),
    pytest.mark.slow,
]
expect = sync_api.expect


def chromium_path() -> str:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def start(tmp_path_factory, name: str, *args: str, **env: str):
    folder = tmp_path_factory.mktemp(name)
    return running_service(folder, service_env(folder, f"sqlite:///{folder / 'history.db'}", **env), *args)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One service for the module, with three completed tracks."""
    with start(tmp_path_factory, "web") as running:
        for prompt in SEEDED:
            accepted = running.submit(prompt, duration=TRACK_SECONDS, seed=3)
            running.wait_for_status(accepted["id"], "completed", timeout=120)
        yield running


def open_page(browser, service, width: int = 1280, height: int = 800):
    """A fresh browser context (its own storage) on the service's page; every request it
    makes is recorded, to check that none leaves the service's origin."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.requests = []
    page.errors = []
    page.on("request", lambda request: page.requests.append(request))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(service.base_url + "/")
    return context, page


@pytest.fixture
def page(browser, service):
    context, page = open_page(browser, service)
    try:
        yield page
        check_same_origin(page, service)
    finally:
        context.close()


def check_same_origin(page, service) -> None:
    foreign = [request.url for request in page.requests
               if request.url.startswith(("http:", "https:", "ws:", "wss:"))
               and not request.url.startswith(service.base_url + "/")]
    assert foreign == [], f"requests left the server's origin: {foreign}"
    assert page.errors == [], f"errors in the page: {page.errors}"


def library(page):
    return page.get_by_role("table", name="Library")


def rows(page):
    return library(page).locator("tbody tr")


def row_prompts(page) -> list:
    expect(library(page)).to_have_attribute("aria-busy", "false")
    return rows(page).locator("button.track").all_inner_texts()


def api_prompts(service, **params) -> list:
    response = service.client.get("/api/v1/generations", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [item["prompt"] for item in response.json()["items"]]


def audio_state(page) -> dict:
    return page.evaluate("() => { const a = document.querySelector('audio');"
                         " return {time: a.currentTime, paused: a.paused, duration: a.duration, src: a.src}; }")


def select_track(page, prompt: str) -> None:
    library(page).get_by_role("button", name=prompt, exact=True).click()
    player = page.get_by_role("region", name="Player")
    expect(player.get_by_role("heading", name=prompt)).to_be_visible()
    expect(player.get_by_role("button", name="Play")).to_be_enabled()


# --------------------------------------------------------------------------- the page


def test_the_page_lists_the_library_newest_first(page, service):
    expect(page).to_have_title("dgx-music")
    prompts = row_prompts(page)
    assert prompts == api_prompts(service)
    assert prompts[-len(SEEDED):] == list(reversed(SEEDED))  # other tests of this module add newer ones
    newest = service.client.get("/api/v1/generations", params={"limit": 1}).json()["items"][0]
    cells = rows(page).first.locator("td")
    expect(cells.nth(4)).to_have_text(f"{newest['key']} · {newest['camelot']}")  # key with its Camelot code
    expect(cells.nth(3)).to_have_text(str(round(newest["bpm"], 1)).removesuffix(".0"))
    expect(cells.nth(5)).to_have_text(f"{newest['loudness_lufs']:.1f} LUFS")
    expect(cells.nth(6)).to_have_text(f"{newest['true_peak_dbtp']:.1f} dBTP")
    expect(cells.nth(7)).to_have_text("Completed")


def test_generate_shows_progress_then_the_new_track_ready_to_play(page, service):
    prompt = "funky disco in G major at 118 BPM"
    # A longer job submitted just before keeps the one runner busy for about two seconds: the
    # page's job waits behind it, so its stream shows the queue position and every step.
    blocker = service.submit("slow ambient drone in D minor at 64 BPM", duration=30, seed=1)
    page.get_by_role("textbox", name="Prompt").fill(prompt)
    page.get_by_label("Duration (s)").fill("4")
    page.get_by_label("Seed").fill("11")
    page.get_by_role("button", name="Generate").click()

    job = page.get_by_role("list", name="Progress").get_by_role("listitem").filter(has_text=prompt)
    expect(job).to_be_visible()
    expect(job.locator(".job-state")).to_have_text("Completed: ready to play", timeout=60_000)
    # The trail of states seen: the queue position first, then the steps in order (the stream
    # sends the state when it looks, so a step of a few milliseconds may be passed over),
    # completed last.
    trail = job.locator(".job-trail").inner_text().split(" → ")
    steps = ["Starting", "Generating", "Analysing", "Exporting", "Finishing"]
    assert trail[0] == "Queued (position 1)" and trail[-1] == "Completed", trail
    assert "Generating" in trail and trail[1:-1] == [step for step in steps if step in trail], trail
    assert service.record(blocker["id"])["status"] == "completed"
    # The new track heads the library and is loaded in the player.
    expect(rows(page).first.get_by_role("button", name=prompt, exact=True)).to_be_visible()
    expect(rows(page).first).to_have_attribute("aria-current", "true")
    player = page.get_by_role("region", name="Player")
    expect(player.get_by_role("heading", name=prompt)).to_be_visible()
    expect(player.get_by_role("button", name="Play")).to_be_enabled()
    record = service.client.get("/api/v1/generations", params={"q": "funky disco", "limit": 1}).json()["items"][0]
    assert record["status"] == "completed" and record["duration_seconds"] == 4


def test_play_pause_space_and_download(page, service):
    prompt = SEEDED[0]
    select_track(page, prompt)
    download = page.get_by_role("link", name="Download WAV")
    href = download.get_attribute("href")
    assert re.fullmatch(r"/api/v1/generations/[0-9a-f-]+/audio\?download=true", href), href
    response = service.client.get(href)
    assert response.status_code == 200 and response.headers["content-disposition"].startswith("attachment")

    page.get_by_role("button", name="Play").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    wait_for(lambda: audio_state(page)["time"] > 0.3, 15, what="audio.currentTime to advance")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    assert audio_state(page)["paused"]

    # Space toggles play and pause: with the selected row's button focused (where a click on
    # it leaves the focus) and with nothing focused; not while typing in an input.
    for focus in (library(page).get_by_role("button", name=prompt, exact=True),
                  page.get_by_role("heading", name="Library")):
        focus.click()
        page.keyboard.press("Space")
        expect(page.get_by_role("button", name="Pause")).to_be_visible()
        page.keyboard.press("Space")
        expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.get_by_role("searchbox", name="Search").press("Space")
    page.wait_for_timeout(200)
    assert audio_state(page)["paused"]


def test_clicking_the_waveform_seeks_there(page, service):
    select_track(page, SEEDED[1])
    waveform = page.get_by_role("slider", name="Waveform")
    # Drawn from the API's peaks (audiowaveform JSON, int16 full scale = the canvas's half height).
    peaks_url = wait_for(lambda: next((r.url for r in page.requests if "/peaks?points=" in r.url), None), 10,
                         what="the peaks request")
    peaks = service.client.get(peaks_url.removeprefix(service.base_url)).json()
    assert peaks["version"] == 2 and peaks["bits"] == 16
    width = 2 * peaks["channels"]
    pixels = [peaks["data"][n:n + width] for n in range(0, len(peaks["data"]), width)]
    lows, highs = [min(p[0::2]) / 32767 for p in pixels], [max(p[1::2]) / 32767 for p in pixels]
    at_least = max(high - low for low, high in zip(lows, highs)) / 2
    at_most = (max(highs) - min(lows)) / 2

    def tallest_bar():  # of the canvas's height; the white playhead is not a bar
        return page.evaluate("""() => { const c = document.querySelector('canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let best = 0;
            for (let x = 0; x < c.width; x++) {
              let lit = 0;
              for (let y = 0; y < c.height; y++) {
                const i = 4 * (y * c.width + x);
                if (d[i + 3] && !(d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255)) lit++;
              }
              best = Math.max(best, lit);
            }
            return [best, c.height]; }""")

    wait_for(lambda: tallest_bar()[0] > 4, 10, what="the waveform to be drawn")
    bar, height = tallest_bar()
    assert at_least - 2 / height <= bar / height <= at_most + 2 / height, (bar / height, at_least, at_most)
    wait_for(lambda: audio_state(page)["duration"] == pytest.approx(TRACK_SECONDS, abs=0.05), 10,
             what="the audio's duration")
    box = waveform.bounding_box()
    for fraction in (0.75, 0.25):
        waveform.click(position={"x": box["width"] * fraction, "y": box["height"] / 2})
        wait_for(lambda: abs(audio_state(page)["time"] - fraction * TRACK_SECONDS) < 0.15, 10,
                 what=f"a seek to {fraction:.0%}")
        expect(waveform).to_have_attribute("aria-valuenow", str(round(fraction * TRACK_SECONDS)))
    # Playing goes on from there; the browser fetched the audio in byte ranges.
    page.get_by_role("button", name="Play").click()
    wait_for(lambda: audio_state(page)["time"] > 0.25 * TRACK_SECONDS + 0.3, 15, what="playback from the seek")
    page.get_by_role("button", name="Pause").click()
    audio = [request for request in page.requests if re.search(r"/audio($|\?)", request.url)]
    assert audio and any("range" in request.all_headers() for request in audio)


def test_search_and_filters_change_the_rows(page, service):
    records = service.client.get("/api/v1/generations", params={"limit": 100}).json()["items"]
    search = page.get_by_role("searchbox", name="Search")
    search.fill("HOUSE")
    expect(rows(page)).to_have_count(1)
    assert row_prompts(page) == ["uplifting house in C major at 124 BPM"]
    search.fill("")
    expect(rows(page)).to_have_count(len(records))

    techno = next(item for item in records if item["prompt"] == SEEDED[0])
    same_key = [item["prompt"] for item in records if item["camelot"] == techno["camelot"]]
    page.get_by_role("combobox", name="Key").select_option(techno["camelot"])
    expect(rows(page)).to_have_count(len(same_key))
    assert row_prompts(page) == same_key == api_prompts(service, key=techno["camelot"])
    page.get_by_role("combobox", name="Key").select_option("")

    low, high = 70, 100
    in_range = [item["prompt"] for item in records if low <= item["bpm"] <= high]
    assert in_range, [item["bpm"] for item in records]
    page.get_by_role("spinbutton", name="BPM from").fill(str(low))
    page.get_by_role("spinbutton", name="BPM to").fill(str(high))
    expect(rows(page)).to_have_count(len(in_range))
    assert row_prompts(page) == in_range == api_prompts(service, bpm_min=low, bpm_max=high)

    page.get_by_role("combobox", name="Status").select_option("failed")
    expect(page.get_by_text("No generations match.")).to_be_visible()
    expect(rows(page)).to_have_count(0)

    # A range the API refuses is explained in words.
    page.get_by_role("combobox", name="Status").select_option("")
    page.get_by_role("spinbutton", name="BPM from").fill("150")
    expect(page.get_by_role("alert").filter(has_text="bpm_min")).to_contain_text("is above bpm_max")


def test_an_empty_prompt_is_refused_in_words(page, service):
    before = len(api_prompts(service))
    page.get_by_role("button", name="Generate").click()
    alert = page.locator("#generate-form").get_by_role("alert")
    expect(alert).to_contain_text("prompt", ignore_case=True)  # the problem's detail, about the field
    expect(alert).to_contain_text("at least 1 character")
    expect(page.get_by_role("textbox", name="Prompt")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("textbox", name="Prompt")).to_be_focused()
    assert len(api_prompts(service)) == before
    # Typing a prompt and generating clears the message.
    page.get_by_role("textbox", name="Prompt").fill("ambient pads in D major at 70 BPM")
    page.get_by_label("Duration (s)").fill("4")
    page.get_by_role("button", name="Generate").click()
    expect(alert).to_be_hidden()
    expect(page.get_by_role("list", name="Progress").get_by_role("listitem").first).to_contain_text(
        "Completed", timeout=60_000)


def test_readable_on_a_phone(browser, service):
    context, page = open_page(browser, service, width=390, height=844)
    try:
        expect(rows(page).first).to_be_visible()
        select_track(page, SEEDED[2])
        expect(page.get_by_role("slider", name="Waveform")).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px screen"
        # Every control and the library lie within the screen's width, none cut off.
        outside = page.evaluate("""() => [...document.querySelectorAll(
              'input, select, textarea, button, a, canvas, table, h1, h2')]
            .filter((e) => e.offsetParent !== null && !e.closest('dialog'))
            .map((e) => [e.id || e.textContent.trim().slice(0, 30), e.getBoundingClientRect()])
            .filter(([, box]) => box.left < 0 || box.right > 390)
            .map(([name, box]) => `${name}: ${Math.round(box.left)}..${Math.round(box.right)}`)""")
        assert outside == [], outside
        for control in (page.get_by_role("textbox", name="Prompt"), page.get_by_role("button", name="Generate"),
                        page.get_by_role("searchbox", name="Search"), page.get_by_role("button", name="Play")):
            expect(control).to_be_visible()
        check_same_origin(page, service)
    finally:
        context.close()


@pytest.fixture(scope="module")
def idle_service(tmp_path_factory):
    """No runner (``--workers 0``: jobs wait), a queue of one, and 120 completed
    generations recorded (bulk-inserted as the service benchmark does)."""
    from benchmarks.bench_service import populate
    from services.storage import dispose_engines

    folder = tmp_path_factory.mktemp("web-idle")
    url = f"sqlite:///{folder / 'history.db'}"
    populate(url, 120)
    dispose_engines()
    with running_service(folder, service_env(folder, url, DGX_MUSIC_QUEUE_LIMIT="1"), "--workers", "0") as running:
        yield running


def test_the_library_pages_on_as_it_scrolls(browser, idle_service):
    expected, cursor = [], None
    while True:  # every generation, newest first, as the API pages them
        page_of = idle_service.client.get("/api/v1/generations", params={"limit": 100, "cursor": cursor}
                                          if cursor else {"limit": 100}).json()
        expected += [item["id"] for item in page_of["items"]]
        cursor = page_of["next_cursor"]
        if not cursor:
            break
    assert len(expected) > 100
    context, page = open_page(browser, idle_service)
    try:
        expect(rows(page)).to_have_count(50)  # one page, not the whole history
        load_more = page.get_by_role("button", name="Load more")
        expect(load_more).to_be_visible()
        # The button (a click event, without scrolling to it, which would load a page anyway).
        load_more.dispatch_event("click")
        expect(rows(page)).to_have_count(100)
        rows(page).last.scroll_into_view_if_needed()  # scrolling near the end loads the next page
        expect(rows(page)).to_have_count(len(expected))
        expect(load_more).to_be_hidden()
        assert rows(page).evaluate_all("rows => rows.map(row => row.dataset.id)") == expected
        check_same_origin(page, idle_service)
    finally:
        context.close()


def test_a_full_queue_is_reported_with_its_retry_after(browser, idle_service):
    # No runner: the first job waits; with a queue of one, the second is refused (429).
    context, page = open_page(browser, idle_service)
    try:
        page.get_by_role("textbox", name="Prompt").fill("techno at 130 BPM")
        page.get_by_role("button", name="Generate").click()
        expect(page.get_by_role("list", name="Progress")).to_contain_text("Queued (position 1)")
        with page.expect_response(lambda response: response.request.method == "POST") as refusal:
            page.get_by_role("button", name="Generate").click()
        assert refusal.value.status == 429
        retry_after = refusal.value.headers["retry-after"]
        alert = page.locator("#generate-form").get_by_role("alert")
        expect(alert).to_contain_text("The queue is full")
        expect(alert).to_have_text(re.compile(rf"Try again in {retry_after} s\.$"))
        check_same_origin(page, idle_service)
    finally:
        context.close()


def test_with_api_keys_the_page_asks_for_the_key_once_and_works(browser, tmp_path_factory):
    with start(tmp_path_factory, "web-keys", DGX_MUSIC_API_KEYS=f"other-key,{KEY}") as keyed:
        assert keyed.client.get("/api/v1/generations").status_code == 401
        context, page = open_page(browser, keyed)
        try:
            dialog = page.get_by_role("dialog", name="API key")
            expect(dialog).to_be_visible()
            dialog.get_by_label("API key").fill("wrong-key")
            dialog.get_by_role("button", name="Save key").click()
            expect(dialog).to_be_visible()  # refused: asked again, saying why
            expect(dialog).to_contain_text("not valid")
            dialog.get_by_label("API key").fill(KEY)
            dialog.get_by_role("button", name="Save key").click()
            expect(dialog).to_be_hidden()
            expect(library(page)).to_have_attribute("aria-busy", "false")
            assert page.evaluate("() => localStorage.getItem('dgx-music.api-key')") == KEY

            prompt = "deep house in F minor at 122 BPM"
            page.get_by_role("textbox", name="Prompt").fill(prompt)
            page.get_by_label("Duration (s)").fill("4")
            page.get_by_role("button", name="Generate").click()
            expect(rows(page).first.get_by_role("button", name=prompt)).to_be_visible(timeout=60_000)
            player = page.get_by_role("region", name="Player")
            expect(player.get_by_role("heading", name=prompt)).to_be_visible()
            # <audio src> and the download carry the key as access_token (no header possible).
            assert f"access_token={KEY}" in audio_state(page)["src"]
            assert f"access_token={KEY}" in page.get_by_role("link", name="Download WAV").get_attribute("href")
            page.get_by_role("button", name="Play").click()
            wait_for(lambda: audio_state(page)["time"] > 0.3, 15, what="playback with the key")
            page.get_by_role("button", name="Pause").click()

            # The key is kept: a new page of this browser does not ask again.
            page.reload()
            expect(rows(page).first).to_be_visible()
            expect(dialog).to_be_hidden()
            check_same_origin(page, keyed)
        finally:
            context.close()
