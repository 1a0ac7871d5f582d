"""The app at size, timed through a real browser: a plain ``streamlit run app.py`` (no test settings) and headless
Chromium drive the sample's pages, upload a large file, "Use this data", Train with the defaults (progress bar,
first job event), a second browser session's pages while the job runs, the first Manifold / Timeline of the new
model, then every page twice. Prints each figure as it is measured and writes them all to OUT/results.json with
full-page screenshots next to it.

    python benchmarks/browser_flow.py OUT [--rows 1000000] [--file FILE]

Without ``--file`` it writes a labelled minute-bar regime CSV of ``--rows`` rows (``bench_at_size``'s file).
Needs Chromium and Playwright (``requirements-dev.txt``). Page times are from the sidebar click to the end of the
page's script run (plus its first chart where named), so they include the browser's drawing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PAGES = ("Overview", "Data", "Train", "Manifold", "Timeline", "Live replay", "Latency", "Diagnostics", "Evidence")
CHARTS = ("Manifold", "Timeline")


def _server(out: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("CHRONOS_FAST_UI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--server.maxUploadSize", "1000"],
        cwd=ROOT, env=env, stdout=open(os.path.join(out, "server.log"), "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the streamlit server did not become healthy within 2 minutes")


def _idle(pg, timeout: float = 600_000) -> None:
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


def _open(pg, title: str) -> dict:
    """Seconds from the sidebar click to the end of the run (and the first chart on chart pages); exceptions."""
    t = time.time()
    pg.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    pg.wait_for_timeout(250)
    _idle(pg)
    if title in CHARTS:
        pg.wait_for_selector('[data-testid="stMain"] [data-testid="stPlotlyChart"] .main-svg', timeout=600_000)
    return {"s": round(time.time() - t, 2), "exceptions": pg.locator('[data-testid="stException"]').count()}


def _sidebar_has(pg, text: str, timeout: float) -> None:
    pg.wait_for_function(f"() => document.querySelector('[data-testid=\"stSidebar\"]')?.innerText.includes('{text}')",
                         timeout=timeout)


def run(csv: str, out: str) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.browser_support import CHROME_ARGS, CHROMIUM

    res: dict = {"file": os.path.basename(csv), "file_mb": round(os.path.getsize(csv) / 1e6, 1),
                 "load_avg_before": os.getloadavg()}

    def note(key: str, value: object) -> None:
        res[key] = value
        print(key, value, flush=True)

    proc, url = _server(out)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
            pg = b.new_page(viewport={"width": 1400, "height": 1000})
            pg.set_default_timeout(600_000)
            t = time.time()
            pg.goto(url + "/", wait_until="domcontentloaded")
            pg.wait_for_selector("h1")
            _idle(pg)
            note("sample_overview_first_s", round(time.time() - t, 2))
            note("sample_data_first", _open(pg, "Data"))
            note("sample_overview_again", _open(pg, "Overview"))
            note("sample_data_again", _open(pg, "Data"))
            pg.get_by_text("Upload a file").click()
            _idle(pg)
            t = time.time()
            pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(csv)
            pg.get_by_role("button", name="Use this data").wait_for(timeout=600_000)
            _idle(pg)
            note("upload_parse_s", round(time.time() - t, 2))
            t_use = time.time()
            pg.get_by_role("button", name="Use this data").click()
            _sidebar_has(pg, res["file"], 600_000)
            _idle(pg)
            note("use_s", round(time.time() - t_use, 2))
            note("upload_plus_use_s", round(time.time() - t, 2))
            pg.screenshot(path=os.path.join(out, "data_used.png"), full_page=True)
            note("train_page", _open(pg, "Train"))
            t = time.time()
            pg.get_by_role("button", name="Train").click()
            pg.wait_for_selector('[data-testid="stMain"] [data-testid="stProgress"]', timeout=60_000)
            note("progress_bar_s", round(time.time() - t, 2))
            pg.wait_for_function(
                "() => { const b = document.querySelector('[data-testid=\"stMain\"] [data-testid=\"stProgress\"]');"
                " return b && !b.innerText.includes('Starting the training process')"
                " && !b.innerText.includes('Waiting'); }", timeout=120_000)
            note("first_event_shown_s", round(time.time() - t, 2))
            pg.wait_for_timeout(10_000)
            pg.screenshot(path=os.path.join(out, "train_running.png"), full_page=True)
            other = b.new_page(viewport={"width": 1400, "height": 1000})
            other.set_default_timeout(120_000)
            t2 = time.time()
            other.goto(url + "/", wait_until="domcontentloaded")
            other.wait_for_selector("h1")
            _idle(other)
            note("second_session_overview_s", round(time.time() - t2, 2))
            for title in PAGES[1:]:
                note(f"second_session_{title}", _open(other, title))
            other.screenshot(path=os.path.join(out, "second_session.png"), full_page=True)
            other.close()
            _sidebar_has(pg, "trained in this session", 1_800_000)
            note("train_total_s", round(time.time() - t, 2))
            _idle(pg)
            for title in CHARTS:
                note(f"{title}_first", _open(pg, title))
            for visit in (1, 2):
                for title in PAGES:
                    note(f"{title}_later_{visit}", _open(pg, title))
                    if visit == 1:
                        pg.wait_for_timeout(1000)
                        pg.screenshot(path=os.path.join(out, f"page_{title.replace(' ', '_')}.png"), full_page=True)
            b.close()
    finally:
        proc.terminate()
        proc.wait(10)
        res["load_avg_after"] = os.getloadavg()
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="folder for results.json and the screenshots")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file (1,000,000)")
    ap.add_argument("--file", help="time this CSV / Parquet file instead of a generated one")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    csv = a.file
    if csv is None:
        from chronoslib.bench_at_size import write_regime_csv

        csv = os.path.join(a.out, f"regimes_{a.rows}.csv")
        write_regime_csv(csv, a.rows, 64)
    run(csv, a.out)


if __name__ == "__main__":
    main()
