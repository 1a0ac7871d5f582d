"""AppTest of the Manifold and Timeline pages on the shipped sample (PCA; UMAP only through stand-ins)."""

import base64
import dataclasses
import json

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_pages.lib import cache
from chronoslib import projection, regimes
from chronoslib.metrics import agreement, timeline_merit

APP = "../app.py"


@pytest.fixture(autouse=True)
def _no_umap_thread(monkeypatch):
    # The page must never start the real 15-30 s numba warm-up inside the test process.
    monkeypatch.setenv("CHRONOS_UMAP_WARMUP", "0")


def _open(page: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["cd_mf_method"] = "PCA"
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _chart(at: AppTest, key: str) -> dict:
    for c in at.get("plotly_chart"):
        if c.proto.id.endswith(key):
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key}; have {[c.proto.id for c in at.get('plotly_chart')]}")


def _arr(v) -> np.ndarray:
    """A figure array from Plotly's JSON: a plain list or a typed array {"dtype", "bdata", "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = v.get("shape")
        return a.reshape([int(x) for x in str(shape).split(",")]) if shape else a
    return np.asarray(v)


def _view(at: AppTest):
    eng, ds = at.session_state["cd_engine"], at.session_state["cd_dataset"]
    return regimes.block_view(eng.block_latents, eng.block_starts, eng.cfg.encoder.block_len, eng.pseudo_timeline,
                              ds.features, ds.prices, ds.timestamps, ds.labels)


def test_manifold_page_shows_the_projection_regimes_and_their_agreement_with_truth():
    at = _open("app_pages/manifold.py")
    assert not at.error
    view = _view(at)
    n = len(view.starts)
    reg = regimes.cluster_regimes(view.latents, block_vol=view.table["vol"].to_numpy())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ARI vs truth"] == f"{agreement(reg.labels, view.truth)['ari']:.3f}"
    assert float(metrics["ARI vs truth"]) > 0.5                     # the shipped model recovers the regimes
    proj = _chart(at, "mf_projection")
    ids = sorted(int(i) for t in proj["data"] if t["name"].startswith("regime ")
                 for i in _arr(t["customdata"]).ravel())
    assert ids == list(range(n))                                     # every block once, carrying its index
    # Block 0 is inspected by default: its star and its 8 neighbours are overlaid.
    assert _arr(next(t for t in proj["data"] if t["name"] == "neighbours")["customdata"]).size == 8
    assert {t["name"] for t in proj["data"]} >= {f"regime {c}" for c in range(reg.k)}
    assert any(f"PCA 2-D of {n} blocks" in c.value for c in at.caption)
    assert {"mf_sweep", "mf_contingency", "mf_price", "mf_windows"} <= {c.proto.id.split("-")[-1]
                                                                          for c in at.get("plotly_chart")}


def test_lasso_selection_highlights_blocks_and_a_click_inspects_a_block():
    at = _open("app_pages/manifold.py")
    at.session_state["mf_projection"] = {"selection": {"points": [{"customdata": [3]}, {"customdata": [40]},
                                                                  {"customdata": [41]}]}}
    at.run()
    assert not at.exception
    assert at.session_state["cd_mf_selected"] == [3, 40, 41]
    price = _chart(at, "mf_price")
    hl = next(t for t in price["data"] if t["name"] == "selected blocks (3)")
    assert len([x for x in hl["x"] if x is not None]) == 3 * 64 + 3   # 64 ticks per block + one joining tick
    # A single clicked point becomes the inspected block; its neighbours come from the latents.
    at.session_state["mf_projection"] = {"selection": {"points": [{"customdata": [17]}]}}
    at.run()
    assert at.session_state["cd_mf_focus"] == 17 and at.session_state["cd_mf_selected"] == [3, 40, 41]
    table = at.dataframe[-1].value
    nbrs, _ = regimes.nearest_blocks(_view(at).latents, 17, 8)
    assert table["block"].tolist() == [17] + nbrs.tolist()
    at.button(key="mf_clear").click().run()
    assert at.session_state["cd_mf_selected"] == []


def test_fixed_number_of_regimes_is_shared_with_the_timeline_page():
    at = _open("app_pages/manifold.py")
    at.toggle[0].set_value(False).run()
    next(w for w in at.number_input if w.label == "K").set_value(4).run()
    assert not at.exception and at.session_state["cd_regime_k"] == 4
    assert any("4 regimes" in m.value for m in at.markdown)
    at.switch_page("app_pages/timeline.py").run()
    assert not at.exception
    at.radio[0].set_value("regime cluster").run()
    assert any("K=4 (fixed)" in c.value for c in at.caption)
    barcode = next(t for t in _chart(at, "tl_timeline")["data"] if t["type"] == "heatmap")   # one cell a block
    cells = _arr(barcode["z"]).astype(float).ravel()
    assert len(set(cells[np.isfinite(cells)].tolist())) == 4


def test_umap_choice_shows_pca_until_the_warm_up_is_ready(monkeypatch):
    class Stub:
        state, error = "running", ""
        ready = property(lambda self: self.state == "ready")

        def elapsed(self):
            return 12.0

    stub = Stub()
    monkeypatch.setattr(cache, "umap_warmup", lambda start=True: stub)
    st.cache_data.clear()     # no projection computed by an earlier test
    at = _open("app_pages/manifold.py", cd_mf_method="UMAP")
    assert any("UMAP is compiling" in i.value for i in at.info)
    assert any(c.value.startswith("PCA 2-D") for c in at.caption)
    # Ready: the page computes UMAP (a stand-in here) and shows it.
    stub.state = "ready"
    monkeypatch.setattr(projection, "umap_embed", lambda z, d, *a, **k: projection.pca(z, d) * 2)
    at.run()
    assert not at.exception and not at.info
    assert any(c.value.startswith("UMAP 2-D") for c in at.caption)


def test_live_confidence_colouring_appears_after_a_replay():
    records = [{"tick": 9000 + i, "regime_confidence": 0.5 + 0.01 * i, "neighbour_indices": [i, i + 1],
                "neighbour_weights": [0.6, 0.4]} for i in range(10)]
    at = _open("app_pages/manifold.py", cd_replay_records=records)
    assert "live confidence" not in at.selectbox[0].options      # records of no known model are not drawn
    from app_pages.lib import session as sess
    ds = at.session_state[sess.DATASET.key]
    at.session_state["cd_replay_tag"] = {"model": sess.model_fingerprint(at.session_state[sess.ENGINE.key]),
                                         "data": sess.data_fingerprint(ds.features, ds.name, ds.split)}  # this model
    at.run()
    at.selectbox[0].set_value("live confidence").run()
    assert not at.exception
    data = _chart(at, "mf_projection")["data"]
    names = [t["name"] for t in data]
    assert "no value" in names and "live windows" in names
    live = next(t for t in data if t["name"] == "live windows")
    assert len(_arr(live["x"])) == 10


def test_timeline_page_shows_the_figures_of_merit_of_both_orders():
    at = _open("app_pages/timeline.py")
    assert not at.error
    view = _view(at)
    m = timeline_merit(view.latents, view.order, view.truth)
    metrics = {x.label: x for x in at.metric}
    assert metrics["Path cost (pseudo)"].value == f"{m['path_cost_pseudo']:.1f}"
    assert metrics["Timeline entropy"].value == f"{m['timeline_entropy']:.3f}"
    assert metrics["Mean run (pseudo)"].value == f"{m['run_pseudo']:.1f} blocks"
    assert m["run_pseudo"] > 1.5 * m["run_chrono"] and m["purity_pseudo"] > m["purity_chrono"]
    assert {"tl_timeline", "tl_similarity", "tl_walk"} <= {c.proto.id.split("-")[-1] for c in at.get("plotly_chart")}
    at.radio[1].set_value("stacked").run()
    assert not at.exception and at.session_state["cd_tl_layout"] == "stacked"


def test_timeline_page_offers_the_ordering_method_and_compares_every_order_against_the_lower_bound():
    from chronoslib.metrics import ordering_table
    from chronoslib.timeline import build_pseudo_timeline

    at = _open("app_pages/timeline.py")
    view = _view(at)
    rows = {r["order"]: r for r in ordering_table(view.latents, {
        m: build_pseudo_timeline(view.latents, method=m) for m in ("greedy", "refined", "regime")}, view.truth)}
    table = next(d.value for d in at.dataframe if "optimality gap" in d.value.columns)
    assert list(table["order"]) == ["time order", "as trained", "greedy", "refined", "regime"]
    got = table.set_index("order")
    for m, r in rows.items():
        assert got.loc[m, "path cost"] == pytest.approx(r["cost"])
        assert got.loc[m, "optimality gap"] == f"{r['gap']:.1%}"
        assert got.loc[m, "truth switches"] == r["switches"]
        assert got.loc[m, "mean run (blocks)"] == pytest.approx(r["mean_run"])
    assert rows["refined"]["cost"] <= rows["greedy"]["cost"] and rows["greedy"]["gap"] > 0
    fig = _chart(at, "tl_orderings")
    assert [t["type"] for t in fig["data"]] == ["bar", "bar"]
    box = next(b for b in at.selectbox if b.label == "Ordering")
    box.set_value("regime").run()
    assert not at.exception and at.session_state["cd_tl_ordering"] == "regime"
    m = timeline_merit(view.latents, build_pseudo_timeline(view.latents, method="regime"), view.truth)
    assert {x.label: x for x in at.metric}["Path cost (pseudo)"].value == f"{m['path_cost_pseudo']:.1f}"


def test_pages_explain_a_model_that_does_not_fit_the_data_instead_of_crashing():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    ds = at.session_state["cd_dataset"]
    short = dataclasses.replace(ds, features=ds.features[:1000], prices=ds.prices[:1000],
                                timestamps=ds.timestamps[:1000], labels=ds.labels[:1000], split=800)
    at.session_state["cd_dataset"] = short
    for page in ("app_pages/manifold.py", "app_pages/timeline.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert any("only 1000 ticks" in e.value for e in at.error)


def test_pages_ask_for_a_model_when_there_is_none():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.session_state["cd_engine"] = None
    for page in ("app_pages/manifold.py", "app_pages/timeline.py"):
        at.switch_page(page).run()
        assert not at.exception and any("No model yet" in i.value for i in at.info)
        assert not np.any([c.proto.id for c in at.get("plotly_chart")])


def test_three_d_projection_uses_3d_traces_and_keeps_block_inspection():
    at = _open("app_pages/manifold.py")
    at.radio[1].set_value(3).run()
    assert not at.exception and at.session_state["cd_mf_dim"] == 3
    data = _chart(at, "mf_projection")["data"]
    assert {t["type"] for t in data} == {"scatter3d"}
    assert any(c.value.startswith("PCA 3-D") for c in at.caption)
    next(w for w in at.number_input if w.label == "Block").set_value(5).run()
    assert at.session_state["cd_mf_focus"] == 5 and at.dataframe[-1].value["block"].iloc[0] == 5
