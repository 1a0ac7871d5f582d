"""Timeline page: the series in chronological vs pseudo-timeline order, similarity heatmaps, figures of merit.

Layout and widgets only: regimes from ``chronoslib.regimes`` through the app's ``cache`` (the same settings as
the Manifold page, shared via ``session``), orderings from ``timeline.build_pseudo_timeline`` through ``cache``,
metrics from ``metrics.timeline_merit`` and ``metrics.ordering_table`` (which reuse ``timeline.path_cost``),
figures from ``chronoslib.plots``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.lib import cache, frame, model_views, session
from chronoslib import metrics, projection
from chronoslib.plots.style import is_time
from chronoslib.plots.timeline import ordering_figure, similarity_figure, timeline_figure, walk_figure
from chronoslib.timeline import METHODS

WALK_AUTO_BLOCKS = 5000   # above this many blocks the walk is drawn on request

ORDERINGS = METHODS[:3]  # greedy, refined, regime

st.title("Timeline: chronological vs defragmented")
st.caption("The same training blocks twice, coloured by regime. In real time, regimes come and go and their blocks "
           "are scattered. The pseudo-timeline orders the blocks so that similar ones sit next to each other (a "
           "nearest-neighbour chain from block 0, refined by local search), so blocks of one regime end up side by "
           "side: the timeline is *defragmented*.")

eng, ds, view = frame.model_view("pseudo-timeline")
key = projection.latents_key(view.latents)
vs = model_views.resolve(len(view.starts), key, eng.to_bytes)
if not vs.ready:
    # Only what needs no clustering and no new ordering: the model's own pseudo-timeline against time order.
    m0 = metrics.timeline_merit(view.latents, view.order)
    model_views.pending_note(vs, key, f"Meanwhile: the model's own pseudo-timeline costs {m0['path_cost_pseudo']:.1f} "
                             f"against {m0['path_cost_chrono']:.1f} in time order (timeline entropy "
                             f"{m0['timeline_entropy']:.3f}); the comparison appears here when the job is done.")
    st.stop()
try:
    k = session.REGIME_K.get()
    k_range = session.REGIME_K_RANGE.get() or (2, 8)
    with st.spinner("Clustering regimes…"):
        reg = cache.clustering(view.latents, k, view.table["vol"].to_numpy(), tuple(k_range), 0,
                               session.REGIME_CRITERION.get() if k is None else "silhouette", key=key)
except (ValueError, RuntimeError) as exc:
    st.error(str(exc))
    st.stop()
n = len(view.starts)

c1, c2, c0, c3 = st.columns([1.4, 1.2, 1.2, 2])
label_opts = (["ground truth"] if view.truth is not None else []) + ["regime cluster"]
prev = session.TL_LABELS.get() or label_opts[0]
label_kind = c1.radio("Colour blocks by", label_opts, horizontal=True,
                      index=label_opts.index(prev) if prev in label_opts else 0)
layout_opts = {"stacked": "stacked", "side by side": "side"}
prev_layout = session.TL_LAYOUT.get()
layout = c2.radio("Layout", list(layout_opts), horizontal=True, index=list(layout_opts).index(prev_layout))
session.TL_LABELS.set(label_kind)
session.TL_LAYOUT.set(layout)
ordering_opts = ["as trained", *ORDERINGS]
prev_ordering = session.TL_ORDERING.get()
ordering = c0.selectbox("Ordering", ordering_opts,
                        index=ordering_opts.index(prev_ordering) if prev_ordering in ordering_opts else 0,
                        help="as trained: the model's own pseudo-timeline. greedy: nearest-neighbour chain from "
                             "block 0; refined: greedy + 2-opt / Or-opt local search (shorter path); regime: chained "
                             "inside regime clusters, fewest regime switches.")
session.TL_ORDERING.set(ordering)
with st.spinner("Ordering blocks…"):
    orders = {m: cache.ordering(view.latents, m, key=key) for m in ORDERINGS}
order = view.order if ordering == "as trained" else orders[ordering]
labels = view.truth if label_kind == "ground truth" else reg.labels
lname = "truth" if label_kind == "ground truth" else "regime"
c3.caption(f"{n:,} blocks of {view.block_len} ticks. Regime clusters: K={reg.k} ({reg.criterion}); change them on "
           "the Manifold page." + (" Ground truth = majority label of each block's ticks." if view.truth is not None
                                   else ""))

# ------------------------------------------------------------------------------------------------ figures of merit
# What the figures below draw: the model's data, this order and these labels (a sha1 of both, so any change to
# the clustering or the ordering draws afresh) -- later visits reuse the figures instead of rebuilding them.
drawn_sha = hashlib.sha1(np.asarray(order).tobytes() + np.asarray(labels).tobytes()).hexdigest()
drawn = f"{session.model_id()}:{session.data_id()}:{key}:{drawn_sha}"
m = cache.computed(f"tl_merit:{drawn}", lambda: metrics.timeline_merit(view.latents, order, labels))
cols = st.columns(4)
cols[0].metric("Path cost (pseudo)", f"{m['path_cost_pseudo']:.1f}",
               f"{(m['path_cost_ratio'] - 1) * 100:+.0f} % (time order {m['path_cost_chrono']:.1f})",
               delta_color="inverse",
               help="Sum of squared latent jumps between consecutive blocks (lower is smoother).")
cols[1].metric("Timeline entropy", f"{m['timeline_entropy']:.3f}",
               help="0 = the pseudo-timeline is chronological; near 1 = every step jumps somewhere new in time.")
cols[2].metric("Mean run (pseudo)", f"{m['run_pseudo']:.1f} blocks",
               f"×{m['run_pseudo'] / max(m['run_chrono'], 1e-9):.1f} (time order {m['run_chrono']:.1f})",
               help=f"Average length of uninterrupted stretches of blocks with the same {lname} label along the order.")
cols[3].metric("Adjacency purity (pseudo)", f"{m['purity_pseudo']:.1%}",
               f"{(m['purity_pseudo'] - m['purity_chrono']) * 100:+.1f} pts (time order {m['purity_chrono']:.1%})",
               help=f"Share of consecutive block pairs that carry the same {lname} label.")

st.plotly_chart(cache.figure(f"tl_timeline:{drawn}:{layout}:{lname}", lambda: timeline_figure(
    view.series, view.starts, view.block_len, order, labels, layout=layout_opts[layout], label_name=lname,
    series_name=view.series_name, times=view.x)), width="stretch", key="tl_timeline")
st.caption(("The chronological panel is on real time; the pseudo-timeline's x is the block slot in its order. "
            if is_time(view.x) else "x is the block slot in each order (linked zoom). ")
           + "The pseudo-timeline series is rebuilt from each block's own returns in the new order, so every block "
           "keeps its shape; the strips below show the label sequence.")

st.subheader("Orderings compared")
rows = cache.computed(f"tl_orderings:{drawn}", lambda: metrics.ordering_table(
    view.latents, {"time order": np.arange(n), "as trained": view.order, **orders}, labels,
    lower_bound=cache.lower_bound(view.latents, key=key)))
st.plotly_chart(ordering_figure(rows), width="stretch", key="tl_orderings")
st.dataframe(pd.DataFrame([{"order": r["order"], "path cost": r["cost"], "lower bound": r["lower_bound"],
                            "optimality gap": f"{r['gap']:.1%}", f"{lname} switches": int(r["switches"]),
                            "mean run (blocks)": r["mean_run"], "purity": f"{r['purity']:.1%}"} for r in rows]),
             hide_index=True, width="stretch", key="tl_ordering_table",
             column_config={c: st.column_config.NumberColumn(format=f) for c, f in
                            (("path cost", "%.2f"), ("lower bound", "%.2f"), ("mean run (blocks)", "%.1f"))})
st.caption("Optimality gap = path cost / lower bound − 1, the lower bound being the minimum spanning tree of the "
           "latents (no order can cost less), so the true distance to the best order is at most the gap. "
           f"Switches and runs count consecutive blocks with different / the same {lname} label.")

st.subheader("Latent similarity in both orders")
st.plotly_chart(cache.figure(f"tl_similarity:{drawn}", lambda: similarity_figure(view.latents, order)),
                width="stretch", key="tl_similarity")
st.caption("Cosine similarity between block latents. In time order, similar blocks are scattered; in pseudo-timeline "
           "order they form blocks along the diagonal." + (f" Pooled to tiles for {n:,} blocks." if n > 300 else ""))

st.subheader("Walk along the pseudo-timeline")
# The animation's frames cost the browser about a second to draw at 13k blocks: a large model's page opens
# without it and draws it on request.
if st.toggle("Show the animated walk", value=n <= WALK_AUTO_BLOCKS, key="tl_show_walk",
             help=f"On by default up to {WALK_AUTO_BLOCKS:,} blocks."):
    st.caption("Press ▶ Play or drag the slider: each step of the pseudo-timeline is marked on the real-time series "
               "(top) and on the permutation map (bottom), showing how the walk jumps through time.")
    st.plotly_chart(cache.figure(f"tl_walk:{drawn}:{lname}", lambda: walk_figure(
        view.series, view.starts, view.block_len, order, labels, x=view.x, label_name=lname,
        series_name=view.series_name)), width="stretch", key="tl_walk")
jumps = np.abs(np.diff(view.starts[order])) // view.block_len
st.caption(f"Median jump between consecutive pseudo-timeline steps: {int(np.median(jumps))} blocks in real time; "
           f"{np.mean(jumps == 1):.0%} of steps go to the chronologically next block.")
