"""Train page: the settings that matter, a training job with live progress and loss chart, and model files.

Training is a job on the server's queue (``train_job``: its own process, ``python -m chronoslib train``), so
the page stays responsive and a cancel kills it; a fragment reads the job's progress events for the progress
bar (stage, step within the epoch, steps/s, time left, queue place) and the per-epoch chart, and the finished
checkpoint becomes this session's model only (``train_job.poll_training``). Below: the active model's fit
summary (timeline entropy, path costs, collapse verdict), saving it on the server, downloading it, and loading
a checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import streamlit as st
import torch

from app_pages.lib import cache, model_store, session, train_job
from chronoslib import ChronosDefragEngine, DefragConfig
from chronoslib.advice import min_blocks_advice, suggest_block_len
from chronoslib.data import SAMPLES
from chronoslib.errors import CheckpointError
from chronoslib.plots.training import loss_figure
from chronoslib.training import planned_epochs

LIVE_REFRESH_S = 1.0   # fragment poll interval while a job is queued or running
MIN_BLOCKS = 4        # the engine refuses fewer; advice.MIN_BLOCKS (50) is what makes a useful manifold


def suggested_block_len(ds) -> int | None:
    """The block length the timestamps suggest (``advice.suggest_block_len``) for a dataset that is not a
    shipped sample and has dates; None otherwise (a sample keeps the configuration's length, the one its
    shipped model was trained with, so a retrain on it compares like with like)."""
    if ds.name in SAMPLES or ds.timestamps is None:
        return None
    sug = cache.computed(f"block_len:{session.data_id()}", lambda: suggest_block_len(ds.timestamps))
    return sug.block_len if sug.period else None


def default_settings(ds=None) -> dict[str, Any]:
    """Form defaults: the library's DefragConfig, or a seconds-long run under CHRONOS_FAST_UI=1; the block
    length the timestamps suggest for an uploaded dataset with dates."""
    c = DefragConfig()
    bl = (suggested_block_len(ds) if ds is not None else None) or c.encoder.block_len
    s = {"block_len": bl, "latent_dim": c.encoder.latent_dim,
         "forecast_dim": c.predictor.forecast_dim, "hidden_dim": c.encoder.hidden_dim,
         "encoder_epochs": c.optim.encoder_epochs, "predictor_epochs": c.optim.predictor_epochs,
         "batch_size": c.optim.batch_size, "lr": c.optim.lr, "temperature": c.encoder.temperature,
         "learn_temperature": c.encoder.learn_temperature, "entropy_weight": c.encoder.entropy_weight,
         "continuity_weight": c.encoder.continuity_weight, "seed": c.seed, "device": c.device,
         "normalize": c.data.normalize}
    if session.FAST_UI:
        s.update(latent_dim=8, forecast_dim=4, hidden_dim=16, encoder_epochs=3, predictor_epochs=2)
    return s


def build_config(s: dict[str, Any]) -> DefragConfig:
    """DefragConfig from the form's values (the form's "hidden_dim" is the encoder's channel count)."""
    flat = {k: v for k, v in s.items() if k not in ("hidden_dim", "data_id")}
    return DefragConfig().with_overrides(**flat, **{"encoder.hidden_dim": s["hidden_dim"]})


def planned(s: dict[str, Any], ds) -> tuple[int, int]:
    """(encoder, predictor) epochs a run with the settings ``s`` makes on ``ds`` (``training.planned_epochs``)."""
    try:
        return planned_epochs(build_config(s), ds.split // max(int(s["block_len"]), 1))
    except ValueError:      # settings the form will refuse anyway
        return int(s["encoder_epochs"]), int(s["predictor_epochs"])


def collapse_banner(history: list[dict[str, Any]], summary: dict[str, Any], live: bool = False) -> None:
    """Red banner for collapsed latents, amber for collapsing, a note when only some epochs were flagged."""
    enc = [h for h in history if h.get("stage") == "encoder"]
    if not enc and not summary:
        return
    last = enc[-1] if enc else {}
    verdict = (last.get("verdict") if live else summary.get("final_verdict", last.get("verdict"))) or "healthy"
    mc = last.get("mean_cos") if live else summary.get("final_mean_cos", last.get("mean_cos"))
    er = last.get("eff_rank") if live else summary.get("final_eff_rank", last.get("eff_rank"))
    stats = f"mean pairwise cosine {mc:.2f}, effective rank {er:.1f}" if mc is not None and er is not None else ""
    flagged = [h["epoch"] for h in enc if h.get("collapsed")]
    advice = ("Raise the entropy weight, lower the temperature or train more encoder epochs; "
              "see Diagnostics for details.")
    if verdict == "collapsed":
        st.error(f"**Latent collapse** — the block latents have collapsed onto a few directions ({stats}). "
                 f"Regimes cannot be told apart. {advice}", icon=":material/warning:")
    elif verdict == "collapsing":
        st.warning(f"**Latents are collapsing** ({stats}): regime separation is weak. {advice}",
                   icon=":material/warning:")
    elif flagged:
        st.info(f"Encoder epoch(s) {', '.join(map(str, flagged[:8]))} were flagged as collapsed during training; "
                f"the final latents are healthy ({stats}).")


def form_settings(ds) -> dict[str, Any]:
    """The form's starting values: the last submitted ones, except that a new dataset starts from its own
    suggested block length (the settings remember the dataset they were submitted for)."""
    s = session.TRAIN_SETTINGS.get()
    if s is None:
        return default_settings(ds)
    if s.get("data_id") != session.data_id():
        s = {**s, "block_len": default_settings(ds)["block_len"]}
    return s


def settings_form(ds) -> tuple[dict[str, Any] | None, int]:
    """The knobs; returns (the submitted values on Train, else None; the block length the form holds)."""
    s = form_settings(ds)
    running = train_job.running()
    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with st.form("train_form", border=True):
        c1, c2, c3, c4 = st.columns(4, gap="medium")
        with c1:
            st.markdown("**Blocks & latents**")
            sug = suggested_block_len(ds)
            block_len = st.number_input("Block length (ticks)", 2, 4096, int(s["block_len"]), key="tr_block_len",
                                        help="Ticks per non-overlapping block; one latent per block."
                                        + (f" The data's timestamps suggest {sug} (see the Data page)." if sug
                                           else ""))
            latent = st.number_input("Latent dim", 2, 512, int(s["latent_dim"]), key="tr_latent_dim",
                                     help="Size of the unit latent (encoder and predictor together).")
            forecast = st.number_input("Forecast dim", 1, 512, int(s["forecast_dim"]), key="tr_forecast_dim",
                                       help="Leading latent coordinates the predictor forecasts (≤ latent dim).")
            hidden = st.number_input("Encoder channels", 2, 1024, int(s["hidden_dim"]), key="tr_hidden_dim")
        with c2:
            st.markdown("**Optimisation**")
            plan = planned(s, ds)
            enc_ep = st.number_input("Encoder epochs", 0, 2000, int(s["encoder_epochs"]), key="tr_encoder_epochs",
                                     help=f"0 = from the training budget ({plan[0]} for this data and block length)")
            pred_ep = st.number_input("Predictor epochs", 0, 2000, int(s["predictor_epochs"]),
                                      key="tr_predictor_epochs",
                                      help=f"0 = from the training budget ({plan[1]} for this data and block length)")
            batch = st.number_input("Batch size (blocks)", 2, 4096, int(s["batch_size"]), key="tr_batch_size",
                                    help="Blocks per contrastive batch: batch/2 chronological pairs (t, t+1).")
            lr = st.number_input("Learning rate", 1e-5, 1.0, float(s["lr"]), format="%.4f", step=1e-4, key="tr_lr")
        with c3:
            st.markdown("**Contrastive loss**")
            temp = st.number_input("Temperature", 0.01, 10.0, float(s["temperature"]), step=0.05, key="tr_temperature",
                                   help="Initial InfoNCE temperature.")
            learn_t = st.checkbox("Learn the temperature", bool(s["learn_temperature"]), key="tr_learn_temperature")
            ent_w = st.number_input("Entropy weight (TER)", 0.0, 100.0, float(s["entropy_weight"]), step=0.1,
                                    key="tr_entropy_weight", help="Higher fights latent collapse.")
            cont_w = st.number_input("Continuity weight (LCR)", 0.0, 100.0, float(s["continuity_weight"]), step=0.1,
                                     key="tr_continuity_weight", help="Pulls chronologically adjacent blocks together.")
        with c4:
            st.markdown("**Run**")
            seed = st.number_input("Seed", 0, 2**31 - 1, int(s["seed"]), key="tr_seed")
            device = st.selectbox("Device", devices, devices.index(s["device"]) if s["device"] in devices else 0,
                                  key="tr_device")
            norms = ["zscore", "robust", "none"]
            norm = st.selectbox("Normalisation", norms, norms.index(s["normalize"]), key="tr_normalize",
                                help="Fitted on the training span only and stored in the checkpoint.")
            st.write("")
            go = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:", disabled=running,
                                       width="stretch", key="tr_train")
    if not go:
        return None, int(block_len)
    return {"block_len": block_len, "latent_dim": latent, "forecast_dim": forecast, "hidden_dim": hidden,
            "encoder_epochs": enc_ep, "predictor_epochs": pred_ep, "batch_size": batch, "lr": lr,
            "temperature": temp, "learn_temperature": learn_t, "entropy_weight": ent_w,
            "continuity_weight": cont_w, "seed": seed, "device": device, "normalize": norm}, int(block_len)


def use_block_len(n: int) -> None:
    """Button callback: put ``n`` into the form's block length (before the form is drawn again)."""
    st.session_state["tr_block_len"] = int(n)


def block_warning(ds, block_len: int) -> None:
    """The minimum-blocks warning (``advice.min_blocks_advice``) for the form's block length, with a button
    that sets the largest length giving enough blocks."""
    adv = min_blocks_advice(ds.split, block_len)
    if adv is None:
        return
    st.warning(adv.message, icon=":material/view_module:")
    if adv.offered is not None:
        st.button(f"Use {adv.offered}-tick blocks", key="tr_use_offered", on_click=use_block_len,
                  args=(adv.offered,), icon=":material/view_module:")


def start(ds, values: dict[str, Any]) -> None:
    """Validate the submitted settings against the dataset and start a run; errors go in the page."""
    session.TRAIN_SETTINGS.set({**values, "data_id": session.data_id()})
    try:
        ds.check_blocks(int(values["block_len"]), MIN_BLOCKS)  # immediate, instead of from the job
        train_job.start_training(build_config(values), ds)
    except (ValueError, RuntimeError, OSError) as exc:
        st.error(f"Cannot start training: {exc}")


def live_panel() -> None:
    """Progress of this session's job (queue place, stage, step, speed, time left), its loss chart and Cancel;
    reruns the whole app when the job ends (``poll_training`` installs the model, the sidebar shows it)."""
    job, ref = train_job.training_job(), train_job.training_ref()
    if job is None or ref is None:
        return
    q = cache.job_queue()
    events, place = q.events(job.id), q.position(job.id)
    if not job.active:
        if not ref.get("ended"):
            ref["ended"] = True
            st.rerun(scope="app")
        return
    s = train_job.status(job, events, place)
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.progress(min(max(s.fraction, 0.0), 1.0), text=f"**{s.headline}** — {s.detail}")
    if c2.button("Cancel training", icon=":material/stop:", key="tr_cancel", width="stretch"):
        train_job.cancel(job.id)
        st.rerun(scope="app")
    if s.state == "queued":
        st.caption(f"This server trains {q.max_concurrent} job(s) at a time, in the order they were started; "
                   "the sidebar lists the jobs ahead of yours. The active model stays until yours is done.")
    collapse_banner(s.history, {}, live=True)
    st.plotly_chart(loss_figure(s.history, s.epochs[0], s.epochs[1]), width="stretch", key="live_loss")


def ended_message(job) -> None:
    """A finished job that did not produce this session's new model: why, in one line (never a traceback)."""
    ref = train_job.training_ref() or {}
    if job.state == "failed":
        st.error(f"Training failed: {job.message}", icon=":material/error:")
    elif job.state == "cancelled":
        st.warning("Training was cancelled; the previous model is still active.", icon=":material/stop:")
    elif ref.get("error"):
        st.error(ref["error"])


def model_summary(eng: ChronosDefragEngine) -> None:
    info, fs = session.model_info(), eng.fit_summary
    st.caption(f"{info.get('origin', 'model')} · data *{info.get('dataset', '?')}* · "
               f"fitted {session.describe_when(eng.meta.get('fitted_at'))} · block length "
               f"{eng.cfg.encoder.block_len}, latent dim {eng.cfg.encoder.latent_dim}, "
               f"{eng.cfg.encoder.input_dim} features")
    collapse_banner(eng.history, fs)
    if fs:
        m = st.columns(6)
        m[0].metric("Training blocks", f"{fs.get('n_blocks', len(eng.block_latents)):,}")
        m[1].metric("Timeline entropy", f"{fs.get('timeline_entropy', float('nan')):.3f}",
                    help="0 = pseudo-timeline is chronological; near 1 = thoroughly reordered.")
        m[2].metric("Path cost", f"{fs.get('path_cost_pseudo', float('nan')):.2f}",
                    help="Sum of cosine distances between consecutive blocks in pseudo-timeline order.")
        m[3].metric("Chronological", f"{fs.get('path_cost_chrono', float('nan')):.2f}",
                    help="The same sum with the blocks in time order.")
        ratio = fs.get("path_cost_ratio")
        m[4].metric("Cost ratio", f"{ratio:.2f}" if ratio is not None else "–",
                    help="Pseudo-timeline over chronological path cost; below 1, the defragmented order joins "
                         "more similar blocks than time does.")
        m[5].metric("Fit time", f"{fs.get('fit_seconds', float('nan')):.1f} s")
    if eng.history:
        st.plotly_chart(loss_figure(eng.history, *planned_epochs(eng.cfg, len(eng.block_latents))),
                        width="stretch", key="final_loss")
    else:
        st.info("This checkpoint carries no training history.")


def install_loaded(data: bytes, name: str) -> bool:
    """Load a checkpoint into this session; show the library's message on a bad file. True on success."""
    try:
        eng = ChronosDefragEngine.load(data)
    except (CheckpointError, ValueError, RuntimeError) as exc:
        st.error(f"Could not load **{name}**: {exc}")
        return False
    session.set_engine(eng, f"loaded from {name}", str(eng.meta.get("dataset", "?")))
    session.TRAIN_FLASH.set(f"Loaded **{name}** ({len(eng.block_latents):,} blocks).")
    return True


def save_model(eng: ChronosDefragEngine, name: str, overwrite: bool) -> None:
    """Save under MODEL_DIR: refuse a name that is not a plain file name, and an existing file unless the
    user ticked overwrite. The checkpoint is written to a temporary file first and then linked into place,
    which fails if another session created the name meanwhile, so no saved file is replaced silently."""
    plain = model_store.safe_filename(name)
    if plain not in (name.strip(), name.strip() + ".pt"):
        st.error(f"**{name}** is not a plain file name: use letters, digits, '-', '_' and '.', no folders "
                 f"(for example `{plain}`).")
        return
    path = os.path.join(model_store.MODEL_DIR, plain)
    if os.path.lexists(path) and not (overwrite and os.path.isfile(path) and not os.path.islink(path)):
        st.error(f"`{plain}` already exists on the server" + ("" if os.path.isfile(path) and
                 not os.path.islink(path) else " and is not a regular file") +
                 ": tick *Overwrite* to replace it, or choose another name.")
        return
    tmp = None
    try:
        os.makedirs(model_store.MODEL_DIR, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".saving-", suffix=".pt", dir=model_store.MODEL_DIR)
        os.close(fd)
        eng.save(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)          # atomic; FileExistsError if another session saved this name meanwhile
        st.success(f"Saved to `{path}`")
    except FileExistsError:
        st.error(f"`{plain}` was just saved by another session: tick *Overwrite* or choose another name.")
    except (OSError, RuntimeError, ValueError) as exc:
        st.error(f"Could not save to {path}: {exc}")
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def model_files(eng: ChronosDefragEngine | None) -> None:
    c1, c2, c3 = st.columns(3, gap="large")
    with c1:
        st.markdown("**Save on the server**")
        default = model_store.safe_filename(f"{session.model_info().get('dataset', 'model')}-"
                                        f"{(eng.meta.get('fitted_at', '') if eng else '')[:16]}")
        name = st.text_input("File name", default, key="tr_save_name", disabled=eng is None,
                             help=f"Saved under {model_store.MODEL_DIR}")
        plain = model_store.safe_filename(name)
        exists = plain in (name.strip(), name.strip() + ".pt") and os.path.lexists(
            os.path.join(model_store.MODEL_DIR, plain))
        overwrite = st.checkbox(f"Overwrite the existing `{plain}`", False, key="tr_overwrite",
                                help="Another session may have saved it") if exists else False
        if st.button("Save model", icon=":material/save:", disabled=eng is None, key="tr_save"):
            save_model(eng, name, overwrite)
    with c2:
        st.markdown("**Download**")
        if eng is not None and eng.fitted:
            st.download_button("Download checkpoint (.pt)", data=eng.to_bytes,
                               file_name=model_store.safe_filename(name), mime="application/octet-stream",
                               icon=":material/download:", on_click="ignore", key="tr_download")
            st.caption("Load it later here or with `ChronosDefragEngine.load(path)`.")
        else:
            st.caption("No model to download yet.")
    with c3:
        st.markdown("**Load a checkpoint**")
        up = st.file_uploader("Upload a .pt checkpoint", type=["pt", "pth", "ckpt"], key="tr_upload")
        saved = model_store.saved_models()
        choice = st.selectbox("…or one saved on the server", ["(none)"] + saved, key="tr_saved_choice",
                              disabled=not saved)
        if st.button("Load", icon=":material/upload_file:", key="tr_load", disabled=up is None and choice == "(none)"):
            if up is not None:
                ok = install_loaded(up.getvalue(), up.name)
            else:
                try:
                    with open(os.path.join(model_store.MODEL_DIR, choice), "rb") as f:
                        data = f.read()
                except OSError as exc:     # removed or replaced by another session since the list was made
                    st.error(f"Could not read **{choice}** on the server: {exc}")
                    return
                ok = install_loaded(data, choice)
            if ok:
                st.rerun()


# ---------------------------------------------------------------------------------------------- page
ds = session.dataset()
job = train_job.poll_training()
st.title("Train")
st.caption(f"Trains on the first {ds.split:,} ticks of *{ds.name}* ({ds.features.shape[1]} features); the last "
           f"{ds.features.shape[0] - ds.split:,} ticks stay held out for replay. Training runs as a job in its own "
           "process on this server's queue: you can keep using the app (and cancel from any page), and other "
           "browser sessions keep their own models.")

values, form_block_len = settings_form(ds)
block_warning(ds, form_block_len)
if values is not None:
    start(ds, values)
    job = train_job.training_job()

if job is not None and job.active:
    st.fragment(live_panel, run_every=LIVE_REFRESH_S)()
elif job is not None:
    ended_message(job)

flash = session.TRAIN_FLASH.get()
if flash:
    st.success(flash)
    session.TRAIN_FLASH.set(None)

st.subheader("Active model")
eng = session.engine()
if eng is None:
    st.info("No model yet: press **Train** above or load a checkpoint below.")
else:
    if (why := session.model_mismatch()) is not None:
        st.warning(f"This model does not fit the active data: {why}. Train a new one above or load a matching "
                   "checkpoint below.", icon=":material/warning:")
    model_summary(eng)

st.subheader("Model files")
model_files(eng)
