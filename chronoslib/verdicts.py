"""What the evidence experiment's result says, in words: verdict sentences, their tone, the headline numbers.

Pure functions of ``experiments.run_evaluation``'s result dict: ``verdicts`` / ``verdict_groups`` (one sentence
per comparison, following the sign of its 95 % interval), ``group_tone`` (good / bad / mixed / neutral, for the
box colour), ``headline`` (the row of metrics at the top of the Evidence page), and the labels every reader of the
result shares (``ARM_LABEL``, ``PROTOCOL_LABEL``, ``METHOD_LABEL``, ``fmt_ci``, ``interval_sign``). Used by the
Evidence page, the figures (``plots.evidence``) and the ``evaluate`` command. Knows nothing about Streamlit,
plotting or how the numbers were made.
"""

from __future__ import annotations

import math
from typing import Any

from .metrics import t_interval

ARM_LABEL = {"pseudo": "pseudo-timeline", "chrono": "chronological", "random": "random"}
PROTOCOL_LABEL = {"chrono_context": "chronological context", "routed": "as deployed (registry-routed)"}
METHOD_LABEL = {"latent_kmeans": "KMeans on latents", "stats_kmeans": "KMeans on block stats",
                "stats_hmm": "Gaussian HMM on block stats"}


def as_float(x: Any) -> float:
    """A result number as a float; None (a NaN in the JSON result) becomes NaN."""
    return float("nan") if x is None else float(x)

def fmt_ci(mean: Any, ci: Any, digits: int = 3, unit: str = "") -> str:
    """'0.123 ± 0.045' (or '0.123 (no interval)' when the half-width is unknown)."""
    m, h = as_float(mean), as_float(ci)
    if not math.isfinite(m):
        return "n/a"
    if not math.isfinite(h):
        return f"{m:.{digits}f}{unit} (no interval: one seed)"
    return f"{m:.{digits}f} ± {h:.{digits}f}{unit}"


def interval_sign(mean: Any, ci: Any) -> int:
    """+1 if the whole interval is above 0, -1 if below, 0 if it contains 0 or is unknown."""
    m, h = as_float(mean), as_float(ci)
    if not (math.isfinite(m) and math.isfinite(h)):
        return 0
    return 1 if m - h > 0 else -1 if m + h < 0 else 0


def reduction_verdict(stat: dict, versus: str, protocol: str) -> str:
    """One sentence on the error reduction (%) of pseudo-timeline training versus another order."""
    m, h, n = as_float(stat.get("mean")), as_float(stat.get("ci")), stat.get("n", 0)
    where = f"({PROTOCOL_LABEL.get(protocol, protocol)}, {n} seeds, 95 % interval)"
    other = ARM_LABEL.get(versus, versus)
    if not math.isfinite(m):
        return f"Defragmented vs {other} training could not be compared {where}."
    s = interval_sign(m, h)
    if s > 0:
        return (f"On this data, defragmented training reduced held-out error by {fmt_ci(m, h, 1)} % "
                f"versus {other} order {where}.")
    if s < 0:
        return (f"On this data, defragmented training increased held-out error by {fmt_ci(-m, h, 1)} % "
                f"versus {other} order {where}.")
    return (f"On this data, defragmented training showed no clear benefit over {other} order: error reduction "
            f"{fmt_ci(m, h, 1)} %, an interval that includes zero {where}.")


def spearman_verdict(stats: dict, protocol: str) -> str:
    """One sentence on the rank correlation of alpha with the next block's return, per arm."""
    parts = []
    for arm in ("pseudo", "chrono", "random"):
        st = stats.get(arm)
        if st:
            parts.append(f"{ARM_LABEL[arm]} {fmt_ci(st.get('mean'), st.get('ci'), 3)}")
    p = stats.get("pseudo", {})
    s = interval_sign(p.get("mean"), p.get("ci"))
    head = ("Alpha from defragmented training was positively rank-correlated with the next block's return"
            if s > 0 else "Alpha from defragmented training was negatively rank-correlated with the next "
            "block's return" if s < 0 else "Alpha showed no reliable rank correlation with the next block's return")
    return f"{head} ({PROTOCOL_LABEL.get(protocol, protocol)}; Spearman: " + ", ".join(parts) + ")."


def regime_verdict(regimes: dict, span: str = "heldout") -> str:
    """One sentence comparing latent clusters with the hand-made baselines on ARI."""
    r = regimes.get(span, {})
    if not r:
        return "No ground-truth labels: regime recovery was not scored."
    lat = r.get("latent_kmeans", {}).get("ari", {})
    lm, lh = as_float(lat.get("mean")), as_float(lat.get("ci"))
    best_name, best = None, None
    for meth in ("stats_kmeans", "stats_hmm"):
        st = r.get(meth, {}).get("ari", {})
        if math.isfinite(as_float(st.get("mean"))) and (best is None or as_float(st["mean"]) > as_float(best["mean"])):
            best_name, best = meth, st
    where = "held-out" if span == "heldout" else "training"
    txt = f"Regime recovery on {where} blocks: latent clusters ARI {fmt_ci(lm, lh)}"
    if best is None:
        return txt + "; the baselines could not be fitted."
    bm, bh = as_float(best["mean"]), as_float(best.get("ci"))
    txt += f" vs best baseline ({METHOD_LABEL[best_name]}) {fmt_ci(bm, bh)}"
    # Paired per seed (same seed, same blocks): interval of the ARI difference latents - baseline.
    diffs = [as_float(a) - as_float(b) for a, b in zip(lat.get("values", []), best.get("values", []))]
    dm, dh = t_interval([d for d in diffs if math.isfinite(d)])
    sign = interval_sign(dm, dh)
    if sign > 0:
        return txt + f": the latents recover the regimes better (paired difference {fmt_ci(dm, dh)})."
    if sign < 0:
        return txt + f": the simple baseline recovers the regimes better (paired difference {fmt_ci(dm, dh)})."
    return txt + f": no clear difference (paired difference {fmt_ci(dm, dh)})."


def verdict_groups(result: dict) -> dict[str, list[str]]:
    """Verdict sentences grouped as {"error": [...], "alpha": [...], "regimes": [...]} (empty groups omitted)."""
    s = result["summary"]
    protocols, arms = result.get("protocols", []), result.get("arms", [])
    err = []
    for p in protocols:
        err.append(reduction_verdict(s["error_reduction_pct"][p]["vs_chrono"], "chrono", p))
        err.append(reduction_verdict(s["error_reduction_pct"][p]["vs_random"], "random", p))
    pers = s.get("baselines", {}).get("persistence")
    if pers:
        best = min((s["error"][p][a]["mean"] for p in protocols for a in arms
                    if s["error"][p][a]["mean"] is not None), default=None)
        if best is not None and pers["mean"] is not None and best >= pers["mean"]:
            err.append(f"Caution: no trained predictor beat the naive persistence forecast (next latent = current "
                       f"latent, error {fmt_ci(pers['mean'], pers['ci'])}).")
    out = {"error": err}
    if result.get("has_prices"):
        out["alpha"] = [spearman_verdict(s["spearman"][p], p) for p in protocols]
    if result.get("has_regimes"):
        out["regimes"] = [regime_verdict(s["regimes"], "heldout"), regime_verdict(s["regimes"], "train")]
    return out


def verdicts(result: dict) -> list[str]:
    """All verdict sentences for a result, most important first."""
    return [v for group in verdict_groups(result).values() for v in group]


def group_tone(group: str, sentences: list[str]) -> str:
    """"good" | "bad" | "mixed" | "neutral" for a verdict group (the page picks the box colour from it)."""
    good_words = {"error": "reduced held-out error", "alpha": "positively rank-correlated",
                  "regimes": "the latents recover the regimes better"}
    bad_words = {"error": ("increased held-out error", "Caution"), "alpha": ("negatively rank-correlated",),
                 "regimes": ("the simple baseline recovers",)}
    good = any(good_words.get(group, "\0") in v for v in sentences)
    bad = any(w in v for v in sentences for w in bad_words.get(group, ()))
    return "mixed" if good and bad else "good" if good else "bad" if bad else "neutral"


def headline(result: dict) -> list[tuple[str, str, str]]:
    """(label, value, help) triples for a row of metrics at the top of the page."""
    s = result["summary"]
    out = []
    short = {"chrono_context": "context", "routed": "deployed"}
    for p in result.get("protocols", []):
        st = s["error_reduction_pct"][p]["vs_chrono"]
        out.append((f"Error cut · {short.get(p, p)}",
                    fmt_ci(st.get("mean"), st.get("ci"), 1, " %").replace(" (no interval: one seed)", ""),
                    f"Held-out error reduction of pseudo-timeline over chronological training, "
                    f"{PROTOCOL_LABEL.get(p, p)}, paired per seed, 95 % interval"))
    if result.get("has_prices"):
        st = s["spearman"]["routed"]["pseudo"]
        out.append(("Alpha rho (as deployed)",
                    fmt_ci(st.get("mean"), st.get("ci"), 2).replace(" (no interval: one seed)", ""),
                    "Spearman rank correlation of the pseudo-timeline predictor's alpha with the next block's "
                    "log return, 95 % interval over seeds"))
    if result.get("has_regimes"):
        r = s["regimes"]["heldout"]
        lat = as_float(r["latent_kmeans"]["ari"]["mean"])
        base = max((as_float(r[m]["ari"]["mean"]) for m in ("stats_kmeans", "stats_hmm")
                    if math.isfinite(as_float(r[m]["ari"]["mean"]))), default=float("nan"))
        out.append(("Held-out ARI latent / base", f"{lat:.2f} / {base:.2f}",
                    "Adjusted Rand index of KMeans on the latents vs the best block-statistics baseline "
                    "(KMeans or Gaussian HMM), on held-out blocks, mean over seeds"))
    return out
