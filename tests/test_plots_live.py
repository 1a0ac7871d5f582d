"""Live replay figure builders: valid plotly (validated rebuild) with the data they were given."""

import numpy as np
import pytest

from chronoslib import drift
from chronoslib.plots import live, style
from tests.plot_support import A, valid


def test_gauges_show_confidence_alpha_and_the_threshold():
    fig = valid(live.gauges(0.82, 0.3, threshold=0.6, alpha_range=0.25, online_confidence=0.7))
    assert [t.type for t in fig.data] == ["indicator"] * 3
    assert fig.data[0].value == pytest.approx(0.82) and fig.data[1].value == pytest.approx(0.7)
    assert fig.data[2].value == pytest.approx(0.25)                 # alpha clipped into the gauge range
    assert fig.data[0].gauge.threshold.value == pytest.approx(0.6)
    assert fig.data[0].gauge.steps[0].range == (0.0, 0.6)
    empty = valid(live.gauges(None, float("nan"), 0.5))
    assert empty.data[0].value is None and empty.data[1].value is None
    with pytest.raises(ValueError, match="alpha_range"):
        live.gauges(0.5, 0.1, 0.5, alpha_range=0)


def test_price_window_highlights_the_current_window_in_absolute_ticks():
    y = np.linspace(1, 2, 100)
    fig = valid(live.price_window(y, start=10, length=16, tick0=1000))
    win = fig.data[1]
    assert A(win.x)[0] == 1010 and A(win.x)[-1] == 1025 and len(A(win.y)) == 16
    assert fig.layout.shapes[0].x0 == 1010 and fig.layout.shapes[0].x1 == 1025
    assert len(valid(live.price_window(y, None, 16)).data) == 1
    long = live.price_window(np.arange(10_000.0), 5, 16, max_points=1000)
    assert len(A(long.data[0].x)) <= 1000 and len(A(long.data[1].x)) == 16


def test_rolling_confidence_draws_alerts_threshold_and_online_line():
    t, c = np.arange(6) * 8, np.array([0.9, 0.5, 0.4, 0.3, 0.8, 0.85])
    al = drift.low_confidence_alert(c, 0.6, 2)["alerts"]
    fig = valid(live.rolling_confidence(t, c, 0.6, al, online=c + 0.05, x_range=(0, 40)))
    names = [tr.name for tr in fig.data]
    assert names == ["frozen registry", "online registry", "re-fit alert"]
    assert A(fig.data[2].x) == [16, 24]
    assert fig.layout.shapes[0].y0 == pytest.approx(0.6)
    assert tuple(fig.layout.xaxis.range) == (0, 40)
    with pytest.raises(ValueError, match="same shape"):
        live.rolling_confidence(t, c[:3], 0.6)


def test_replay_panel_puts_confidence_on_a_second_axis():
    y = np.linspace(1, 2, 200)
    t = 500 + np.arange(0, 40, 8)
    fig = valid(live.replay_panel(y, 32, 16, 500, t, np.full(5, 0.8), 0.7, np.zeros(5, bool)))
    axes = {tr.name: tr.yaxis or "y" for tr in fig.data}
    assert axes["price"] == "y" and axes["current window"] == "y"
    assert axes["frozen registry"] == "y2" and axes["re-fit alert"] == "y2"
    assert fig.layout.yaxis2.domain[1] < fig.layout.yaxis.domain[0]


def test_neighbour_marks_skip_live_entries_and_scale_with_weight():
    y = np.arange(64.0)
    fig = valid(live.neighbour_marks(y, np.array([0, 16, 32, 48]), 16, [2, -1, 0], [0.5, 0.3, 0.2],
                                   regimes=np.array([0, 1, 2, 0])))
    mk = fig.data[1]
    assert A(mk.x) == [40, 8]                                   # block mid-points, the -1 entry dropped
    assert A(mk.marker.size)[0] > A(mk.marker.size)[1]
    assert mk.marker.color[0] == style.regime_color(2)
    with pytest.raises(ValueError, match="same shape"):
        live.neighbour_marks(y, np.array([0]), 16, [0, 1], [1.0])
