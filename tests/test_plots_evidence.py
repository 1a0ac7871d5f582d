"""Evidence figures and verdicts: bars carry the summary means and intervals, seeds are drawn, verdict sentences
follow the sign of the interval, and missing prices / labels are said rather than drawn empty."""

import math

import pytest

from chronoslib.experiments import summarise
from chronoslib.plots_evidence import (
    BAD,
    GOOD,
    NEUTRAL,
    error_figure,
    fmt_ci,
    group_tone,
    headline,
    interval_sign,
    reduction_figure,
    reduction_verdict,
    regime_figure,
    regime_verdict,
    seed_table,
    spearman_figure,
    verdict_groups,
    verdicts,
)

ARMS, PROTOCOLS = ["pseudo", "chrono", "random"], ["chrono_context", "routed"]


def _result(err, red_chrono, red_random, rho=None, regimes=True, persistence=0.5):
    """A result dict shaped like ``run_evaluation``'s, built from per-seed lists."""
    n = len(err["pseudo"])
    per_seed = []
    for i in range(n):
        r = {"seed": i, "path_cost_ratio": 0.5,
             "error": {p: {a: err[a][i] for a in ARMS} for p in PROTOCOLS},
             "spearman": {p: {a: (rho[a][i] if rho else None) for a in ARMS} for p in PROTOCOLS},
             "baselines": {"persistence": persistence, "train_mean": 0.4}}
        if regimes:
            r["regimes"] = {s: {m: {"ari": 0.5 + 0.1 * i, "nmi": 0.6} for m in
                                ("latent_kmeans", "stats_kmeans", "stats_hmm")} for s in ("train", "heldout")}
        per_seed.append(r)
    summary = {
        "error": {p: {a: summarise(err[a]) for a in ARMS} for p in PROTOCOLS},
        "error_reduction_pct": {p: {"vs_chrono": summarise(red_chrono), "vs_random": summarise(red_random)}
                                for p in PROTOCOLS},
        "spearman": {p: {a: summarise(rho[a]) for a in ARMS} for p in PROTOCOLS} if rho else {},
        "baselines": {"persistence": summarise([persistence] * n), "train_mean": summarise([0.4] * n)},
    }
    if regimes:
        summary["regimes"] = {s: {"latent_kmeans": {"ari": summarise([0.9, 0.95, 0.92][:n]),
                                                    "nmi": summarise([0.9] * n)},
                                  "stats_kmeans": {"ari": summarise([0.3, 0.35, 0.32][:n]),
                                                   "nmi": summarise([0.4] * n)},
                                  "stats_hmm": {"ari": summarise([0.2, 0.25, 0.1][:n]), "nmi": summarise([0.3] * n)}}
                              for s in ("train", "heldout")}
    return {"arms": ARMS, "protocols": PROTOCOLS, "seeds": list(range(n)), "per_seed": per_seed, "summary": summary,
            "has_prices": rho is not None, "has_regimes": regimes, "n_regimes": 3}


ERR = {"pseudo": [0.1, 0.12, 0.11], "chrono": [0.2, 0.21, 0.19], "random": [0.3, 0.3, 0.31]}
RHO = {"pseudo": [0.2, 0.25, 0.3], "chrono": [0.0, 0.1, -0.1], "random": [-0.1, 0.0, 0.05]}


def test_interval_helpers():
    assert interval_sign(2.0, 1.0) == 1 and interval_sign(-2.0, 1.0) == -1 and interval_sign(0.5, 1.0) == 0
    assert interval_sign(1.0, None) == 0 and interval_sign(None, 1.0) == 0
    assert fmt_ci(0.12345, 0.01, 3) == "0.123 ± 0.010"
    assert "no interval" in fmt_ci(0.5, float("nan")) and fmt_ci(None, None) == "n/a"


def test_reduction_verdict_follows_the_interval():
    assert "reduced held-out error by 40.0 ± 5.0 %" in reduction_verdict({"mean": 40, "ci": 5, "n": 3}, "chrono",
                                                                         "routed")
    assert "increased held-out error by 10.0 ± 2.0 %" in reduction_verdict({"mean": -10, "ci": 2, "n": 3}, "chrono",
                                                                           "routed")
    no = reduction_verdict({"mean": 3, "ci": 8, "n": 3}, "random", "chrono_context")
    assert "showed no clear benefit over random order" in no and "includes zero" in no
    assert "no clear benefit" in reduction_verdict({"mean": 3, "ci": None, "n": 1}, "chrono", "routed")


def test_verdicts_cover_all_protocols_prices_regimes_and_flag_a_losing_predictor():
    res = _result(ERR, [50, 43, 42], [-1, 2, 1], rho=RHO, persistence=0.05)
    v = verdicts(res)
    assert sum("versus chronological order" in x for x in v) == 2
    assert sum("no clear benefit over random" in x for x in v) == 2
    assert any(x.startswith("Caution: no trained predictor beat the naive persistence") for x in v)
    assert sum("Spearman" in x for x in v) == 2
    assert any("the latents recover the regimes better" in x for x in v)
    v2 = verdicts(_result(ERR, [50, 43, 42], [1, 2, 1], rho=None, regimes=False, persistence=0.9))
    assert not any("Caution" in x or "Spearman" in x or "Regime" in x for x in v2)


def test_error_figure_bars_carry_means_and_intervals_with_seed_dots():
    res = _result(ERR, [50, 43, 42], [60, 61, 62])
    fig = error_figure(res)
    bars = [t for t in fig.data if t.type == "bar"]
    dots = [t for t in fig.data if t.type == "scatter"]
    assert [b.name for b in bars] == ["pseudo-timeline", "chronological", "random"]
    s = res["summary"]["error"]
    for b, arm in zip(bars, ARMS):
        assert list(b.y) == pytest.approx([s[p][arm]["mean"] for p in PROTOCOLS])
        assert list(b.error_y.array) == pytest.approx([s[p][arm]["ci"] for p in PROTOCOLS])
    assert all(len(d.y) == 2 * 3 for d in dots)            # 2 protocols x 3 seeds
    assert {round(float(sh.y0), 3) for sh in fig.layout.shapes} == {0.5, 0.4}   # persistence and train mean lines


def test_reduction_figure_colours_by_interval_sign():
    res = _result(ERR, [50, 43, 42], [-1, 2, 1])
    fig = reduction_figure(res)
    bar = fig.data[0]
    assert len(bar.x) == 4
    assert list(bar.marker.color) == [GOOD, NEUTRAL, GOOD, NEUTRAL]
    res_bad = _result(ERR, [-50, -43, -42], [-1, 2, 1])
    assert reduction_figure(res_bad).data[0].marker.color[0] == BAD
    m = res["summary"]["error_reduction_pct"]["routed"]["vs_chrono"]["mean"]
    assert bar.x[2] == pytest.approx(m) and math.isclose(m, 45.0)


def test_spearman_and_regime_figures_and_their_empty_states():
    res = _result(ERR, [50, 43, 42], [1, 2, 1], rho=RHO)
    sp = spearman_figure(res)
    assert [t.name for t in sp.data if t.type == "bar"] == ["pseudo-timeline", "chronological", "random"]
    assert list(sp.data[0].y) == pytest.approx([0.25, 0.25])
    rg = regime_figure(res)
    bars = [t for t in rg.data if t.type == "bar"]
    assert len(bars) == 6 and bars[0].y[0] == pytest.approx(res["summary"]["regimes"]["train"]["latent_kmeans"]
                                                               ["ari"]["mean"])
    assert sum(b.showlegend for b in bars) == 3
    empty = _result(ERR, [50, 43, 42], [1, 2, 1], rho=None, regimes=False)
    assert "no price column" in spearman_figure(empty).layout.annotations[0].text
    assert any("no ground-truth labels" in a.text for a in regime_figure(empty).layout.annotations)
    assert "No ground-truth labels" in regime_verdict({}, "heldout")


def test_regime_verdict_uses_the_paired_difference_per_seed():
    from chronoslib.experiments import summarise

    def regimes(lat, base):
        m = {"latent_kmeans": {"ari": summarise(lat)}, "stats_kmeans": {"ari": summarise(base)},
             "stats_hmm": {"ari": summarise([0.0] * len(lat))}}
        return {"heldout": m}

    # intervals overlap, but the paired difference is consistently negative
    v = regime_verdict(regimes([0.80, 0.90, 0.70, 0.85], [0.84, 0.93, 0.75, 0.88]), "heldout")
    assert "the simple baseline recovers the regimes better (paired difference -0.038 ± " in v
    v2 = regime_verdict(regimes([0.9, 0.95, 0.92], [0.3, 0.35, 0.32]), "heldout")
    assert "the latents recover the regimes better" in v2
    assert "no clear difference" in regime_verdict(regimes([0.5, 0.9, 0.6], [0.7, 0.6, 0.8]), "heldout")


def test_seed_table_has_one_row_per_seed():
    rows = seed_table(_result(ERR, [50, 43, 42], [1, 2, 1], rho=RHO))
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert rows[1]["MSE pseudo (routed)"] == 0.12 and rows[2]["rho chrono (routed)"] == -0.1


def test_verdict_groups_tones_and_headline():
    res = _result(ERR, [50, 43, 42], [-1, 2, 1], rho=RHO, persistence=0.9)
    g = verdict_groups(res)
    assert list(g) == ["error", "alpha", "regimes"] and verdicts(res) == [*g["error"], *g["alpha"], *g["regimes"]]
    assert group_tone("error", g["error"]) == "good"
    assert group_tone("alpha", g["alpha"]) == "good"          # pseudo rho 0.25 with a tight interval
    assert group_tone("regimes", g["regimes"]) == "good"
    bad = verdict_groups(_result(ERR, [-50, -43, -42], [-1, 2, 1], persistence=0.9, regimes=False))
    assert group_tone("error", bad["error"]) == "bad" and "alpha" not in bad
    assert group_tone("error", ["reduced held-out error", "increased held-out error"]) == "mixed"
    assert group_tone("error", ["no clear benefit"]) == "neutral"
    h = {label: value for label, value, _ in headline(res)}
    assert h["Error cut · deployed"].startswith("45.0 ± ")
    assert h["Held-out ARI latent / base"] == "0.92 / 0.32" and h["Alpha rho (as deployed)"].startswith("0.25 ± ")
