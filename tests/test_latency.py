"""chronoslib.latency: honest comparisons with the reference figures, the overhead remainder, busy detection."""

import numpy as np

from chronoslib.latency import (
    busy_reasons,
    compare,
    measure_batch_throughput,
    measure_live_latency,
    span_windows,
    stages_with_overhead,
)


class _Pred:
    def __init__(self, total, stages):
        self.system_latency_ms, self.stage_latency_ms = total, stages


class _FakeEngine:
    """predict_live reporting 3 ms in total of which 1 + 0.5 ms are timed stages."""

    def predict_live(self, w, timestamp=None):
        return _Pred(3.0, {"encode": 1.0, "query": 0.5})

    def predict_batch(self, windows, timestamp=None):
        self.batch = (windows.shape, timestamp)


def test_a_worse_qps_is_a_negative_delta_coloured_normally_so_it_shows_red_and_down():
    text, colour = compare(92.0, 850.0, higher_is_better=True)
    assert text.startswith("-") and colour == "normal"


def test_a_better_qps_is_a_positive_delta():
    text, colour = compare(1200.0, 850.0, higher_is_better=True)
    assert text.startswith("+") and colour == "normal"


def test_a_worse_latency_is_a_positive_delta_coloured_inverse_so_it_shows_red():
    text, colour = compare(7.5, 2.8, higher_is_better=False)
    assert text.startswith("+") and colour == "inverse"
    text, colour = compare(1.0, 2.8, higher_is_better=False)
    assert text.startswith("-") and colour == "inverse"


def test_a_missing_reference_is_shown_without_colour():
    assert compare(1.0, float("nan"), higher_is_better=True)[1] == "off"


def test_the_overhead_is_the_per_call_remainder_that_no_stage_covers():
    res = measure_live_latency(_FakeEngine(), np.zeros((2, 4, 3)), n_calls=10, warmup=1)
    assert res["overhead_ms"] == 1.5
    full = stages_with_overhead(res["stage_ms"], res["overhead_ms"])
    assert sum(full.values()) == res["p50_ms"]


def test_busy_reasons_name_the_load_and_the_background_jobs():
    assert busy_reasons(load1=0.2, cpus=2) == []
    assert busy_reasons(load1=3.0, cpus=2) == ["load average 3.00 on 2 CPU cores"]
    r = busy_reasons(load1=0.0, cpus=2, umap_warming=True, training=True)
    assert len(r) == 2 and "UMAP" in r[0] and "training" in r[1]


def test_span_windows_cuts_windows_a_quarter_block_apart_up_to_the_cap():
    x = np.arange(100 * 2, dtype=np.float32).reshape(100, 2)
    w = span_windows(x, 16)
    assert w.shape == (22, 16, 2)                      # starts 0, 4, ..., 84
    assert np.array_equal(w[1], x[4:20])
    assert span_windows(x, 16, max_windows=5).shape == (5, 16, 2)


def test_batch_throughput_times_one_predict_batch_call_at_the_given_tick():
    eng = _FakeEngine()
    res = measure_batch_throughput(eng, np.zeros((7, 16, 2)), timestamp=900)
    assert res["batch_windows"] == 7 and res["batch_windows_per_s"] > 0
    assert eng.batch == ((7, 16, 2), 900.0)
