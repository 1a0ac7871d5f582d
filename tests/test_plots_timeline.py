"""Figure builders of the Timeline page: the right traces, colours, orderings and data, no browser."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from chronoslib.plots import style, timeline
from tests.plot_support import barcode_colours, block_series


def test_stitched_series_reproduces_the_series_in_time_order_and_keeps_block_shapes():
    series, starts, _, order = block_series()
    chrono = timeline.stitched_series(series, starts, 8, np.arange(12))
    assert np.allclose(chrono, series[:96])
    pseudo = timeline.stitched_series(series, starts, 8, order)
    for p in range(1, 12):                         # within-block ratios equal the original block's
        b = order[p]
        seg = pseudo[p * 8: p * 8 + 8]
        assert np.allclose(seg[1:] / seg[:-1], series[b * 8 + 1: b * 8 + 8] / series[b * 8: b * 8 + 7])


@pytest.mark.parametrize("layout, n_rows", [("stacked", 4), ("side", 2)])
def test_timeline_figure_colours_block_slots_by_label_in_each_order(layout, n_rows):
    series, starts, labels, order = block_series()
    fig = timeline.timeline_figure(series, starts, 8, order, labels, layout=layout)
    bars = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert [b.name for b in bars] == ["chrono barcode", "pseudo barcode"]
    for bar, slot_labels in zip(bars, (labels, labels[order])):
        assert barcode_colours(bar) == [style.regime_color(v) for v in slot_labels]
    assert np.asarray(bars[1].customdata)[0].tolist() == order.tolist()
    lines = [t for t in fig.data if not isinstance(t, go.Heatmap)]
    assert len(lines) == 2 * 3 and all(t.line.color == style.regime_color(int(t.name.split()[-1])) for t in lines)
    # The pseudo order groups labels: each label's pseudo-panel line is a single run (one NaN gap after it).
    pseudo_lines = lines[3:]
    assert all(np.isnan(np.asarray(t.y, dtype=float)).sum() == 1 for t in pseudo_lines)
    chrono_runs = [np.isnan(np.asarray(t.y, dtype=float)).sum() for t in lines[:3]]
    assert chrono_runs == [4, 4, 3]                  # runs of labels 0, 1, 2 in time order
    assert "mean run 4.0 blocks" in fig.layout.annotations[1].text
    xaxes = [k for k in fig.layout.to_plotly_json() if k.startswith("xaxis")]
    assert len(xaxes) == 4 and all(fig.layout[k].matches == "x" for k in xaxes)
    assert len(fig._grid_ref) == n_rows
    with pytest.raises(ValueError, match="layout"):
        timeline.timeline_figure(series, starts, 8, order, labels, layout="grid")


def test_long_series_are_drawn_at_strided_offsets_that_keep_block_edges():
    offs = timeline.block_offsets(64, 128, max_points=1500)
    assert offs[0] == 0 and offs[-1] == 63 and 128 * len(offs) <= 1500 + 128
    assert np.array_equal(timeline.block_offsets(8, 12), np.arange(8))      # short series: every tick
    rng = np.random.default_rng(9)
    series = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(128 * 64)))
    labels = np.repeat([0, 1], 64)
    fig = timeline.timeline_figure(series, np.arange(128) * 64, 64, np.arange(128), labels)
    line0 = fig.data[0]
    assert isinstance(line0, go.Scatter) and len(line0.x) <= 64 * len(offs) + 2
    ok = ~np.isnan(np.asarray(line0.y, dtype=float))
    assert np.allclose(np.asarray(line0.y)[ok], series[np.asarray(line0.x)[ok].astype(int)])


def test_similarity_matrices_equal_brute_force_and_pool_by_tiles():
    z = np.random.default_rng(4).standard_normal((10, 3))
    order = np.random.default_rng(5).permutation(10)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    chrono, pseudo, b = timeline.similarity_matrices(z, order)
    assert b == 1 and np.allclose(chrono, zn @ zn.T) and np.allclose(pseudo, (zn @ zn.T)[np.ix_(order, order)])
    pc, _, b = timeline.similarity_matrices(z, order, max_cells=4)
    full = zn @ zn.T
    assert b == 3 and pc.shape == (4, 4)
    assert pc[0, 1] == pytest.approx(full[0:3, 3:6].mean()) and pc[3, 3] == pytest.approx(full[9, 9])
    fig = timeline.similarity_figure(z, order)
    assert [type(t) for t in fig.data] == [go.Heatmap, go.Heatmap] and fig.data[0].zmin == -1


def test_walk_figure_frames_mark_each_step_at_its_real_time_and_position():
    series, starts, labels, order = block_series()
    fig = timeline.walk_figure(series, starts, 8, order, labels, max_frames=5)
    assert len(fig.frames) == 5
    for fr in fig.frames:
        p = int(fr.name)
        star = fr.data[2]
        assert star.x == (starts[order[p]],) and star.y == (p,)
        seg = fr.data[0]
        assert list(seg.x) == list(range(starts[order[p]], starts[order[p]] + 8))
    assert len(fig.layout.sliders[0].steps) == 5 and fig.layout.updatemenus[0].buttons[0].method == "animate"
    ts = pd.date_range("2024-01-01", periods=len(series), freq="min").to_numpy()
    fig_t = timeline.walk_figure(series, starts, 8, order, None, x=ts, max_frames=3)
    assert fig_t.frames[1].data[2].x[0].startswith(str(ts[starts[order[int(fig_t.frames[1].name)]]])[:16])


def test_ordering_figure_draws_the_gap_and_the_switches_of_each_order():
    rows = [{"order": "greedy", "gap": 0.3, "switches": 9.0}, {"order": "refined", "gap": 0.2, "switches": 7.0}]
    fig = timeline.ordering_figure(rows)
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert list(fig.data[0].x) == ["greedy", "refined"] and list(fig.data[0].y) == pytest.approx([30.0, 20.0])
    assert list(fig.data[1].y) == [9.0, 7.0]
    no_labels = timeline.ordering_figure([{"order": "greedy", "gap": 0.3}])
    assert len(no_labels.data) == 1


def test_more_blocks_than_half_the_point_budget_draw_one_tick_per_block_on_the_series():
    assert timeline.block_offsets(64, 800, max_points=1500).tolist() == [63]      # 1,600 > 1,500: block ends
    offs = timeline.block_offsets(64, 700, max_points=1500)                          # 1,400: still both edges
    assert offs[0] == 0 and offs[-1] == 63 and len(offs) > 2
    rng = np.random.default_rng(4)
    n, L = 2000, 16
    series = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(n * L)))
    labels = (np.arange(n) // 50) % 3
    fig = timeline.timeline_figure(series, np.arange(n) * L, L, rng.permutation(n), labels)
    chrono = [t for t in fig.data if t.type in ("scatter", "scattergl")][:3]
    for t in chrono:                          # every drawn point is a real tick of the series at a block end
        x = np.asarray(t.x, dtype=float)
        y = np.asarray(t.y, dtype=float)
        ok = ~np.isnan(y)
        assert np.allclose(y[ok], series[x[ok].astype(int)], rtol=1e-6)
    assert sum(len(t.x) for t in chrono) <= 2 * n + 100
