"""Evidence page: does training over the pseudo-timeline beat chronological or random order on this data?

Runs ``chronoslib.experiments.run_evaluation`` on the session's dataset with the session model's configuration
and the chosen ordering of the pseudo arm, caches the result per dataset + model + ordering in session state,
and shows the figures of ``chronoslib.plots.evidence`` and the verdicts of ``chronoslib.verdicts``.
"""

import json
import os

import pandas as pd
import streamlit as st

from app_pages.lib import session
from chronoslib import DefragConfig
from chronoslib.experiments import PROTOCOL_TEXT, run_evaluation
from chronoslib.plots.evidence import error_figure, reduction_figure, regime_figure, seed_table, spearman_figure
from chronoslib.timeline import METHODS, resolve_method
from chronoslib.verdicts import group_tone, headline, verdict_groups, verdicts

SHIPPED_EVIDENCE = os.path.join(session.ROOT, "sample_data", "sample_evidence.json")

st.title("Evidence")
st.caption("The claim under test: a predictor trained over the defragmented pseudo-timeline forecasts held-out "
           "data better than one trained over raw time order (or a random order). Measured here, on your data, "
           "with intervals over seeds, whatever the answer.")

ds, eng, info = session.dataset(), session.engine(), session.model_info()
n_feat = int(ds.features.shape[1])
if eng is not None and eng.cfg.encoder.input_dim == n_feat:
    cfg = eng.cfg.copy()
    cfg_origin = f"the current model's configuration ({info.get('origin', '?')})"
else:
    cfg = DefragConfig().with_overrides(input_dim=n_feat,
                                        block_len=eng.cfg.encoder.block_len if eng is not None else None)
    cfg_origin = "the default configuration (the current model was trained on a different feature set)"

with st.expander("Method", expanded=False):
    st.markdown(PROTOCOL_TEXT)
    st.markdown("Regime recovery (when the data has labels): KMeans on the latents vs KMeans and a Gaussian HMM "
                "on hand-made block statistics (mean, standard deviation and lag-1 autocorrelation of every "
                "feature), all fitted on the training blocks; adjusted Rand index and NMI against each block's "
                "majority label.")

key = f"evidence:{session.data_id()}:{session.model_id()}"   # a result belongs to one dataset and one model
results: dict = session.EVIDENCE_RESULTS.get()

with st.form("evidence_form"):
    c1, c2, c3, c4 = st.columns(4)
    seeds = c1.number_input("Seeds", min_value=2, max_value=20, value=3, step=1, key="ev_seeds",
                            help="each seed refits the encoder and trains the three predictors")
    enc_ep = c2.number_input("Encoder epochs", min_value=1, max_value=200, value=10, step=1, key="ev_enc_epochs",
                             help=f"the model's own setting is {cfg.optim.encoder_epochs}")
    pred_ep = c3.number_input("Predictor epochs", min_value=1, max_value=200, value=10, step=1, key="ev_pred_epochs",
                              help=f"the model's own setting is {cfg.optim.predictor_epochs}")
    seed0 = c4.number_input("First seed", min_value=0, max_value=10_000, value=0, step=1, key="ev_seed0")
    ordering = st.selectbox("Pseudo-timeline ordering of the pseudo arm", ["as configured", *METHODS[:3]],
                            key="ev_ordering",
                            help=f"as configured: the model's own ({cfg.routing.chain_method}); greedy: the "
                                 "nearest-neighbour chain; refined: greedy + local search; regime: chained inside "
                                 "regime clusters. Does a better defragmentation change the predictor's result?")
    run = st.form_submit_button("Run evaluation", type="primary")
chosen = None if ordering == "as configured" else ordering
key += f":{chosen or 'configured'}"   # and one ordering
st.caption(f"Data: **{ds.name}** · {ds.features.shape[0]:,} ticks, training span {ds.split:,} ticks · "
           f"model configuration: {cfg_origin} · block length {cfg.encoder.block_len}, latent "
           f"{cfg.encoder.latent_dim}, window {cfg.predictor.window}. The defaults are small and fast: fewer encoder "
           f"epochs than the model's own {cfg.optim.encoder_epochs} give weaker latents (regime recovery suffers); "
           "use the model's settings and more seeds for tighter, representative numbers.")

if run:
    bar = st.progress(0.0, text="fitting the encoder for the first seed …")

    def progress(stage: str, step: int, total: int, metrics: dict) -> None:
        bar.progress(step / total, text=f"seed {metrics['seed_index'] + 1}/{int(seeds)}: {metrics['done']} done")

    try:
        res = run_evaluation(ds.features, ds.split, cfg, labels=ds.labels, prices=ds.prices, seeds=int(seeds),
                             seed0=int(seed0), encoder_epochs=int(enc_ep), predictor_epochs=int(pred_ep),
                             dataset=ds.name, progress=progress, ordering=chosen)
        res["verdicts"] = verdicts(res)
        res["made_with"] = session.result_tag()
        results = {**results, key: res}
        session.EVIDENCE_RESULTS.set(results)
        bar.empty()
    except (ValueError, RuntimeError) as exc:
        bar.empty()
        st.error(f"The evaluation could not run: {exc}")

res = results.get(key)
if res is None and chosen is None and info.get("origin") == session.SHIPPED_ORIGIN \
        and ds.name == session.DEFAULT_SAMPLE and os.path.exists(SHIPPED_EVIDENCE):
    # The shipped model on the shipped data (same split): show the result computed when they were made.
    with open(SHIPPED_EVIDENCE) as f:
        shipped = json.load(f)
    if shipped.get("split") == ds.split and shipped.get("n_ticks") == len(ds.features):
        res = shipped
        st.info(f"Showing the result shipped with the sample model ({len(res['seeds'])} seeds at the model's own "
                f"settings, made by `sample_data/make_sample_data.py`). Press **Run evaluation** to compute it "
                "here.", icon=":material/inventory_2:")
if res is None:
    older = [r for r in results.values() if isinstance(r, dict)]
    # Say so rather than silently showing, or silently dropping, an evaluation of a previous model or dataset.
    if older and (why := session.stale_reason(older[-1].get("made_with"), "The last evaluation")):
        st.info(why, icon=":material/history:")
    st.info("No evaluation for this dataset and model yet: press **Run evaluation** (about 10–30 s with the "
            "defaults on the sample data).")
    st.stop()

st.subheader("Verdicts")
st.caption(f"Pseudo arm ordered by **{resolve_method(res.get('ordering', 'auto'))}** · "
           f"{len(res['seeds'])} seeds ({res['seeds'][0]}…{res['seeds'][-1]}), encoder {res['encoder_epochs']} "
           f"epochs, predictor {res['predictor_epochs']} epochs · {res['n_train_blocks']} training blocks, "
           f"{res['n_targets']} held-out targets · computed in {res['seconds']:.1f} s")
heads = headline(res)
for col, (label, value, help_text) in zip(st.columns(len(heads)), heads):
    col.metric(label, value, help=help_text)
BOX = {"good": st.success, "bad": st.warning, "mixed": st.info, "neutral": st.info}
TITLE = {"error": "Held-out prediction error", "alpha": "Alpha vs the next block's return",
         "regimes": "Regime recovery"}
for group, sentences in verdict_groups(res).items():
    BOX[group_tone(group, sentences)](f"**{TITLE[group]}**\n\n" + "\n".join(f"- {v}" for v in sentences))

st.plotly_chart(reduction_figure(res), width="stretch", key="ev_reduction")
st.plotly_chart(error_figure(res), width="stretch", key="ev_error")
st.plotly_chart(spearman_figure(res), width="stretch", key="ev_spearman")
st.plotly_chart(regime_figure(res), width="stretch", key="ev_regimes")

with st.expander("Per-seed numbers"):
    st.dataframe(pd.DataFrame(seed_table(res)), hide_index=True, width="stretch")
st.download_button("Download the result (JSON)", json.dumps(res, indent=1), file_name="evidence.json",
                   mime="application/json", key="ev_download")
