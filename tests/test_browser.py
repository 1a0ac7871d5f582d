"""The app in a real browser (headless Chromium + Playwright): every page opens, data upload errors show,
a tiny model trains through the UI with its live loss chart, and a second browser session keeps its own model.

Skipped with the reason when Chromium or Playwright is missing (``.ci/run`` installs both). Set
CHRONOS_SCREENSHOT_DIR to keep 1280x900 screenshots of the Data and Train pages.
"""

import os

from tests.browser_support import app_server, open_page, page, wait_idle  # noqa: F401

PAGES = ["Overview", "Data", "Train", "Manifold", "Timeline", "Live replay", "Latency", "Diagnostics", "Evidence"]
SHOTS = os.environ.get("CHRONOS_SCREENSHOT_DIR", "")


def _shot(pg, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        pg.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def _sidebar(pg) -> str:
    return pg.locator('[data-testid="stSidebar"]').inner_text()


def _no_exception(pg, where: str) -> None:
    exc = pg.locator('[data-testid="stException"]')
    assert exc.count() == 0, f"{where} shows an exception: {exc.first.inner_text()[:500]}"


def _ready(pg) -> None:
    """Wait for app.py's navigation: Streamlit may first show the legacy app_pages/ list (app, data, train ...)."""
    wait_idle(pg)
    pg.locator('[data-testid="stSidebarNav"] a').filter(has_text="Live replay").wait_for()


def test_every_sidebar_page_opens_without_an_exception(page):  # noqa: F811
    _ready(page)
    links = page.locator('[data-testid="stSidebarNav"] a')
    assert [t.strip().splitlines()[-1] for t in links.all_inner_texts()] == PAGES  # icon name, then title
    for title in PAGES[1:] + PAGES[:1]:
        open_page(page, title)
        page.wait_for_selector("h1")
        _no_exception(page, title)
    assert "Synthetic regimes (labelled)" in _sidebar(page) and "shipped sample checkpoint" in _sidebar(page)
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg')  # the Overview's timeline chart
    open_page(page, "Data")
    page.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg')  # the Data page's price chart
    _shot(page, "data")


def test_a_bad_upload_shows_a_readable_error_on_the_data_page(page, tmp_path):  # noqa: F811
    _ready(page)
    open_page(page, "Data")
    page.get_by_text("Upload a file").click()
    wait_idle(page)
    bad = tmp_path / "spaces.csv"
    bad.write_text("time price volume\n1 2 3\n4 5 6\n")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bad))
    err = page.locator('[data-testid="stAlertContentError"]', has_text="Upload refused")
    err.wait_for()
    assert "separated by spaces" in err.inner_text()
    _no_exception(page, "Data after a bad upload")
    page.get_by_text("Sample dataset").click()  # back to the sample for the next tests
    wait_idle(page)


def test_a_tiny_model_trains_through_the_ui_with_a_live_loss_chart(page):  # noqa: F811
    _ready(page)
    open_page(page, "Train")
    page.get_by_role("spinbutton", name="Encoder epochs").fill("2")
    page.get_by_role("spinbutton", name="Predictor epochs").fill("1")
    # Record whether the live panel (progress bar + loss chart) ever showed, however short the run.
    page.evaluate("""() => {
        window.__live = {progress: false, chart: false};
        const main = document.querySelector('[data-testid="stMain"]');
        new MutationObserver(() => {
            if (main.querySelector('[data-testid="stProgress"]')) {
                window.__live.progress = true;
                if (main.querySelectorAll('[data-testid="stPlotlyChart"]').length >= 2) window.__live.chart = true;
            }
        }).observe(main, {childList: true, subtree: true});
    }""")
    page.get_by_role("button", name="Train").click()
    # The sidebar flips to the new model when the background run has finished and the app reran.
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebar\"]')"
                           "?.innerText.includes('trained in this session')", timeout=120_000)
    wait_idle(page)
    _no_exception(page, "Train after training")
    assert page.evaluate("() => window.__live") == {"progress": True, "chart": True}
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.locator(".main-svg").first.wait_for()
    legend = chart.inner_text()
    for term in ("InfoNCE", "TER", "LCR", "entropy", "target", "predictor MSE"):
        assert term in legend
    assert page.get_by_text("Timeline entropy").count() >= 1
    _shot(page, "train")
    # The new model is what the other pages see.
    open_page(page, "Manifold")
    assert "trained in this session" in _sidebar(page)


def test_a_bad_checkpoint_upload_shows_the_error(page, tmp_path):  # noqa: F811
    _ready(page)
    open_page(page, "Train")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(junk))
    wait_idle(page)
    page.get_by_role("button", name="Load", exact=True).click()
    err = page.locator('[data-testid="stAlertContentError"]', has_text="Could not load")
    err.wait_for()
    assert "not a readable ChronosDefrag checkpoint" in err.inner_text()
    assert "trained in this session" in _sidebar(page)  # the trained model is still active


def test_a_second_browser_session_keeps_its_own_model(page, app_server):  # noqa: F811
    other = page.context.browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        other.goto(app_server + "/", wait_until="domcontentloaded")
        other.wait_for_selector('[data-testid="stSidebarNav"]')
        wait_idle(other)
        assert "shipped sample checkpoint" in _sidebar(other)
        assert "trained in this session" in _sidebar(page)
    finally:
        other.close()

