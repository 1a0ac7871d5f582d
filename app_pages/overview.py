"""Overview page: what ChronosDefrag does, the active model at a glance, and where to go next.

Layout only: numbers come from the engine, ``chronoslib.regimes`` (through the app's cache) and the figures from
``chronoslib.plots``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from app_pages.lib import cache, model_views, session
from chronoslib import projection, regimes
from chronoslib.plots.timeline import timeline_figure

GUIDE = [
    ("app_pages/data.py", "Data", "pick a sample or upload CSV / Parquet, choose columns and feature engineering"),
    ("app_pages/train.py", "Train", "train a model with live loss curves; save, download or load checkpoints"),
    ("app_pages/manifold.py", "Manifold", "UMAP / PCA of the block latents, regime clusters, lasso to the prices"),
    ("app_pages/timeline.py", "Timeline", "chronological vs defragmented order side by side, similarity heatmaps"),
    ("app_pages/replay.py", "Live replay", "replay held-out windows through predict_live with confidence gauges"),
    ("app_pages/latency.py", "Latency", "per-call latency histogram, per-stage breakdown, against the 0.1.0 figures"),
    ("app_pages/diagnostics.py", "Diagnostics", "collapse and drift at a glance, with verdicts and actions"),
    ("app_pages/evidence.py", "Evidence", "does defragmented training help? pseudo vs chronological vs random order"),
]


def render() -> None:
    st.title("ChronosDefrag")
    st.markdown(
        "Slices a multivariate series into causal blocks, learns a contrastive **latent manifold** of them, and "
        "**defragments** the timeline: blocks of the same regime, scattered in time, are chained next to each "
        "other. Live windows are routed to their nearest historical regimes. *A research instrument, not a trading "
        "system.*")
    eng, ds = session.engine(), session.dataset()
    if eng is None or getattr(eng, "block_latents", None) is None:
        st.info("No model yet: train one on the Train page or load a checkpoint there.")
    else:
        s = eng.fit_summary
        c = st.columns(5)
        c[0].metric("Training blocks", f"{len(eng.block_latents):,}", f"{eng.cfg.encoder.block_len} ticks each",
                    delta_color="off")
        c[1].metric("Latent dim", eng.cfg.encoder.latent_dim)
        c[2].metric("Timeline entropy", f"{s.get('timeline_entropy', float('nan')):.3f}",
                    help="0 = the pseudo-timeline is chronological; near 1 = every step jumps in time.")
        ratio = s.get("path_cost_ratio")
        c[3].metric("Path cost ratio", f"{ratio:.2f}" if ratio is not None else "?",
                    help="Sum of squared latent jumps along the pseudo-timeline over the same in time order.")
        c[4].metric("Representation", str(s.get("final_verdict", "?")),
                    help="Collapse verdict on the final latents (mean pairwise cosine and effective rank).")
        try:
            view = regimes.block_view(eng.block_latents, eng.block_starts, int(eng.cfg.encoder.block_len),
                                      eng.pseudo_timeline, ds.features, ds.prices, ds.timestamps, ds.labels)
            key = projection.latents_key(view.latents)
            vs = model_views.resolve(len(view.starts), key, eng.to_bytes)   # queues a large model's views early
            if view.truth is not None:
                labels, name = view.truth, "truth"
            elif vs.ready:
                # The same cached clustering (and default settings) as the Manifold / Timeline pages.
                labels = cache.clustering(view.latents, block_vol=view.table["vol"].to_numpy(), key=key).labels
                name = "regime"
            else:
                model_views.pending_note(vs, key, "The time-order / pseudo-timeline picture appears here when the "
                                         "job is done.")
                labels = None
            if labels is not None:
                # Built once per model, data and labels in this server (0.5-0.7 s at 12,500 blocks).
                drawn = hashlib.sha1(np.asarray(labels).tobytes()).hexdigest()
                fig = cache.figure(f"overview:{session.model_id()}:{session.data_id()}:{key}:{drawn}:{name}",
                                   lambda: timeline_figure(view.series, view.starts, view.block_len, view.order,
                                                           labels, layout="side", label_name=name,
                                                           series_name=view.series_name, times=view.x))
                st.plotly_chart(fig, width="stretch", key="overview_timeline")
                st.caption("The active model's training blocks in time order (left) and in pseudo-timeline order "
                           f"(right), coloured by {'ground-truth regime' if name == 'truth' else 'regime cluster'}. "
                           "More on the Timeline page.")
        except (ValueError, RuntimeError) as exc:
            st.warning(f"The active model and dataset do not line up ({exc}); load matching data or retrain.")
    st.subheader("Pages")
    for path, title, what in GUIDE:
        st.page_link(path, label=f"**{title}** — {what}")


render()
