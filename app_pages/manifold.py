"""Manifold page: UMAP / PCA of the block latents, regime clusters, lasso selection onto the price series, kNN.

Layout and widgets only: projections come from ``chronoslib.projection`` and regimes from ``chronoslib.regimes``,
both through the app's ``cache`` (per server process, keyed by a sha1 of the latents), figures from
``chronoslib.plots``. The regime settings chosen here (``session.REGIME_K``, ``REGIME_CRITERION``,
``REGIME_K_RANGE``) are shared with the Timeline page. After a live replay (the replay page keeps
``session.REPLAY_RECORDS``: ``ReplaySession.records()``), the manifold can be coloured by live confidence and
shows the replayed windows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.lib import cache, frame, model_views, session
from chronoslib import metrics, projection, regimes
from chronoslib.plots.manifold import (
    DENSE_POINTS,
    block_hover_text,
    blocks_from_selection,
    contingency_figure,
    neighbour_windows_figure,
    price_figure,
    projection_figure,
    sweep_figure,
)

st.title("Regime manifold")
st.caption("Each point is one training block, placed by its learned latent vector: nearby points are blocks the "
           "encoder finds alike. Lasso or box-select points to see where those blocks sit in time; click a point to "
           "inspect it and its nearest neighbours.")

METHODS = {"UMAP": "umap", "PCA": "pca"}

eng, ds, view = frame.model_view("manifold")
n = len(view.starts)
if session.MF_MODEL.get() != session.model_id():
    # Picked / inspected blocks are indices into a model's blocks: a new model starts with none picked.
    session.MF_SELECTED.set([])
    session.MF_LAST_PICK.set([])
    session.MF_FOCUS.set(0)
    session.MF_BLOCK_INPUT.clear()
    session.MF_MODEL.set(session.model_id())
key = projection.latents_key(view.latents)
# Stored views (a job computed them), small enough to compute here, or a views job on its way.
vs = model_views.resolve(n, key, eng.to_bytes)

# ------------------------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.1, 0.9, 1.6, 2.4])
method_names = list(METHODS)
method = c1.radio("Projection", method_names, horizontal=True,
                  index=method_names.index(session.MF_METHOD.get()),
                  help="UMAP keeps local neighbourhoods (compiled once per server, then seconds); PCA is instant.")
dim = c2.radio("Dimensions", [2, 3], horizontal=True, index=[2, 3].index(session.MF_DIM.get()),
               format_func=lambda d: f"{d}-D", help="Lasso / box selection works in 2-D.")
session.MF_METHOD.set(method)
session.MF_DIM.set(dim)

replay_records = session.REPLAY_RECORDS.get() or []
if replay_records and (stale := session.stale_reason(session.REPLAY_TAG.get(), "The last replay")):
    st.info(f"{stale} Its live windows are not drawn; replay again on the **Live replay** page to see where "
            "live windows fall on this model's manifold.", icon=":material/history:")
    replay_records = []
colour_opts = ["time", "regime cluster"] if vs.ready else ["time"]
if view.truth is not None:
    colour_opts.append("ground truth")
colour_opts.append("block volatility")
if replay_records:
    colour_opts.append("live confidence")
prev_colour = session.MF_COLOUR.get()
colour = c3.selectbox("Colour by", colour_opts,
                      index=colour_opts.index(prev_colour) if prev_colour in colour_opts else 1)
session.MF_COLOUR.set(colour)

with c4:
    auto = st.toggle("Choose the number of regimes automatically", value=session.REGIME_K.get() is None)
    r1, r2 = st.columns(2)
    crit = r1.selectbox("Criterion", list(regimes.CRITERIA), disabled=not auto,
                        index=list(regimes.CRITERIA).index(session.REGIME_CRITERION.get()),
                        help="silhouette: KMeans, best mean silhouette. bic: Gaussian mixture, lowest BIC.")
    k_max = max(2, min(12, n - 1))
    if auto:
        lo, hi = session.REGIME_K_RANGE.get() or (2, min(8, k_max))
        k_range = r2.slider("K range", 2, k_max, (min(lo, k_max), min(hi, k_max)))
        k_fixed = None
    else:
        k_range = session.REGIME_K_RANGE.get() or (2, min(8, k_max))
        k_fixed = r2.number_input("K", 1, k_max, int(session.REGIME_K.get() or 3))
session.REGIME_K.set(None if auto else int(k_fixed))
session.REGIME_CRITERION.set(crit)
session.REGIME_K_RANGE.set((int(k_range[0]), int(k_range[1])))

vol = view.table["vol"].to_numpy()
reg = None           # regimes.RegimeResult once the views are ready
try:
    if vs.ready:
        with st.spinner("Clustering regimes…"):
            reg = cache.clustering(view.latents, k_fixed, vol, tuple(k_range), 0, crit if auto else "silhouette",
                                   key=key)
except (ValueError, RuntimeError) as exc:
    st.error(str(exc))
    st.stop()

# ------------------------------------------------------------------------------------------------ projection
note = ""
want = METHODS[method]
if not vs.ready:
    model_views.pending_note(vs, key, "Meanwhile the projection is PCA (instant) and regime colours wait; the page "
                             "switches by itself when the job is done.")
    want = "pca"
elif want == "umap" and vs.views is not None and vs.views.method != "umap":
    st.info("umap-learn was unavailable where this model's views were computed; showing PCA.",
            icon=":material/info:")
    want = "pca"
elif want == "umap" and vs.views is None:
    warm = cache.umap_warmup()
    if warm.state == "failed":
        note = f"UMAP is unavailable ({warm.error}); showing PCA."
        want = "pca"
    elif not warm.ready and warm.state != "idle":
        note = (f"UMAP is compiling (numba JIT, once per server process: {warm.elapsed():.0f} s so far). "
                "Showing PCA meanwhile; the page switches to UMAP by itself when it is ready.")
        want = "pca"
try:
    with st.spinner("Computing UMAP (cached afterwards)…" if want == "umap" else "Projecting…"):
        proj, cached = cache.project(view.latents, want, dim, key=key)
except (ValueError, RuntimeError) as exc:
    st.error(str(exc))
    proj, cached = cache.project(view.latents, "pca", dim, key=key)

if note:
    st.info(note, icon=":material/hourglass_top:")

    @st.fragment(run_every=2.0)
    def _wait_for_umap() -> None:
        if cache.umap_warmup(start=False).state in ("ready", "failed"):
            st.rerun(scope="app")

    _wait_for_umap()

labels_shown = {"regime cluster": None if reg is None else reg.labels, "ground truth": view.truth}
# Above DENSE_POINTS the projection ships no hover strings (it names the block): building them would be wasted.
hover = (block_hover_text(view.table, {} if reg is None else {"regime": reg.labels}) if n <= DENSE_POINTS
         else None)

# Selection state is read before the chart is drawn (Streamlit keeps the chart's last event under its key), so
# a click or lasso shows up on this very run: a single clicked point becomes the inspected block, a lasso / box
# the highlighted set. The widget's key disappears on a page switch: then nothing new was picked.
if (event := session.MF_PROJECTION_EVENT.get()) is not None:
    picked = blocks_from_selection(event.get("selection"))
    if picked != session.MF_LAST_PICK.get():
        session.MF_LAST_PICK.set(picked)
        if len(picked) == 1:
            session.MF_FOCUS.set(picked[0])
            session.MF_BLOCK_INPUT.set(picked[0])
        else:
            session.MF_SELECTED.set(picked)
selected = [b for b in session.MF_SELECTED.get() if b < n]
focus = int(session.MF_FOCUS.get())
focus = focus if 0 <= focus < n else 0
k_nn = int(min(session.MF_KNN.get(), max(1, n - 1)))
nbrs, sims = regimes.nearest_blocks(view.latents, focus, k_nn)

live_xy = live_conf = None
if colour == "time":
    cvals, categorical, ctitle = np.arange(n), False, "block (time →)"
elif colour in labels_shown:
    cvals, categorical, ctitle = labels_shown[colour], True, "regime" if colour == "regime cluster" else "truth"
elif colour == "block volatility":
    cvals, categorical, ctitle = vol, False, "volatility"
else:
    cvals, categorical, ctitle = regimes.block_confidence(n, replay_records), False, "live confidence"
if replay_records:
    idx = [r["neighbour_indices"] for r in replay_records]
    w = [r["neighbour_weights"] for r in replay_records]
    try:
        live_xy = projection.place_points(proj.coords, np.asarray(idx), np.asarray(w))
        live_conf = np.array([r["regime_confidence"] for r in replay_records])
    except (ValueError, RuntimeError):
        live_xy = None

left, right = st.columns([2.2, 1])
with left:
    fig = projection_figure(proj.coords, cvals, categorical=categorical, color_title=ctitle, hover=hover,
                                  selected=selected, focus=focus, neighbours=nbrs, live_xy=live_xy,
                                  live_color=live_conf)
    st.plotly_chart(fig, width="stretch", key=session.MF_PROJECTION_EVENT.key, on_select="rerun",
                    selection_mode=("lasso", "box", "points"))
    how = ("cached" if cached else f"computed in {proj.seconds:.2f} s") if vs.views is None or \
        proj.method != vs.views.method else vs.views.describe() + ", computed with the model"
    st.caption(f"{proj.method.upper()} {proj.dim}-D of {n:,} blocks × {view.latents.shape[1]} latent dims "
               f"({how}; key {key[:10]}).")

with right:
    if reg is None:
        st.caption("Regime clusters: waiting for the views job.")
        st.stop()  # the rest of the page (price view, block inspector) needs regime labels
    st.markdown(f"**{reg.k} regimes** · " + ("chosen by " + reg.criterion if reg.criterion != "fixed" else "fixed K"))
    m1, m2 = st.columns(2)
    m1.metric("Silhouette (cosine)", f"{reg.silhouette:.3f}" if np.isfinite(reg.silhouette) else "—")
    if view.truth is not None:
        agr = metrics.agreement(reg.labels, view.truth)
        m2.metric("ARI vs truth", f"{agr['ari']:.3f}")
        m1.metric("NMI vs truth", f"{agr['nmi']:.3f}")
        m2.metric("Truth regimes", len(np.unique(view.truth)))
    if reg.criterion != "fixed":
        st.plotly_chart(sweep_figure(reg.scores, reg.k, reg.criterion), width="stretch", key="mf_sweep")
    if view.truth is not None:
        st.plotly_chart(contingency_figure(reg.labels, view.truth), width="stretch", key="mf_contingency")
    counts = np.bincount(reg.labels, minlength=reg.k)
    st.dataframe(pd.DataFrame({"regime": np.arange(reg.k), "blocks": counts,
                               "mean volatility": reg.regime_vol}), hide_index=True, width="stretch")

# ------------------------------------------------------------------------------------------------ time view
sel = selected
st.subheader("Where the blocks sit in time")
b1, b2 = st.columns([4, 1])
b1.caption(f"{len(sel)} block(s) selected on the projection (lasso / box; double-click the chart to clear)."
           if sel else "Lasso or box-select points on the projection to highlight their blocks here.")
if sel and b2.button("Clear selection", key="mf_clear"):
    session.MF_SELECTED.set([])
    st.rerun()
st.plotly_chart(price_figure(view.series, view.starts, view.block_len, x=view.x, highlight=sel, focus=focus,
                                   neighbours=nbrs, split=ds.split, series_name=view.series_name),
                width="stretch", key="mf_price")
if sel:
    sub = view.table.iloc[sel]
    shares = np.bincount(reg.labels[sel], minlength=reg.k) / len(sel)
    st.caption(f"Selected blocks: mean return {sub['ret_pct'].mean():+.2f} %, mean volatility {sub['vol'].mean():.4g}; "
               "regimes " + ", ".join(f"{i}: {s:.0%}" for i, s in enumerate(shares) if s > 0) + ".")

# ------------------------------------------------------------------------------------------------ inspect a block
st.subheader("Inspect a block")


def _on_block() -> None:
    session.MF_FOCUS.set(int(session.MF_BLOCK_INPUT.get()))


def _on_knn() -> None:
    session.MF_KNN.set(int(session.MF_KNN_INPUT.get()))


session.MF_BLOCK_INPUT.setdefault(focus)
session.MF_KNN_INPUT.setdefault(k_nn)
i1, i2 = st.columns([1, 3])
with i1:
    st.number_input("Block", 0, n - 1, key=session.MF_BLOCK_INPUT.key, on_change=_on_block,
                    help="Or click a point on the projection.")
    st.slider("Neighbours (k)", 1, max(2, min(20, n - 1)), key=session.MF_KNN_INPUT.key, on_change=_on_knn)
    st.markdown(f"**Block {focus}** · regime {reg.labels[focus]}"
                + (f" · truth {view.truth[focus]} ({view.truth_share[focus]:.0%} of its ticks)"
                   if view.truth is not None else ""))
rows = view.table.iloc[np.concatenate([[focus], nbrs])].copy()
rows.insert(1, "cos sim", np.concatenate([[1.0], sims]).round(4))
rows.insert(2, "regime", reg.labels[rows["block"].to_numpy()])
rows["t_start"], rows["t_end"] = rows["t_start"].astype(str), rows["t_end"].astype(str)
with i2:
    st.plotly_chart(neighbour_windows_figure(view.series, view.starts, view.block_len, focus, nbrs, sims),
                    width="stretch", key="mf_windows")
st.dataframe(rows.rename(columns={"ret_pct": "return %", "vol": "volatility"}).round(5), hide_index=True,
             width="stretch")
