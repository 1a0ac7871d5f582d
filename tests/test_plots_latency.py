"""Latency page figure builders: valid plotly with the data they were given."""

import numpy as np
import pytest

from chronoslib.plots import latency
from tests.plot_support import A, valid


def test_latency_histogram_and_stage_breakdown():
    s = np.append(np.random.default_rng(0).gamma(2.0, 0.3, 500), 50.0)   # one scheduler hiccup
    fig = valid(latency.latency_histogram(s))
    assert fig.layout.xaxis.range[1] == pytest.approx(1.6 * np.percentile(s, 99))
    assert "1 slower call(s)" in fig.layout.xaxis.title.text
    labels = [a.text for a in fig.layout.annotations]
    assert any(lbl.startswith("p99") for lbl in labels)
    assert f"p50 {np.percentile(s, 50):.2f} ms" in labels
    with pytest.raises(ValueError, match="no latency samples"):
        latency.latency_histogram([])
    bars = valid(latency.stage_breakdown({"predictor": 0.1, "encode": 0.3, "query": 0.05, "spd": 0.02}))
    assert list(bars.data[0].y) == ["encode", "registry query", "SPD + context", "predictor"]
    assert A(bars.data[0].x) == [0.3, 0.05, 0.02, 0.1]


def test_spec_comparison_puts_spec_next_to_measured():
    fig = valid(latency.spec_comparison({"mean_ms": 0.5, "p99_ms": 1.5, "qps": 1800.0},
                                   {"predict_live_mean_ms": 1.1, "predict_live_p99_ms": 2.8, "qps": 850.0}))
    lat = [tr for tr in fig.data if list(tr.x) == ["mean", "p99"]]
    assert [A(tr.y) for tr in lat] == [[1.1, 2.8], [0.5, 1.5]]
    assert [tr.y[0] for tr in fig.data if list(tr.x) == ["QPS"]] == [850.0, 1800.0]
