"""Latency panel: per-call latency of predict_live (histogram, p50 / p95 / p99, QPS), the per-stage breakdown
(encode, registry query, SPD + context, predictor) and a comparison with
ChronosDefrag 0.1.0's published reference figures.

The benchmark runs in place (``chronoslib.latency.measure_live_latency`` on held-out windows, and
``measure_batch_throughput`` for the batched ``predict_batch`` path) when the button is pressed; its result
stays in session state. The last replay's per-call latencies are shown too when there are any.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.lib import cache, session, train_job
from chronoslib.latency import (
    REFERENCE_LABEL,
    SPEC_FIGURES,
    busy_reasons,
    compare,
    measure_batch_throughput,
    measure_live_latency,
    span_windows,
    stages_with_overhead,
)
from chronoslib.plots.latency import latency_histogram, spec_comparison, stage_breakdown
from chronoslib.replay import heldout_source

st.title("Latency")
eng, ds = session.engine(), session.dataset()
if eng is None:
    st.info("No model yet: train one on the **Train** page or load a checkpoint there.")
    st.stop()

st.caption("Each `predict_live` call: encode the window → cosine against the registry → SPD weighting and context "
           "blend → one predictor step. Timings are wall clock on this server's CPU (single-threaded torch, shared "
           "with every other session of the app); the first calls are excluded as warm-up, as in the reference "
           "benchmark.")


def _busy() -> list[str]:
    return busy_reasons(umap_warming=cache.umap_warming(), training=train_job.running())


c1, c2, c3 = st.columns([2, 2, 3])
n_calls = c1.select_slider("Calls", [100, 250, 500, 1000, 2000, 5000], value=session.LAT_CALLS.get(),
                           key="lat_calls_w")
session.LAT_CALLS.set(n_calls)
run = c2.button("Run benchmark", key="lat_run", type="primary", icon=":material/speed:")
first = session.LAT_RESULT.get() is None
if first:  # open with real numbers: a short run (~0.1-0.3 s) the first time the page is shown
    n_calls = 200
if run or first:
    try:
        src = heldout_source(ds, eng)
        windows = span_windows(src.features, eng.cfg.encoder.block_len)       # (M, L, F)
        with st.spinner(f"Timing {n_calls} predict_live calls…"):
            res = measure_live_latency(eng, windows, n_calls=n_calls)
            res |= measure_batch_throughput(eng, windows, timestamp=src.start_tick)
            res["busy"] = _busy()
        session.LAT_RESULT.set(res)
    except (ValueError, RuntimeError) as exc:
        st.error(str(exc))

res = session.LAT_RESULT.get()
if res is None:
    c3.info("Press **Run benchmark** to time `predict_live` here and compare with the reference figures.")
else:
    c3.caption(f"Last run: {res['n_calls']:,} calls" + (" (a short run made on opening this page; press **Run "
               "benchmark** for a longer one)." if res["n_calls"] == 200 and not run else "."))
    if res.get("busy"):
        st.warning("The server was busy while measuring (" + "; ".join(res["busy"]) + "): these figures are "
                   "inflated. Run the benchmark again when it is idle.", icon=":material/warning:")
    m = st.columns(5)
    m[0].metric("p50", f"{res['p50_ms']:.3f} ms")
    m[1].metric("p95", f"{res['p95_ms']:.3f} ms")
    d, col = compare(res["p99_ms"], SPEC_FIGURES["predict_live_p99_ms"], higher_is_better=False, unit=" ms")
    m[2].metric("p99", f"{res['p99_ms']:.3f} ms", delta=d, delta_color=col,
                help=f"Delta: against the {REFERENCE_LABEL}")
    d, col = compare(res["qps"], SPEC_FIGURES["qps"], higher_is_better=True)
    m[3].metric("QPS (one caller)", f"{res['qps']:,.0f}", delta=d, delta_color=col,
                help=f"Delta: against the {REFERENCE_LABEL}")
    m[4].metric("Batched, windows/s", f"{res.get('batch_windows_per_s', float('nan')):,.0f}",
                help=f"{res.get('batch_windows', 0)} windows in one batched call")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(latency_histogram(res["samples_ms"], title=f"{res['n_calls']} predict_live calls"),
                        width="stretch", key="lat_hist")
    with right:
        stages = stages_with_overhead(res["stage_ms"], res.get("overhead_ms", 0.0))
        st.plotly_chart(stage_breakdown(stages, title="Median time per stage"), width="stretch",
                        key="lat_stages")
        st.caption(f"Stages sum to {sum(res['stage_ms'].values()):.3f} ms; **overhead** "
                   f"{stages['overhead']:.3f} ms is the median per-call remainder (total − Σ stages): Python "
                   "dispatch, input checks and building the result, which no stage timer covers.")
    st.subheader(f"Against the {REFERENCE_LABEL}")
    st.plotly_chart(spec_comparison(res, SPEC_FIGURES), width="stretch", key="lat_reference")
    rows = [("predict_live mean (ms)", SPEC_FIGURES["predict_live_mean_ms"], res["mean_ms"]),
            ("predict_live p99 (ms)", SPEC_FIGURES["predict_live_p99_ms"], res["p99_ms"]),
            ("Inference throughput (QPS)", SPEC_FIGURES["qps"], res["qps"])]
    st.dataframe(pd.DataFrame([{"metric": n, "reference (0.1.0, Apple M2 Pro)": a, "measured here": round(b, 3),
                                "ratio": f"{b / a:.2f}×"} for n, a, b in rows]), hide_index=True, width="stretch")
    st.caption("Lower is better for latency, higher for QPS. The other reference figures (encoder fit "
               f"{SPEC_FIGURES['encoder_fit_30_epochs_48_blocks_s']} s, pseudo-timeline "
               f"{SPEC_FIGURES['pseudo_timeline_48_blocks_ms']} ms, peak memory "
               f"{SPEC_FIGURES['peak_memory_mb']:.0f} MB) "
               "are measured by `python -m chronoslib bench`.")

rs = session.REPLAY.get()
if rs is not None and rs.position:
    st.subheader("During the last replay")
    lat = rs.latency_ms[: rs.position]
    st.caption(f"{rs.position} predict_live calls while replaying · p50 {np.percentile(lat, 50):.3f} ms · "
               f"p99 {np.percentile(lat, 99):.3f} ms (these include the app's own load on the server)")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(latency_histogram(lat), width="stretch", key="lat_replay_hist")
    with right:
        st.plotly_chart(stage_breakdown({k: float(np.median(v)) for k, v in rs.stage_ms.items() if v}),
                        width="stretch", key="lat_replay_stages")
