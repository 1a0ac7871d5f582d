"""Real browser: play the live replay for a few seconds and check that the gauges and counters update.

Also prints the replay rate the browser actually showed (windows per second and redraws per second, read from
the player's own counters), which the README quotes; the assertions are about behaviour, not speed.
"""

import json
import os
import time

from tests.browser_support import app_server, open_page, page, wait_idle  # noqa: F401

PLAYER = 'iframe[title="pages.lib.replay_player.replay_player"]'


def _shown(pg) -> int:
    """The player's count of shown windows; waits while the iframe is (re)mounting and has not drawn yet."""
    pg.wait_for_function(
        f"() => document.querySelector('{PLAYER}')?.contentDocument?.body?.dataset.shown !== undefined")
    return int(pg.frame_locator(PLAYER).locator("body").get_attribute("data-shown"))


def test_playing_a_replay_updates_the_gauges_in_the_browser(page):  # noqa: F811
    open_page(page, "Live replay")
    frame = page.frame_locator(PLAYER)
    body = frame.locator("body")
    frame.locator("#gauges .indicatorlayer text.number").first.wait_for()
    assert body.get_attribute("data-shown") == "0"
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(  # the player has drawn its first windows
        f"() => Number(document.querySelector('{PLAYER}').contentDocument.body.dataset.shown || 0) > 0")
    seen, t0 = set(), time.time()
    w0, d0 = int(body.get_attribute("data-shown")), int(body.get_attribute("data-draws"))
    while time.time() - t0 < 3.0:
        seen.add(frame.locator("#gauges .indicatorlayer text.number").first.text_content())
        page.wait_for_timeout(100)
    w1, d1, dt = int(body.get_attribute("data-shown")), int(body.get_attribute("data-draws")), time.time() - t0
    rate = {"windows_per_s": (w1 - w0) / dt, "redraws_per_s": (d1 - d0) / dt}
    print("browser replay rate:", json.dumps(rate))
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "chronos_replay_rate.json"), "w") as f:
        json.dump(rate, f)
    assert len(seen) >= 3, f"the confidence gauge showed only {seen}"
    assert w1 > w0 and d1 > d0
    assert frame.locator("#nb table tr").count() == 1 + 8       # header + top-k neighbours of the shown window
    page.get_by_role("button", name="Pause").click()
    wait_idle(page)
    page.get_by_role("button", name="Play").wait_for()
    shown = _shown(page)
    # The server moves to the window the browser showed when paused (it predicts ahead while playing).
    page.get_by_text(f"{shown} of 249 windows replayed").wait_for()
    page.wait_for_timeout(600)
    assert _shown(page) == shown   # paused: nothing moves
