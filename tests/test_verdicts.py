"""Evidence verdicts: sentences follow the sign of the interval (paired per seed for regimes), groups get a
tone, the headline row carries the summary numbers."""

from chronoslib.metrics import summarise
from chronoslib.verdicts import (
    fmt_ci,
    group_tone,
    headline,
    interval_sign,
    reduction_verdict,
    regime_verdict,
    verdict_groups,
    verdicts,
)
from tests.evidence_support import ERR, RHO, result


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
    res = result(ERR, [50, 43, 42], [-1, 2, 1], rho=RHO, persistence=0.05)
    v = verdicts(res)
    assert sum("versus chronological order" in x for x in v) == 2
    assert sum("no clear benefit over random" in x for x in v) == 2
    assert any(x.startswith("Caution: no trained predictor beat the naive persistence") for x in v)
    assert sum("Spearman" in x for x in v) == 2
    assert any("the latents recover the regimes better" in x for x in v)
    v2 = verdicts(result(ERR, [50, 43, 42], [1, 2, 1], rho=None, regimes=False, persistence=0.9))
    assert not any("Caution" in x or "Spearman" in x or "Regime" in x for x in v2)


def test_regime_verdict_uses_the_paired_difference_per_seed():
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
    assert "No ground-truth labels" in regime_verdict({}, "heldout")


def test_verdict_groups_tones_and_headline():
    res = result(ERR, [50, 43, 42], [-1, 2, 1], rho=RHO, persistence=0.9)
    g = verdict_groups(res)
    assert list(g) == ["error", "alpha", "regimes"] and verdicts(res) == [*g["error"], *g["alpha"], *g["regimes"]]
    assert group_tone("error", g["error"]) == "good"
    assert group_tone("alpha", g["alpha"]) == "good"          # pseudo rho 0.25 with a tight interval
    assert group_tone("regimes", g["regimes"]) == "good"
    bad = verdict_groups(result(ERR, [-50, -43, -42], [-1, 2, 1], persistence=0.9, regimes=False))
    assert group_tone("error", bad["error"]) == "bad" and "alpha" not in bad
    assert group_tone("error", ["reduced held-out error", "increased held-out error"]) == "mixed"
    assert group_tone("error", ["no clear benefit"]) == "neutral"
    h = {label: value for label, value, _ in headline(res)}
    assert h["Error cut · deployed"].startswith("45.0 ± ")
    assert h["Held-out ARI latent / base"] == "0.92 / 0.32" and h["Alpha rho (as deployed)"].startswith("0.25 ± ")
