"""Figure builder of the Data page (the series chart), checked on its data without a browser."""

import numpy as np
import pytest

from chronoslib.plots import style
from chronoslib.plots.data import series_figure


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_series_figure_shades_exactly_the_held_out_span():
    t = 500
    x = np.arange(np.datetime64("2024-01-01T00:00"), np.datetime64("2024-01-01T00:00") + t, np.timedelta64(1, "m"))
    price = np.cumsum(np.ones(t))
    fig = series_figure(x, {"price": price, "f0": np.sin(np.arange(t))}, split=400, price_name="price")
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 2  # one per panel
    for r in rects:
        assert np.datetime64(r.x0) == x[400] and np.datetime64(r.x1) == x[-1]
    assert any("held out (100 ticks)" in a.text for a in fig.layout.annotations)
    # Price alone on top; features z-scored in a second panel.
    assert _trace(fig, "price").yaxis == "y" and _trace(fig, "f0").yaxis == "y2"
    assert np.mean(_trace(fig, "f0").y) == pytest.approx(0.0, abs=1e-9)


def test_series_figure_strides_long_series_and_keeps_the_first_tick():
    t = 10_001
    v = np.arange(t, dtype=float)
    fig = series_figure(None, {"a": v}, split=t, max_points=1000)
    tr = _trace(fig, "a")
    assert len(tr.x) <= 1000 and tr.x[0] == 0 and tr.y[0] == 0.0
    assert np.all(np.diff(tr.x) == 11)  # ceil(10001 / 1000)
    assert any("1 in 11 ticks drawn" in a.text for a in fig.layout.annotations)
    assert not [s for s in fig.layout.shapes if s.type == "rect"]  # nothing held out, nothing shaded


def test_series_figure_refuses_columns_of_different_lengths_and_no_columns():
    with pytest.raises(ValueError, match="'b' has 3 values but the first column has 4"):
        series_figure(None, {"a": np.zeros(4), "b": np.zeros(3)}, split=2)
    with pytest.raises(ValueError, match="at least one column"):
        series_figure(None, {}, split=0)


def test_series_figure_colours_ground_truth_regimes_with_the_regime_palette():
    labels = np.array([0, 0, 1, 2, -1, 1, 0, 2])
    fig = series_figure(None, {"price": np.linspace(1, 2, 8), "f": np.arange(8.0)}, split=6, price_name="price",
                        labels=labels)
    marks = next(t for t in fig.data if t.name == "regime")
    assert list(marks.marker.color) == [style.regime_color(v) if v >= 0 else style.MISSING_COLOR for v in labels]
    assert list(marks.customdata) == labels.tolist()
