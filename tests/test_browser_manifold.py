"""Real browser: the Manifold page's lasso selection highlights blocks on the price series; Timeline renders.

The server runs with CHRONOS_FAST_UI=1 (tests/browser_support.py), so the Manifold page opens on PCA and no
UMAP JIT runs in the test.
"""

import re

from tests.browser_support import app_server, open_page, page, wait_idle  # noqa: F401

CHART = '[data-testid="stPlotlyChart"]'


def _goto(pg, title: str, heading: str) -> None:
    """Open a page from the sidebar; a click that lands while the previous page is still running can be
    dropped by Streamlit, so wait for the heading and click again if it did not come."""
    wait_idle(pg)
    for _ in range(3):
        open_page(pg, title)
        try:
            pg.get_by_role("heading", name=heading).wait_for(timeout=20_000)
            return
        except Exception:  # noqa: BLE001 - retried, then the last wait below reports it
            continue
    pg.get_by_role("heading", name=heading).wait_for(timeout=30_000)


def _lasso(pg, box: dict, frac: float = 0.42) -> None:
    """Draw a closed lasso polygon around the centre of a plot's drag area, in small mouse steps."""
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    dx, dy = box["width"] * frac, box["height"] * frac
    pts = [(cx - dx, cy - dy), (cx + dx, cy - dy), (cx + dx, cy + dy), (cx - dx, cy + dy), (cx - dx, cy - dy + 5)]
    pg.mouse.move(*pts[0])
    pg.mouse.down()
    for x, y in pts[1:]:
        pg.mouse.move(x, y, steps=12)
    pg.mouse.up()


def test_lasso_on_the_projection_highlights_blocks_on_the_price_series(page):  # noqa: F811
    _goto(page, "Manifold", "Regime manifold")
    page.wait_for_selector(f"{CHART} .main-svg")
    page.get_by_text("Lasso or box-select points on the projection").wait_for()
    assert page.get_by_text(re.compile(r"PCA 2-D of \d+ blocks")).count() == 1
    drag = page.locator(f"{CHART}").first.locator(".nsewdrag").first
    _lasso(page, drag.bounding_box())
    caption = page.get_by_text(re.compile(r"\d+ block\(s\) selected on the projection"))
    caption.wait_for(timeout=60_000)
    wait_idle(page)
    n = int(re.match(r"(\d+)", caption.inner_text()).group(1))
    assert n > 0
    # The price chart's legend names the highlighted trace with the same count.
    assert page.locator(f"{CHART} text.legendtext", has_text=f"selected blocks ({n})").count() == 1
    assert page.get_by_text("Selected blocks: mean return").count() == 1
    page.get_by_role("button", name="Clear selection").click()
    page.get_by_text("Lasso or box-select points on the projection").wait_for()
    assert not page.locator('[data-testid="stException"]').count()


def test_timeline_page_shows_both_orders_heatmaps_and_the_walk(page):  # noqa: F811
    _goto(page, "Timeline", "Timeline: chronological vs defragmented")
    page.wait_for_selector(f"{CHART} .main-svg")
    page.get_by_text("Pseudo-timeline (defragmented)").first.wait_for()
    # The side-by-side orders, the orderings compared against the lower bound, the heatmaps and the walk.
    page.get_by_text("Orderings compared").wait_for()
    assert page.locator(CHART).count() == 4
    assert page.get_by_text("Timeline entropy").count() >= 1
    assert page.get_by_text(re.compile(r"Optimality gap = path cost / lower bound")).count() == 1
    assert page.locator(f"{CHART} .updatemenu-button").count() == 2                  # ▶ Play and ⏸ Pause
    assert not page.locator('[data-testid="stException"]').count()
