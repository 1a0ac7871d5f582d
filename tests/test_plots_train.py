"""Figure builders of the Data and Train pages, checked on their data without a browser."""

import numpy as np
import pytest

from chronoslib.plots_train import loss_figure, series_figure


def _history(n_enc: int = 4, n_pred: int = 3, collapsed_at: tuple[int, ...] = ()) -> list[dict]:
    enc = [{"stage": "encoder", "epoch": i + 1, "loss": 3.0 - 0.3 * i, "infonce": 2.0 - 0.2 * i, "ter": 0.1 * i,
            "lcr": 0.5 / (i + 1), "entropy": 1.0 + 0.01 * i, "entropy_target": 1.04,
            "collapsed": (i + 1) in collapsed_at} for i in range(n_enc)]
    pred = [{"stage": "predictor", "epoch": i + 1, "loss": 0.5 / (i + 1)} for i in range(n_pred)]
    return enc + pred


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_loss_figure_draws_every_logged_term_against_its_epoch():
    h = _history()
    fig = loss_figure(h)
    enc = [r for r in h if r["stage"] == "encoder"]
    for key, name in (("loss", "total"), ("infonce", "InfoNCE"), ("ter", "TER"), ("lcr", "LCR"),
                      ("entropy", "entropy"), ("entropy_target", "target")):
        t = _trace(fig, name)
        assert list(t.x) == [1, 2, 3, 4]
        assert list(t.y) == pytest.approx([r[key] for r in enc])
    pred = _trace(fig, "predictor MSE")
    assert list(pred.x) == [1, 2, 3] and list(pred.y) == pytest.approx([0.5, 0.25, 0.5 / 3])
    # InfoNCE / TER / LCR share the first panel, entropy vs target the second, predictor the third.
    assert _trace(fig, "InfoNCE").xaxis == "x" and _trace(fig, "target").xaxis == "x2" and pred.xaxis == "x3"


def test_loss_figure_marks_collapsed_epochs_and_fixes_the_planned_x_range():
    fig = loss_figure(_history(collapsed_at=(2, 4)), encoder_epochs=10, predictor_epochs=5)
    bad = _trace(fig, "collapsed")
    assert list(bad.x) == [2, 4] and list(bad.y) == pytest.approx([2.7, 2.1])
    assert tuple(fig.layout.xaxis.range) == (0.5, 10.5) and tuple(fig.layout.xaxis3.range) == (0.5, 5.5)
    assert fig.layout.xaxis.dtick == 2 and fig.layout.xaxis3.dtick == 1  # whole epochs, about 8 ticks
    assert "collapsed" not in [t.name for t in loss_figure(_history()).data]


def test_loss_figure_of_an_empty_history_says_so_instead_of_failing():
    fig = loss_figure([])
    assert any("no epochs yet" in a.text for a in fig.layout.annotations)
    assert all(len(t.x) == 0 for t in fig.data)


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
