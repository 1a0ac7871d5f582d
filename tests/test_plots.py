"""Figure builders of the Manifold and Timeline pages: the right traces, colours, orderings and data, no browser."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from chronoslib import plots, regimes


def _setup(n=12, block_len=8, seed=0):
    rng = np.random.default_rng(seed)
    series = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n * block_len + 5)))
    starts = np.arange(n) * block_len
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1, 0, 1, 2])[:n]
    order = np.argsort(labels, kind="stable")
    return series, starts, labels, order


def test_regime_colors_cycle_through_the_palette():
    assert plots.regime_color(0) == plots.PALETTE[0]
    assert plots.regime_color(3) == plots.PALETTE[3]
    assert plots.regime_color(len(plots.PALETTE) + 1) == plots.PALETTE[1]


def test_categorical_projection_has_one_trace_per_label_with_its_colour_and_block_ids():
    coords = np.random.default_rng(0).standard_normal((9, 2))
    labels = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2])
    fig = plots.projection_figure(coords, labels, categorical=True, color_title="regime")
    assert [t.name for t in fig.data] == ["regime 0", "regime 1", "regime 2"]     # sorted legend
    for t in fig.data:
        lab = int(t.name.split()[-1])
        ids = np.asarray(t.customdata)
        assert t.marker.color == plots.regime_color(lab)
        assert np.array_equal(ids, np.flatnonzero(labels == lab))
        assert np.allclose(t.x, coords[ids, 0]) and np.allclose(t.y, coords[ids, 1])
        assert isinstance(t, go.Scatter)
    assert fig.layout.dragmode == "lasso"


def test_continuous_projection_has_a_colour_bar_and_a_grey_trace_for_missing_values():
    coords = np.random.default_rng(1).standard_normal((6, 2))
    vals = np.array([0.1, np.nan, 0.5, 0.9, np.nan, 0.3])
    fig = plots.projection_figure(coords, vals, categorical=False, color_title="live confidence")
    missing, main = fig.data
    assert missing.name == "no value" and np.asarray(missing.customdata).tolist() == [1, 4]
    assert np.allclose(main.marker.color, [0.1, 0.5, 0.9, 0.3])
    assert main.marker.colorbar.title.text == "live confidence"


def test_projection_uses_webgl_above_threshold_and_3d_traces_for_3d():
    big = np.random.default_rng(2).standard_normal((plots.WEBGL_THRESHOLD + 1, 2))
    fig = plots.projection_figure(big, np.zeros(len(big), int), categorical=True, color_title="regime")
    assert isinstance(fig.data[0], go.Scattergl)
    fig3 = plots.projection_figure(big[:20, :1].repeat(3, axis=1), np.arange(20), categorical=False,
                                   color_title="time")
    assert isinstance(fig3.data[0], go.Scatter3d) and len(fig3.data[0].z) == 20


def test_projection_overlays_mark_selection_focus_neighbours_and_live_points():
    coords = np.random.default_rng(3).standard_normal((10, 2))
    fig = plots.projection_figure(coords, np.zeros(10, int), categorical=True, color_title="regime",
                                  selected=[1, 4, 5], focus=7, neighbours=[2, 3], live_xy=np.ones((2, 2)),
                                  live_color=np.array([0.2, 0.9]))
    by_name = {t.name: t for t in fig.data}
    assert np.asarray(by_name["selected (3)"].customdata).tolist() == [1, 4, 5]
    assert np.asarray(by_name["neighbours"].customdata).tolist() == [2, 3]
    assert by_name["block 7"].marker.symbol == "star"
    assert list(by_name["live windows"].marker.color) == [0.2, 0.9]


def test_blocks_from_selection_reads_customdata_in_every_shape():
    sel = {"points": [{"customdata": [5]}, {"customdata": 2}, {"customdata": [5]}, {"x": 1.0},
                      {"customdata": {"0": 7}}],          # the browser's decoding of a typed array row
           "point_indices": [0, 1, 2, 3, 4]}
    assert plots.blocks_from_selection(sel) == [2, 5, 7]
    assert plots.blocks_from_selection(None) == [] and plots.blocks_from_selection({"points": []}) == []


def test_price_figure_highlights_exactly_the_selected_blocks():
    series, starts, _, _ = _setup()
    fig = plots.price_figure(series, starts, 8, highlight=[3, 1], focus=5, neighbours=[6], split=90)
    base, hl = fig.data
    assert np.allclose(base.y, series)
    xs = [v for v in hl.x if v is not None]
    # Block 1 covers ticks 8..15 (plus tick 7 to join the line), block 3 ticks 24..31 (plus 23).
    assert xs == list(range(7, 16)) + list(range(23, 32))
    assert hl.name == "selected blocks (2)"
    assert len(fig.layout.shapes) == 3            # neighbour band, focus band, held-out span


def test_stitched_series_reproduces_the_series_in_time_order_and_keeps_block_shapes():
    series, starts, _, order = _setup()
    chrono = plots.stitched_series(series, starts, 8, np.arange(12))
    assert np.allclose(chrono, series[:96])
    pseudo = plots.stitched_series(series, starts, 8, order)
    for p in range(1, 12):                         # within-block ratios equal the original block's
        b = order[p]
        seg = pseudo[p * 8: p * 8 + 8]
        assert np.allclose(seg[1:] / seg[:-1], series[b * 8 + 1: b * 8 + 8] / series[b * 8: b * 8 + 7])


@pytest.mark.parametrize("layout, n_rows", [("stacked", 4), ("side", 2)])
def test_timeline_figure_colours_block_slots_by_label_in_each_order(layout, n_rows):
    series, starts, labels, order = _setup()
    fig = plots.timeline_figure(series, starts, 8, order, labels, layout=layout)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [b.name for b in bars] == ["chrono barcode", "pseudo barcode"]
    assert list(bars[0].marker.color) == [plots.regime_color(v) for v in labels]
    assert list(bars[1].marker.color) == [plots.regime_color(v) for v in labels[order]]
    assert np.asarray(bars[1].customdata)[:, 0].tolist() == order.tolist()
    lines = [t for t in fig.data if not isinstance(t, go.Bar)]
    assert len(lines) == 2 * 3 and all(t.line.color == plots.regime_color(int(t.name.split()[-1])) for t in lines)
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
        plots.timeline_figure(series, starts, 8, order, labels, layout="grid")


def test_long_series_are_drawn_at_strided_offsets_that_keep_block_edges():
    offs = plots.block_offsets(64, 128, max_points=1500)
    assert offs[0] == 0 and offs[-1] == 63 and 128 * len(offs) <= 1500 + 128
    assert np.array_equal(plots.block_offsets(8, 12), np.arange(8))      # short series: every tick
    rng = np.random.default_rng(9)
    series = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(128 * 64)))
    labels = np.repeat([0, 1], 64)
    fig = plots.timeline_figure(series, np.arange(128) * 64, 64, np.arange(128), labels)
    line0 = fig.data[0]
    assert isinstance(line0, go.Scatter) and len(line0.x) <= 64 * len(offs) + 2
    ok = ~np.isnan(np.asarray(line0.y, dtype=float))
    assert np.allclose(np.asarray(line0.y)[ok], series[np.asarray(line0.x)[ok].astype(int)])


def test_similarity_matrices_equal_brute_force_and_pool_by_tiles():
    z = np.random.default_rng(4).standard_normal((10, 3))
    order = np.random.default_rng(5).permutation(10)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    chrono, pseudo, b = plots.similarity_matrices(z, order)
    assert b == 1 and np.allclose(chrono, zn @ zn.T) and np.allclose(pseudo, (zn @ zn.T)[np.ix_(order, order)])
    pc, _, b = plots.similarity_matrices(z, order, max_cells=4)
    full = zn @ zn.T
    assert b == 3 and pc.shape == (4, 4)
    assert pc[0, 1] == pytest.approx(full[0:3, 3:6].mean()) and pc[3, 3] == pytest.approx(full[9, 9])
    fig = plots.similarity_figure(z, order)
    assert [type(t) for t in fig.data] == [go.Heatmap, go.Heatmap] and fig.data[0].zmin == -1


def test_walk_figure_frames_mark_each_step_at_its_real_time_and_position():
    series, starts, labels, order = _setup()
    fig = plots.walk_figure(series, starts, 8, order, labels, max_frames=5)
    assert len(fig.frames) == 5
    for fr in fig.frames:
        p = int(fr.name)
        star = fr.data[2]
        assert star.x == (starts[order[p]],) and star.y == (p,)
        seg = fr.data[0]
        assert list(seg.x) == list(range(starts[order[p]], starts[order[p]] + 8))
    assert len(fig.layout.sliders[0].steps) == 5 and fig.layout.updatemenus[0].buttons[0].method == "animate"
    ts = pd.date_range("2024-01-01", periods=len(series), freq="min").to_numpy()
    fig_t = plots.walk_figure(series, starts, 8, order, None, x=ts, max_frames=3)
    assert fig_t.frames[1].data[2].x[0].startswith(str(ts[starts[order[int(fig_t.frames[1].name)]]])[:16])


def test_sweep_contingency_and_neighbour_figures():
    fig = plots.sweep_figure({2: 0.3, 3: 0.6, 4: 0.4}, 3, "silhouette")
    assert list(fig.data[0].x) == [2, 3, 4] and fig.data[1].x == (3,) and "higher is better" in fig.layout.title.text
    labels, truth = np.array([0, 0, 1, 1, 1]), np.array([1, 1, 1, 0, 0])
    ct = plots.contingency_figure(labels, truth)
    assert np.array_equal(np.asarray(ct.data[0].z), [[0, 2], [2, 1]])
    series, starts, _, _ = _setup()
    nb = plots.neighbour_windows_figure(series, starts, 8, 4, [1, 2], [0.9, 0.5])
    assert [t.name for t in nb.data] == ["block 1 (cos 0.900)", "block 2 (cos 0.500)", "block 4 (chosen)"]
    assert np.allclose(nb.data[2].y, (series[32:40] / series[32] - 1) * 100)


def test_hover_text_names_block_span_stats_and_labels():
    series, starts, labels, _ = _setup()
    tab = regimes.block_table(starts, 8, series, pd.date_range("2024-01-01", periods=len(series), freq="min")
                              .to_numpy(), truth=labels)
    text = plots.block_hover_text(tab, {"regime": labels})
    assert len(text) == 12
    assert text[1].startswith("<b>block 1</b> · ticks 8–15") and "2024-01-01 00:08 → 2024-01-01 00:15" in text[1]
    assert "regime 1 · truth 1" in text[1]
