"""Data page: pick a sample or upload a CSV / Parquet, choose columns and feature engineering, inspect the result.

The "table in hand" (a sample's raw table or an uploaded one) is kept in session state; the column choices
turn it into the active ``Dataset`` through ``chronoslib.data.build_dataset``. Every error of the data layer
(empty file, wrong delimiter, NaN cells, unsorted timestamps ...) is shown as a message, never a traceback.
Below: the active dataset's figures, notes, a price / feature chart with the held-out span shaded and previews.
Everything derived from a table or a dataset (column kinds, statistics, advice, the chart) is computed once per
content key (the table token: sha1 of the upload's bytes; ``dataset_key``: sha1 of the dataset's arrays) through
``app_pages.lib.cache``, so a rerun or a later visit on a 1M-row table recomputes none of it.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.lib import cache, session
from chronoslib.advice import WHY_TRENDING, Recipe, default_recipe, min_blocks_advice, stationarity, suggest_block_len
from chronoslib.columns import detect_price_columns, numeric_columns
from chronoslib.data import (
    SAMPLE_DIR,
    SAMPLE_RECIPES,
    SAMPLES,
    Dataset,
    build_dataset,
    load_sample,
    with_chart_price,
)
from chronoslib.features import TRANSFORMS
from chronoslib.plots.data import series_figure
from chronoslib.readers import read_table

NONE, AUTO = "(none)", "(detect)"
UPLOAD_TYPES = ["csv", "tsv", "txt", "gz", "parquet", "pq"]
PREVIEW_ROWS = 500
CHART_POINTS = 2000   # per trace: two per pixel of a wide chart; the browser draws and parses half the default


# ---------------------------------------------------------------------------------------------- table in hand
def table() -> dict[str, Any] | None:
    """{'name', 'df', 'token', 'recipe'}: the raw table the column controls work on."""
    return session.DATA_TABLE.get()


def dataset_key(ds: Dataset) -> str:
    """sha1 of a dataset's name, split, feature names and arrays, computed once per Dataset object (~0.1 s at
    1M rows) and remembered in the session next to it."""
    memo = st.session_state.get("_dt_dataset_key")
    if memo is None or memo[0] is not ds:
        h = hashlib.sha1(f"{ds.name}:{ds.split}:{ds.feature_names}:{ds.row_offset}:{ds.config}".encode())
        for a in (ds.features, ds.timestamps, ds.labels, ds.prices):
            h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
        memo = (ds, h.hexdigest())
        st.session_state["_dt_dataset_key"] = memo
    return memo[1]


def set_table(name: str, df: pd.DataFrame, recipe: dict[str, Any], kind: str, digest: str) -> None:
    """Make ``df`` the table in hand; ``digest`` names its content (sha1 of the file's bytes, or the dataset's
    key), so the token, the widgets keyed on it and the cached per-table work follow the content."""
    token = hashlib.sha1(f"{kind}:{name}:{df.shape}:{digest}".encode()).hexdigest()[:10]
    session.DATA_TABLE.set({"name": name, "df": df, "token": token, "recipe": recipe, "kind": kind})
    if kind == "sample":  # a sample is applied as it is loaded; an upload waits for "Use this data"
        session.DATA_APPLIED.set(token)


def recipe_of(ds: Dataset) -> dict[str, Any]:
    """The build_dataset arguments that made ``ds`` (from its recorded DataConfig)."""
    c = ds.config
    n = len(ds.features)
    return {"timestamp_col": c.timestamp_col, "label_col": c.label_col, "feature_cols": list(c.features),
            "transforms": list(c.transforms), "price_col": c.price_col, "high_col": c.high_col,
            "low_col": c.low_col, "volume_col": c.volume_col, "vol_window": c.vol_window,
            "nan_policy": c.nan_policy, "holdout": round(1 - ds.split / n, 2) if n else 0.2, "sort": False}


def detected_recipe(r: Recipe) -> dict[str, Any]:
    """First choices for a fresh upload from ``advice.default_recipe`` (market data gets stationary engineered
    features, never a price level), with the page's own settings."""
    return {**r.build_args(), "price_col": r.price_col, "high_col": r.high_col, "low_col": r.low_col,
            "volume_col": r.volume_col, "nan_policy": "refuse", "holdout": 0.2, "sort": False}


def trend_warning(named: dict[str, np.ndarray], what: str) -> None:
    """A warning naming the features among ``named`` ({name: values}) that trend (``advice.stationarity``)."""
    verdicts = {n: stationarity(v) for n, v in named.items()}
    bad = [n for n, s in verdicts.items() if s.trending]
    if bad:
        st.warning(f"{what} {', '.join(f'**{n}** ({verdicts[n].share:.0%})' for n in bad)} trend: that share of "
                   f"each one's variance lies between eighths of the series. {WHY_TRENDING}",
                   icon=":material/trending_up:")


def handle_upload(uploaded: Any) -> bool:
    """Read an uploaded file into the table in hand; show the data layer's message on failure."""
    try:
        df = read_table(uploaded, uploaded.name)
    except (ValueError, RuntimeError, OSError) as exc:
        st.error(f"Upload refused — {exc}", icon=":material/error:")
        return False
    rec = default_recipe(df)
    set_table(uploaded.name, df, detected_recipe(rec), "upload", hashlib.sha1(uploaded.getvalue()).hexdigest())
    table()["advice"] = rec.reason      # why the controls start where they do
    session.DATA_UPLOAD_ID.set(uploaded.file_id)
    # the file's own bytes: a training job reads them with the same reader, so it builds the same dataset
    session.DATA_UPLOAD_SOURCE.set({"token": table()["token"], "name": uploaded.name, "bytes": uploaded.getvalue()})
    return True


def activate_sample(name: str, holdout: float) -> None:
    try:
        ds = load_sample(name, holdout=holdout)
    except (ValueError, RuntimeError, OSError) as exc:
        st.error(f"Could not load the sample {name!r}: {exc}")
        return
    session.set_dataset(ds)
    set_table(name, ds.frame, recipe_of(ds), "sample", dataset_key(ds))
    session.DATA_FLASH.set(f"Loaded the sample **{name}**.")
    st.rerun()


# ---------------------------------------------------------------------------------------------- column controls
def _pick(label: str, options: list[str], value: str, key: str, **kw: Any) -> str:
    idx = options.index(value) if value in options else 0
    return st.selectbox(label, options, index=idx, key=key, **kw)


def column_controls(t: dict[str, Any]) -> dict[str, Any]:
    """Widgets for the build_dataset arguments; keys carry the table's token so a new table resets them."""
    df, r, k = t["df"], t["recipe"], t["token"]
    cols = [str(c) for c in df.columns]
    nums, found = cache.computed(f"columns:{k}", lambda: (numeric_columns(df), detect_price_columns(df)))
    if t.get("advice"):
        st.caption(f"Preselected: {t['advice']}.")
    c1, c2, c3 = st.columns([1, 1.4, 1.2], gap="medium")
    with c1:
        st.markdown("**Time & labels**")
        ts = _pick("Timestamp column", [NONE] + cols, r["timestamp_col"] or NONE, f"dt_ts_{k}",
                   help="Parsed as dates or numbers; must increase (or tick *sort* below).")
        lab = _pick("Ground-truth label column", [NONE] + cols, r["label_col"] or NONE, f"dt_label_{k}",
                    help="Optional regimes to compare with; never a feature.")
        sort = st.checkbox("Sort rows by time if they are out of order", bool(r.get("sort")), key=f"dt_sort_{k}")
        holdout = st.slider("Held out for replay (last part of the series)", 0, 50, int(round(r["holdout"] * 100)),
                            step=5, format="%d%%", key=f"dt_holdout_{k}") / 100
        nan = st.radio("Missing / bad cells", ["refuse", "ffill"], index=0 if r["nan_policy"] == "refuse" else 1,
                       key=f"dt_nan_{k}", horizontal=True,
                       format_func=lambda p: "refuse (report them)" if p == "refuse" else "forward-fill")
    taken = {ts, lab}
    with c2:
        st.markdown("**Features**")
        feat_opts = [c for c in nums if c not in taken]
        feats = st.multiselect("Raw feature columns (passed through unchanged)", feat_opts,
                               [c for c in r["feature_cols"] if c in feat_opts], key=f"dt_feats_{k}")
        trans = st.multiselect("Feature engineering (computed from prices, causal)", list(TRANSFORMS),
                               [x for x in r["transforms"] if x in TRANSFORMS], key=f"dt_trans_{k}",
                               format_func=lambda x: x.replace("_", " "),
                               help="\n".join(f"- **{n}**: {d}" for n, d in TRANSFORMS.items()))
    with c3:
        st.markdown("**Price sources**")
        src = [AUTO] + [c for c in nums if c not in taken]
        roles = {}
        for role in ("price", "high", "low", "volume"):
            cur = r.get(f"{role}_col") or AUTO
            hint = f"detected: {found[role]}" if role in found else "none detected"
            roles[role] = _pick(f"{role.capitalize()} column", src, cur, f"dt_{role}_{k}", help=hint)
        vol_window = st.number_input("Rolling window (ticks) of rolling vol and rel volume", 2, 10_000,
                                     int(r["vol_window"]), key=f"dt_volw_{k}")
    if session.DATA_APPLIED.get() != k:   # choices not yet used: check the chosen raw columns of the table
        trend_warning({c: df[c].to_numpy(np.float64, na_value=np.nan) for c in feats
                       if pd.api.types.is_numeric_dtype(df[c])}, "Raw feature column(s)")
    return {"timestamp_col": "" if ts == NONE else ts, "label_col": "" if lab == NONE else lab,
            "feature_cols": feats, "transforms": trans, "nan_policy": nan, "holdout": holdout, "sort": sort,
            "vol_window": int(vol_window), **{f"{ro}_col": ("" if v == AUTO else v) for ro, v in roles.items()}}


def apply(t: dict[str, Any], choice: dict[str, Any]) -> None:
    """Build the Dataset from the table in hand; on success it becomes the session's active dataset."""
    args = dict(choice)
    for role in ("price", "high", "low", "volume"):
        args[f"{role}_col"] = args[f"{role}_col"] or None     # None: detect by name when a transform needs it
    try:
        ds = with_chart_price(build_dataset(t["df"], t["name"], **args))  # a price-named column is charted
    except (ValueError, RuntimeError) as exc:
        st.error(f"**{t['name']}** cannot be used as it is: {exc}")
        return
    session.set_dataset(ds)
    t["recipe"] = recipe_of(ds) | {"sort": choice["sort"]}
    session.DATA_APPLIED.set(t["token"])
    session.DATA_FLASH.set(f"**{ds.name}** is now the active dataset: {len(ds.features):,} ticks × "
                           f"{ds.features.shape[1]} features.")
    st.rerun()


# ---------------------------------------------------------------------------------------------- active dataset view
def _when(v: Any) -> str:
    """A timestamp as people write it (no nanoseconds; no time of day for daily data)."""
    if isinstance(v, (np.datetime64, pd.Timestamp)):
        ts = pd.Timestamp(v)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00")
    return f"{v:,}" if isinstance(v, (int, np.integer)) else str(v)


def dataset_overview(ds: Dataset) -> None:
    t, f = ds.features.shape
    m = st.columns(5)
    m[0].metric("Ticks", f"{t:,}")
    m[1].metric("Features", f"{f}")
    m[2].metric("Training ticks", f"{ds.split:,}")
    m[3].metric("Held out", f"{t - ds.split:,}")
    if ds.labels is not None:
        k = cache.computed(f"regimes:{dataset_key(ds)}", lambda: len(np.unique(ds.labels[ds.labels >= 0])))
        m[4].metric("Ground-truth regimes", f"{k:,}")
    else:
        m[4].metric("Ground-truth regimes", "none")
    if ds.timestamps is not None and t:
        ts = ds.timestamps
        span = f"From {_when(ts[0])} to {_when(ts[-1])}"
        st.caption(f"{span}; held out from {_when(ts[ds.split])} on." if ds.split < t else f"{span}; nothing held out.")
    if ds.notes:
        st.info("\n".join(f"- {n}" for n in ds.notes), icon=":material/info:")
    trend_warning({n: ds.train[:, j] for j, n in enumerate(ds.feature_names)}, "Model feature(s)")
    block_advice(ds)
    eng = session.engine()
    if eng is not None and (why := session.model_mismatch()) is not None:
        st.warning(f"The active model cannot run on this data: {why}. Train a new model on the Train page or "
                   "load a matching checkpoint there.", icon=":material/warning:")
    elif eng is not None and session.model_info().get("dataset") not in (None, "?", ds.name):
        st.caption(f"The active model was trained on *{session.model_info().get('dataset')}*; train on this "
                   "dataset on the Train page to compare like with like.")


def block_advice(ds: Dataset) -> None:
    """The block length the timestamps suggest and, when the training span holds too few such blocks, the
    length that gives enough."""
    sug = cache.computed(f"block_len:{dataset_key(ds)}", lambda: suggest_block_len(ds.timestamps))
    if not sug.period:
        where = ""
    elif ds.name in SAMPLES:    # the Train page keeps the configuration's length, the shipped model's
        where = " The Train page keeps the shipped model's block length for a sample."
    else:
        where = " The Train page starts from it."
    st.caption(f"Suggested block length: **{sug.block_len} ticks**, {sug.reason}.{where}")
    if (adv := min_blocks_advice(ds.split, sug.block_len)) is not None:
        st.warning(adv.message, icon=":material/view_module:")


def dataset_chart(ds: Dataset) -> None:
    names = list(ds.feature_names)
    default = names[: min(3, len(names))]
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    # Keyed by the dataset, so a new dataset starts from its own first features instead of an empty choice.
    key = "dt_chart_feats_" + hashlib.sha1(f"{ds.name}:{names}".encode()).hexdigest()[:10]
    shown = c1.multiselect("Features in the chart", names, default, key=key)
    colour = ds.labels is not None and ds.prices is not None and \
        c2.checkbox("Colour the price by ground-truth regime", True, key="dt_chart_labels")
    cols: dict[str, np.ndarray] = {}
    if ds.prices is not None:
        cols["price"] = ds.prices
    for n in shown:
        cols[n] = ds.features[:, names.index(n)]
    if not cols:
        st.info("Pick at least one feature to draw.")
        return
    fig = cache.figure(f"series:{dataset_key(ds)}:{list(cols)}:{colour}", lambda: series_figure(
        ds.timestamps, cols, ds.split, price_name="price" if ds.prices is not None else None,
        labels=ds.labels if colour else None, max_points=CHART_POINTS))
    st.plotly_chart(fig, width="stretch", key="dt_series")


def feature_stats(ds: Dataset) -> pd.DataFrame:
    """Mean, std, min, median and max of every feature over the training span (one row per feature)."""
    if not len(ds.train):
        return pd.DataFrame()
    # (F, T): one contiguous row per feature; medians down the strided columns of (T, F) took 0.7 s at 1M rows
    x = np.ascontiguousarray(ds.train.T, dtype=np.float64)
    return pd.DataFrame({"feature": ds.feature_names, "mean": x.mean(1), "std": x.std(1), "min": x.min(1),
                         "median": np.median(x, 1), "max": x.max(1)})


def dataset_tables(ds: Dataset) -> None:
    tab1, tab2, tab3 = st.tabs(["Model features", "Feature statistics (training span)", "Raw table"])
    with tab1:
        feat = pd.DataFrame(ds.features[:PREVIEW_ROWS], columns=ds.feature_names)
        if ds.timestamps is not None:
            feat.insert(0, "time", [_when(v) for v in ds.timestamps[:PREVIEW_ROWS]])
        st.dataframe(feat, height=280, width="stretch", hide_index=True)
        st.caption(f"First {min(PREVIEW_ROWS, len(ds.features)):,} of {len(ds.features):,} rows, before "
                   "normalisation (the engine fits it on the training span).")
    with tab2:
        st.dataframe(cache.computed(f"stats:{dataset_key(ds)}", lambda: feature_stats(ds)), width="stretch",
                     hide_index=True)
    with tab3:
        st.dataframe(ds.frame.head(PREVIEW_ROWS), height=280, width="stretch")
        st.caption(f"First {min(PREVIEW_ROWS, len(ds.frame)):,} of {len(ds.frame):,} rows as loaded.")


# ---------------------------------------------------------------------------------------------- page
ds = session.dataset()
if table() is None:  # first visit: the table in hand is the active dataset's own
    set_table(ds.name, ds.frame, recipe_of(ds), "sample" if ds.name in SAMPLES else "upload", dataset_key(ds))

st.title("Data")
st.caption("Start from a shipped sample or bring a CSV / Parquet file: one row per tick, a timestamp column, "
           "numeric feature columns or prices to engineer features from. The last part of the series is held out "
           "for live replay and never used for training.")

st.subheader("Source")
kinds = ["Sample dataset", "Upload a file"]
kind = st.radio("Source", kinds, index=int(table()["kind"] == "upload"), key="dt_source", horizontal=True,
                label_visibility="collapsed")
if kind == "Sample dataset":
    names = list(SAMPLES)
    s1, s2, s3 = st.columns([2.2, 1.2, 0.8], vertical_alignment="bottom", gap="medium")
    pick = s1.selectbox("Sample", names, names.index(ds.name) if ds.name in names else 0, key="dt_sample")
    hold = s2.slider("Held out", 0, 50, 20, step=5, format="%d%%", key="dt_sample_holdout") / 100
    if s3.button("Load sample", type="primary", icon=":material/dataset:", key="dt_load_sample", width="stretch"):
        activate_sample(pick, hold)
    info = SAMPLE_RECIPES.get(SAMPLES[pick], {})
    st.caption(f"`sample_data/{SAMPLES[pick]}` · "
               + (f"features: {', '.join(info['transforms'])} of the price" if info.get("transforms")
                  else "ready-made features with ground-truth regime labels"))
else:
    up = st.file_uploader("CSV or Parquet, one row per tick", type=UPLOAD_TYPES, key="dt_upload",
                          help="Comma, semicolon, tab or '|' separated; .gz is fine. Larger than the upload "
                               "limit: use `python -m chronoslib train FILE`.")
    if up is not None and session.DATA_UPLOAD_ID.get() != up.file_id:
        handle_upload(up)

t = table()
pending = session.DATA_APPLIED.get() != t["token"]  # a new upload waits for its column choices
with st.expander(f"Columns & feature engineering of *{t['name']}*"
                 + (" — choose, then press **Use this data**" if pending else ""), expanded=pending,
                 icon=":material/tune:"):
    st.caption(f"{len(t['df']):,} rows × {t['df'].shape[1]} columns. Choose how the table becomes model features.")
    choice = column_controls(t)
    if st.button("Use this data", type="primary", icon=":material/check:", key="dt_apply"):
        apply(t, choice)
    if pending:   # once applied, the "Raw table" tab below shows the same rows
        st.markdown(f"**Raw table** (first {min(PREVIEW_ROWS, len(t['df'])):,} rows)")
        st.dataframe(t["df"].head(PREVIEW_ROWS), height=240, width="stretch")

flash = session.DATA_FLASH.get()
if flash:
    st.success(flash)
    session.DATA_FLASH.set(None)

st.subheader(f"Active dataset: {ds.name}")
dataset_overview(ds)
dataset_chart(ds)
dataset_tables(ds)
st.caption(f"Samples live in `{os.path.relpath(SAMPLE_DIR)}`; see its README for sources and licences.")
