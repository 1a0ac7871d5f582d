"""Plotly figure builders, grouped by what they draw: pure functions, arrays in, ``go.Figure`` out.

``style`` (the one regime palette, highlight colour, point budgets, layout helpers), ``manifold`` (projection
scatter, price with picked blocks, K sweep, contingency, neighbour windows), ``timeline`` (chronological vs
pseudo-timeline series, similarity heatmaps, the animated walk), ``live`` (replay gauges, price window, rolling
confidence, neighbour marks), ``latency``, ``health`` (collapse, similarity histogram, drift), ``training`` (loss
curves), ``data`` (the Data page's series chart) and ``evidence`` (the evidence experiment's figures). Import the
module you need (``from chronoslib.plots import manifold``); this package re-exports nothing. Knows nothing about
Streamlit, engines or datasets.
"""
