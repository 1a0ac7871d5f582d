"""Figures and plain-language verdicts for the evidence experiment (``experiments.run_evaluation``'s result).

Pure functions: a result dict in, a plotly figure or a list of sentences out. Every bar carries its 95 %
interval over seeds as an error bar, and the individual seeds are drawn as dots on top, so a reader sees the
spread, not just a mean. Knows nothing about Streamlit or about how the numbers were made.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .experiments import t_interval

ARM_LABEL = {"pseudo": "pseudo-timeline", "chrono": "chronological", "random": "random"}
ARM_COLOUR = {"pseudo": "#2a9d8f", "chrono": "#457b9d", "random": "#b0b0b0"}
PROTOCOL_LABEL = {"chrono_context": "chronological context", "routed": "as deployed (registry-routed)"}
METHOD_LABEL = {"latent_kmeans": "KMeans on latents", "stats_kmeans": "KMeans on block stats",
                "stats_hmm": "Gaussian HMM on block stats"}
METHOD_COLOUR = {"latent_kmeans": "#2a9d8f", "stats_kmeans": "#e9c46a", "stats_hmm": "#e76f51"}
GOOD, BAD, NEUTRAL = "#2a9d8f", "#e76f51", "#9e9e9e"


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def fmt_ci(mean: Any, ci: Any, digits: int = 3, unit: str = "") -> str:
    """'0.123 ± 0.045' (or '0.123 (no interval)' when the half-width is unknown)."""
    m, h = _num(mean), _num(ci)
    if not math.isfinite(m):
        return "n/a"
    if not math.isfinite(h):
        return f"{m:.{digits}f}{unit} (no interval: one seed)"
    return f"{m:.{digits}f} ± {h:.{digits}f}{unit}"


def interval_sign(mean: Any, ci: Any) -> int:
    """+1 if the whole interval is above 0, -1 if below, 0 if it contains 0 or is unknown."""
    m, h = _num(mean), _num(ci)
    if not (math.isfinite(m) and math.isfinite(h)):
        return 0
    return 1 if m - h > 0 else -1 if m + h < 0 else 0


# ---------------------------------------------------------------------------- verdict sentences
def reduction_verdict(stat: dict, versus: str, protocol: str) -> str:
    """One sentence on the error reduction (%) of pseudo-timeline training versus another order."""
    m, h, n = _num(stat.get("mean")), _num(stat.get("ci")), stat.get("n", 0)
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
    lm, lh = _num(lat.get("mean")), _num(lat.get("ci"))
    best_name, best = None, None
    for meth in ("stats_kmeans", "stats_hmm"):
        st = r.get(meth, {}).get("ari", {})
        if math.isfinite(_num(st.get("mean"))) and (best is None or _num(st["mean"]) > _num(best["mean"])):
            best_name, best = meth, st
    where = "held-out" if span == "heldout" else "training"
    txt = f"Regime recovery on {where} blocks: latent clusters ARI {fmt_ci(lm, lh)}"
    if best is None:
        return txt + "; the baselines could not be fitted."
    bm, bh = _num(best["mean"]), _num(best.get("ci"))
    txt += f" vs best baseline ({METHOD_LABEL[best_name]}) {fmt_ci(bm, bh)}"
    # Paired per seed (same seed, same blocks): interval of the ARI difference latents - baseline.
    diffs = [_num(a) - _num(b) for a, b in zip(lat.get("values", []), best.get("values", []))]
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
        lat = _num(r["latent_kmeans"]["ari"]["mean"])
        base = max((_num(r[m]["ari"]["mean"]) for m in ("stats_kmeans", "stats_hmm")
                    if math.isfinite(_num(r[m]["ari"]["mean"]))), default=float("nan"))
        out.append(("Held-out ARI latent / base", f"{lat:.2f} / {base:.2f}",
                    "Adjusted Rand index of KMeans on the latents vs the best block-statistics baseline "
                    "(KMeans or Gaussian HMM), on held-out blocks, mean over seeds"))
    return out


# ---------------------------------------------------------------------------- figures
def _bars_with_seeds(fig: go.Figure, x: list[str], stats: list[dict], name: str, colour: str, row: int | None = None,
                     col: int | None = None, showlegend: bool = True) -> None:
    """A bar per x with its interval as an error bar, plus the per-seed values as dots (same offset group)."""
    kw = {} if row is None else {"row": row, "col": col}
    means = [_num(s.get("mean")) for s in stats]
    cis = [_num(s.get("ci")) for s in stats]
    fig.add_trace(go.Bar(x=x, y=means, name=name, marker_color=colour, offsetgroup=name, legendgroup=name,
                         showlegend=showlegend,
                         error_y={"type": "data", "array": [c if math.isfinite(c) else 0 for c in cis],
                                  "visible": True, "color": "#333", "thickness": 1.5},
                         hovertemplate=f"{name}<br>%{{x}}: %{{y:.4f}}<extra></extra>"), **kw)
    xs, ys = [], []
    for xi, s in zip(x, stats):
        for v in s.get("values", []):
            if v is not None and math.isfinite(v):
                xs.append(xi)
                ys.append(v)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{name} (seeds)", legendgroup=name,
                             offsetgroup=name, showlegend=False,
                             marker={"color": "#222", "size": 6, "symbol": "circle-open"},
                             hovertemplate=f"{name} seed<br>%{{y:.4f}}<extra></extra>"), **kw)


def _layout(fig: go.Figure, title: str, ytitle: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, barmode="group", scattermode="group", height=height, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 40},
                      legend={"orientation": "h", "y": -0.15, "x": 0})
    fig.update_yaxes(title_text=ytitle)
    return fig


def _arm_bars(result: dict, metric: str) -> go.Figure:
    """Grouped bars of ``summary[metric][protocol][arm]`` (mean, interval and per-seed dots) for every arm."""
    protocols = result["protocols"]
    x = [PROTOCOL_LABEL.get(p, p) for p in protocols]
    fig = go.Figure()
    for arm in result["arms"]:
        _bars_with_seeds(fig, x, [result["summary"][metric][p][arm] for p in protocols], ARM_LABEL[arm],
                         ARM_COLOUR[arm])
    return fig


def error_figure(result: dict) -> go.Figure:
    """Held-out next-block latent MSE per protocol and arm, with intervals, seeds and naive baselines."""
    s = result["summary"]
    fig = _arm_bars(result, "error")
    # Labels on opposite sides of their lines: the two baselines are often within a few pixels of each other.
    for b, dash, label, where in (("persistence", "dash", "persistence (next = current)", "bottom right"),
                                  ("train_mean", "dot", "training mean", "top left")):
        st = s.get("baselines", {}).get(b)
        if st and st.get("mean") is not None:
            fig.add_hline(y=st["mean"], line_dash=dash, line_color="#555",
                          annotation_text=f"{label}: {st['mean']:.4f}", annotation_position=where)
    return _layout(fig, f"Held-out next-block latent error (MSE, {len(result['seeds'])} seeds, 95 % CI)",
                   "mean squared error (lower is better)")


def reduction_figure(result: dict) -> go.Figure:
    """Paired error reduction (%) of pseudo-timeline training vs chronological and vs random order."""
    s = result["summary"]["error_reduction_pct"]
    ys, means, cis, colours, texts = [], [], [], [], []
    for p in result["protocols"]:
        for versus in ("chrono", "random"):
            st = s[p][f"vs_{versus}"]
            m, h = _num(st.get("mean")), _num(st.get("ci"))
            txt = fmt_ci(m, h, 1, " %").replace(" (no interval: one seed)", "")
            ys.append(f"vs {ARM_LABEL[versus]} · {PROTOCOL_LABEL.get(p, p)}<br><b>{txt}</b>")
            means.append(m)
            cis.append(h if math.isfinite(h) else 0.0)
            sign = interval_sign(m, h)
            colours.append(GOOD if sign > 0 else BAD if sign < 0 else NEUTRAL)
            texts.append(txt)
    fig = go.Figure(go.Bar(y=ys, x=means, orientation="h", marker_color=colours, customdata=texts,
                           error_x={"type": "data", "array": cis, "visible": True, "color": "#333"},
                           hovertemplate="%{customdata}<extra></extra>", showlegend=False))
    fig.add_vline(x=0, line_color="#333", line_width=1)
    fig.update_layout(title="Error reduction from defragmented training (paired per seed; > 0 = pseudo-timeline "
                      "better)", height=340, template="plotly_white", margin={"l": 330, "r": 30, "t": 60, "b": 40})
    fig.update_xaxes(title_text="% reduction of held-out error")
    return fig


def spearman_figure(result: dict) -> go.Figure:
    """Spearman rank correlation of alpha with the next block's return, per protocol and arm."""
    s = result["summary"]
    if not result.get("has_prices"):
        fig = go.Figure()
        fig.add_annotation(text="this dataset has no price column: no alpha test", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
        return _layout(fig, "Alpha vs next-block return", "Spearman rho")
    fig = _arm_bars(result, "spearman")
    st = s.get("baselines", {}).get("persistence_spearman")
    if st and st.get("mean") is not None:
        fig.add_hline(y=st["mean"], line_dash="dash", line_color="#555",
                      annotation_text=f"baseline, current latent[0]: {st['mean']:.3f}",
                      annotation_position="bottom right")
    fig.add_hline(y=0, line_color="#333", line_width=1)
    return _layout(fig, "Alpha vs next block's log return (Spearman rho, 95 % CI)", "Spearman rho")


def regime_figure(result: dict) -> go.Figure:
    """ARI and NMI of latent clusters vs the two block-statistics baselines, on training and held-out blocks."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Adjusted Rand index", "Normalised mutual information"))
    if not result.get("has_regimes"):
        fig.add_annotation(text="no ground-truth labels in this dataset: regime recovery not scored",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return _layout(fig, "Regime recovery", "score")
    r = result["summary"]["regimes"]
    x = ["training blocks", "held-out blocks"]
    for j, metric in enumerate(("ari", "nmi")):
        for meth in ("latent_kmeans", "stats_kmeans", "stats_hmm"):
            _bars_with_seeds(fig, x, [r[span][meth][metric] for span in ("train", "heldout")], METHOD_LABEL[meth],
                             METHOD_COLOUR[meth], row=1, col=j + 1, showlegend=j == 0)
    _layout(fig, f"Regime recovery vs ground truth ({result.get('n_regimes')} regimes, 95 % CI over seeds)",
            "score (1 = perfect)", height=400)
    lows = [_num(st[m]["mean"]) - (_num(st[m]["ci"]) if math.isfinite(_num(st[m]["ci"])) else 0.0)
            for span in r.values() for st in span.values() for m in ("ari", "nmi")]
    fig.update_yaxes(range=[min([0.0, *[v for v in lows if math.isfinite(v)]]) - 0.02, 1.05])  # ARI can dip < 0
    return fig


def seed_table(result: dict) -> list[dict[str, Any]]:
    """One row per seed with the main numbers (for a table under the plots)."""
    rows = []
    for r in result["per_seed"]:
        row: dict[str, Any] = {"seed": r["seed"], "path cost ratio": r["path_cost_ratio"]}
        for p in result["protocols"]:
            for arm in result["arms"]:
                row[f"MSE {arm} ({p})"] = r["error"][p][arm]
        if result.get("has_prices"):
            for arm in result["arms"]:
                row[f"rho {arm} (routed)"] = r["spearman"]["routed"][arm]
        if result.get("has_regimes"):
            for meth in ("latent_kmeans", "stats_kmeans", "stats_hmm"):
                row[f"ARI {meth} (held-out)"] = r["regimes"]["heldout"][meth]["ari"]
        rows.append(row)
    return rows
