"""Live / latency / diagnostics figure builders: valid plotly (validated rebuild) with the data they were given."""

import base64

import numpy as np
import plotly.graph_objects as go
import pytest

from chronoslib import drift, metrics
from chronoslib import plots_live as P


def A(v) -> list:
    """A trace array as a list (plotly >= 6 stores numpy arrays as base64 'bdata' dicts)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def _valid(fig: go.Figure) -> go.Figure:
    """Rebuild with plotly's validation on: the fast builders skip it, so a bad property must fail here."""
    return go.Figure(fig.to_dict())


def test_gauges_show_confidence_alpha_and_the_threshold():
    fig = _valid(P.gauges(0.82, 0.3, threshold=0.6, alpha_range=0.25, online_confidence=0.7))
    assert [t.type for t in fig.data] == ["indicator"] * 3
    assert fig.data[0].value == pytest.approx(0.82) and fig.data[1].value == pytest.approx(0.7)
    assert fig.data[2].value == pytest.approx(0.25)                 # alpha clipped into the gauge range
    assert fig.data[0].gauge.threshold.value == pytest.approx(0.6)
    assert fig.data[0].gauge.steps[0].range == (0.0, 0.6)
    empty = _valid(P.gauges(None, float("nan"), 0.5))
    assert empty.data[0].value is None and empty.data[1].value is None
    with pytest.raises(ValueError, match="alpha_range"):
        P.gauges(0.5, 0.1, 0.5, alpha_range=0)


def test_price_window_highlights_the_current_window_in_absolute_ticks():
    y = np.linspace(1, 2, 100)
    fig = _valid(P.price_window(y, start=10, length=16, tick0=1000))
    win = fig.data[1]
    assert A(win.x)[0] == 1010 and A(win.x)[-1] == 1025 and len(A(win.y)) == 16
    assert fig.layout.shapes[0].x0 == 1010 and fig.layout.shapes[0].x1 == 1025
    assert len(_valid(P.price_window(y, None, 16)).data) == 1
    long = P.price_window(np.arange(10_000.0), 5, 16, max_points=1000)
    assert len(A(long.data[0].x)) <= 1000 and len(A(long.data[1].x)) == 16


def test_rolling_confidence_draws_alerts_threshold_and_online_line():
    t, c = np.arange(6) * 8, np.array([0.9, 0.5, 0.4, 0.3, 0.8, 0.85])
    al = drift.low_confidence_alert(c, 0.6, 2)["alerts"]
    fig = _valid(P.rolling_confidence(t, c, 0.6, al, online=c + 0.05, x_range=(0, 40)))
    names = [tr.name for tr in fig.data]
    assert names == ["frozen registry", "online registry", "re-fit alert"]
    assert A(fig.data[2].x) == [16, 24]
    assert fig.layout.shapes[0].y0 == pytest.approx(0.6)
    assert tuple(fig.layout.xaxis.range) == (0, 40)
    with pytest.raises(ValueError, match="same shape"):
        P.rolling_confidence(t, c[:3], 0.6)


def test_replay_panel_puts_confidence_on_a_second_axis():
    y = np.linspace(1, 2, 200)
    t = 500 + np.arange(0, 40, 8)
    fig = _valid(P.replay_panel(y, 32, 16, 500, t, np.full(5, 0.8), 0.7, np.zeros(5, bool)))
    axes = {tr.name: tr.yaxis or "y" for tr in fig.data}
    assert axes["price"] == "y" and axes["current window"] == "y"
    assert axes["frozen registry"] == "y2" and axes["re-fit alert"] == "y2"
    assert fig.layout.yaxis2.domain[1] < fig.layout.yaxis.domain[0]


def test_neighbour_marks_skip_live_entries_and_scale_with_weight():
    y = np.arange(64.0)
    fig = _valid(P.neighbour_marks(y, np.array([0, 16, 32, 48]), 16, [2, -1, 0], [0.5, 0.3, 0.2],
                                   regimes=np.array([0, 1, 2, 0])))
    mk = fig.data[1]
    assert A(mk.x) == [40, 8]                                   # block mid-points, the -1 entry dropped
    assert A(mk.marker.size)[0] > A(mk.marker.size)[1]
    assert mk.marker.color[0] == P.REGIME_COLOURS[2]
    with pytest.raises(ValueError, match="same shape"):
        P.neighbour_marks(y, np.array([0]), 16, [0, 1], [1.0])


def test_latency_histogram_and_stage_breakdown():
    s = np.append(np.random.default_rng(0).gamma(2.0, 0.3, 500), 50.0)   # one scheduler hiccup
    fig = _valid(P.latency_histogram(s))
    assert fig.layout.xaxis.range[1] == pytest.approx(1.6 * np.percentile(s, 99))
    assert "1 slower call(s)" in fig.layout.xaxis.title.text
    labels = [a.text for a in fig.layout.annotations]
    assert any(lbl.startswith("p99") for lbl in labels)
    assert f"p50 {np.percentile(s, 50):.2f} ms" in labels
    with pytest.raises(ValueError, match="no latency samples"):
        P.latency_histogram([])
    bars = _valid(P.stage_breakdown({"predictor": 0.1, "encode": 0.3, "query": 0.05, "spd": 0.02}))
    assert list(bars.data[0].y) == ["encode", "registry query", "SPD + context", "predictor"]
    assert A(bars.data[0].x) == [0.3, 0.05, 0.02, 0.1]


def test_spec_comparison_puts_spec_next_to_measured():
    fig = _valid(P.spec_comparison({"mean_ms": 0.5, "p99_ms": 1.5, "qps": 1800.0},
                                   {"predict_live_mean_ms": 1.1, "predict_live_p99_ms": 2.8, "qps": 850.0}))
    lat = [tr for tr in fig.data if list(tr.x) == ["mean", "p99"]]
    assert [A(tr.y) for tr in lat] == [[1.1, 2.8], [0.5, 1.5]]
    assert [tr.y[0] for tr in fig.data if list(tr.x) == ["QPS"]] == [850.0, 1800.0]


def test_collapse_and_similarity_figures():
    hist = [{"stage": "encoder", "epoch": e, "entropy": 1.0 + e / 10, "entropy_target": 1.7, "mean_cos": 0.3,
             "eff_rank": 6.0} for e in range(1, 4)]
    fig = _valid(P.collapse_figure(metrics.collapse_curves(hist)))
    assert [tr.name for tr in fig.data] == ["entropy", "TER target", "mean cos", "effective rank"]
    assert {sh.y0 for sh in fig.layout.shapes} >= {metrics.COLLAPSE_MEAN_COS, metrics.COLLAPSE_EFF_RANK}
    sims = np.array([0.1, 0.2, 0.3])
    h = _valid(P.similarity_histogram(sims))
    assert A(h.data[0].x) == [0.1, 0.2, 0.3] and tuple(h.layout.xaxis.range) == (-1, 1)
    with pytest.raises(ValueError, match="no similarities"):
        P.similarity_histogram(np.array([]))


def test_drift_figure_marks_drifting_windows():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((60, 4))
    z = np.concatenate([rng.standard_normal((10, 4)), rng.standard_normal((10, 4)) + 2])
    tl = drift.drift_timeline(ref, z, window=4)
    ticks = 1000 + 16 * np.arange(20)
    fig = _valid(P.drift_figure(ticks, tl, np.full(20, 0.8), np.full((20, 3), 500.0), 0.7))
    drift_pts = [tr for tr in fig.data if tr.name == "drift"]
    assert drift_pts and len(A(drift_pts[0].x)) == int(tl["drift"].sum())
    assert set(A(drift_pts[0].x)) <= set(ticks[tl["end"]].tolist())
