"""Diagnostics page: collapse and drift at a glance.

Collapse: per-epoch batch entropy vs the TER target, mean pairwise cosine and effective rank from the training
history, a histogram of pairwise similarities of the block latents, and a verdict (healthy / collapsing /
collapsed) with mitigations. Drift: for the held-out span (optionally with a simulated break), an
uploaded continuation or the last replay, the distance of each window of latents from the training manifold
over time (centroid distance and MMD² against thresholds from contiguous training windows), the age of the
retrieved neighbours and the confidence, with a verdict and the suggested action. All numbers come from
``chronoslib.metrics`` / ``chronoslib.drift``; this page only lays them out.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from app_pages.lib import cache, session
from chronoslib import drift, metrics, replay
from chronoslib.features import source_columns
from chronoslib.plots.health import collapse_figure, drift_figure, similarity_histogram

st.title("Diagnostics")
eng, ds = session.engine(), session.dataset()
if eng is None:
    st.info("No model yet: train one on the **Train** page or load a checkpoint there.")
    st.stop()

# ---------------------------------------------------------------------- collapse
st.header("Collapse")
z = np.asarray(eng.block_latents)
mid = session.model_id()
# Everything below is computed once per model (and source / settings) in this server: a 15k-block model's
# statistics take seconds, a later visit milliseconds.
stats = cache.computed(f"dg_collapse:{mid}", lambda: metrics.collapse_stats(z))
box = {"healthy": st.success, "collapsing": st.warning, "collapsed": st.error}[stats["verdict"]]
box(f"**{stats['verdict'].capitalize()}** — {len(z):,} block latents: mean pairwise cosine "
    f"**{stats['mean_cos']:.3f}** (collapsing ≥ {metrics.COLLAPSING_MEAN_COS}, collapsed ≥ "
    f"{metrics.COLLAPSE_MEAN_COS}), effective rank **{stats['eff_rank']:.2f}** of {z.shape[1]} "
    f"(collapsing < {metrics.COLLAPSING_EFF_RANK}, collapsed < {metrics.COLLAPSE_EFF_RANK}).")
st.markdown("\n".join(f"- {m}" for m in metrics.COLLAPSE_MITIGATIONS[stats["verdict"]]))
curves = metrics.collapse_curves(eng.history)
left, right = st.columns([2, 1])
with left:
    if len(curves["epoch"]):
        flagged = [int(e) for e, v in zip(curves["epoch"], curves["verdict"]) if v == "collapsed"]
        st.plotly_chart(collapse_figure(curves), width="stretch", key="dg_curves")
        if flagged:
            st.caption(f"Encoder epochs flagged collapsed during training: {', '.join(map(str, flagged[:12]))}")
    else:
        st.info("This model has no encoder training history (per-epoch curves appear after training).")
with right:
    st.plotly_chart(cache.figure(f"dg_sims:{mid}", lambda: similarity_histogram(metrics.pairwise_similarities(z))),
                    width="stretch", key="dg_sims")

# ---------------------------------------------------------------------- drift
st.header("Drift")
KINDS = {label: kind for kind, label in replay.SOURCES.items()}
SOURCES = list(KINDS)
rs = session.REPLAY.get()
stale = session.stale_reason(session.REPLAY_TAG.get(), "The last replay") if rs is not None and rs.position \
    else None
if rs is not None and rs.position and stale is None:
    SOURCES.insert(0, "Last replay")
elif stale is not None:
    st.info(f"{stale} Replay again on the **Live replay** page to check this model's drift on it.",
            icon=":material/history:")
d = session.DIAG_SETTINGS.get() or {"source": SOURCES[0], "window": 8, "alpha": 0.05}
c1, c2, c3 = st.columns([2, 1, 1])
src_name = c1.radio("Data", SOURCES, index=SOURCES.index(d["source"]) if d["source"] in SOURCES else 0,
                    key="dg_source", horizontal=True)
d["window"] = c2.slider("Trailing window (blocks)", 2, 32, int(d["window"]), key="dg_window",
                        help="How many consecutive non-overlapping blocks each drift statistic looks at.")
d["alpha"] = c3.select_slider(
    "False-alarm rate α", [0.01, 0.02, 0.05, 0.1], value=d["alpha"], key="dg_alpha",
    help="Share of the training span's own windows of this length that count as drifting (over either "
         "threshold: the two statistics share one level so that together they flag α, not 2α). The drifted "
         f"level is stricter: at most {drift.DRIFTED_FALSE_ALARM:.1%} of training windows (or α/2) exceed it.")
d["source"] = src_name
session.DIAG_SETTINGS.set(d)
upload = None
if KINDS.get(src_name) == "upload":
    upload = st.file_uploader("Continuation (CSV / Parquet)", type=["csv", "parquet"], key="dg_upload",
                              help=f"Columns {', '.join(source_columns(eng.cfg.data) or ds.feature_names)}; "
                                      "optional price, "
                                      "timestamp, regime.")
rp = session.REPLAY_SETTINGS.get() or {}
# A threshold chosen on the Live replay page for a previous model is that model's: use this model's default.
threshold = float(rp["threshold"]) if rp.get("model") == session.model_id() and "threshold" in rp \
    else replay.suggested_threshold(eng)

try:
    if src_name == "Last replay":
        an = rs.analysis()
        label = f"last replay · {rs.source.name}"
        src = rs.source
    else:
        if KINDS[src_name] == "upload" and upload is None:
            st.info("Upload a file to check it for drift.")
            st.stop()
        given = "" if upload is None else hashlib.sha1(upload.getvalue()).hexdigest()
        src, an = cache.computed(f"dg_source:{mid}:{session.data_id()}:{KINDS[src_name]}:{given}", lambda: (
            (s := replay.build_source(KINDS[src_name], ds, eng, upload)), replay.batch_analysis(eng, s)))
        label = src.name
    window = int(min(d["window"], len(an["latent"]), len(z) - 2))
    seen = hashlib.sha1(np.ascontiguousarray(an["latent"]).tobytes()).hexdigest()
    tl = cache.computed(f"dg_drift:{mid}:{seen}:{window}:{d['alpha']}", lambda: drift.drift_timeline(
        z, an["latent"], window=window, step=1, alpha=float(d["alpha"])))
except (ValueError, RuntimeError) as exc:
    st.error(str(exc))
    st.stop()

# Confidence rule on non-overlapping blocks: alert after two blocks in a row under the re-fit threshold.
al = drift.low_confidence_alert(an["confidence"], threshold, patience=2)
# Drifting: the latest window is over the α level; drifted: over the stricter drifted level (or the confidence
# rule). Each level is crossed by a stated share of training windows; trailing windows overlap, so a rule over
# the last few of them would fire on several in a row after one stationary excursion.
rates = (float(tl["null_drift_rate"][0]), float(tl["null_drifted_rate"][0]))
verdict = drift.drift_verdict(tl["drift"], recent=1, low_confidence_alert=al["alert"], drifted_flags=tl["drifted"],
                              false_alarm=rates)
box = {"stable": st.success, "drifting": st.warning, "drifted": st.error}[verdict["verdict"]]
box(f"**{verdict['verdict'].capitalize()}** ({label}, {len(an['latent'])} blocks): {verdict['reason']}. "
    f"{verdict['action']}")
m = st.columns(5)
m[0].metric("Windows over a threshold", f"{int(tl['drift'].sum())} / {len(tl['drift'])}")
m[1].metric("Windows at the drifted level", f"{int(tl['drifted'].sum())} / {len(tl['drifted'])}")
m[2].metric("Mean confidence", f"{float(np.mean(an['confidence'])):.3f}")
m[3].metric(f"Blocks below {threshold:.2f}", f"{int(al['below'].sum())} / {len(al['below'])}")
m[4].metric("Neighbour age (ticks)", f"{float(np.nanmean(an['neighbour_age'])):,.0f}",
            help="Mean age of the retrieved neighbours: query tick minus neighbour start tick")
# Window start times put the drift panels on a date axis when the source has timestamps.
win_times = None if src.timestamps is None else np.asarray(src.timestamps)[np.asarray(an["start"], dtype=np.int64)]
st.plotly_chart(drift_figure(an["tick"], tl, an["confidence"], an["neighbour_age"], threshold, times=win_times),
                width="stretch", key="dg_drift")
st.caption(f"Each point looks at the last {window} non-overlapping blocks. Thresholds (dashed: drifting, dotted: "
           "drifted) come from every contiguous training window of that length against the rest of the training "
           f"latents, so ordinary regime persistence is not flagged: {rates[0]:.1%} of those windows are over either "
           f"threshold (drifting), {rates[1]:.1%} over the stricter drifted level (never stated below 1 / (training "
           "windows + 1)). On new data like the training span the verdict reads drifting or drifted at about those "
           f"rates. Re-fit threshold on confidence ({threshold:.2f}) from the Live replay settings.")
