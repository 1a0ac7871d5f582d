"""Real-browser test support: a Streamlit server on a free loopback port and a headless Chromium page.

Import the fixtures into a test module (``from tests.browser_support import app_server, page  # noqa: F401``).
Tests using them are skipped, with the reason, when Chromium or Playwright is missing; ``.ci/run`` installs
both so CI really runs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_reason() -> str | None:
    if CHROMIUM is None:
        return "Chromium is not installed (apt-get install -y --no-install-recommends chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture(scope="module")
def app_server():
    """Base URL of a fresh `streamlit run app.py` (killed after the module)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", CHRONOS_FAST_UI="1")
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"streamlit-test-{port}.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
         str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit server did not become healthy within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(app_server):
    """A 1280x900 Playwright page already opened on the app's first page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.set_default_timeout(60_000)
        pg.goto(app_server + "/", wait_until="domcontentloaded")
        pg.wait_for_selector('[data-testid="stSidebarNav"]')
        yield pg
        browser.close()


def wait_idle(pg, timeout: float = 90_000) -> None:
    """Wait until the app's script run has finished."""
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


def open_page(pg, title: str) -> None:
    """Switch page by clicking its sidebar link (keeps the session) and wait for the run to finish."""
    pg.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    pg.wait_for_timeout(300)
    wait_idle(pg)
