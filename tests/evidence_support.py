"""A result dict shaped like ``experiments.run_evaluation``'s, for the verdict and evidence-figure tests."""

from chronoslib.metrics import summarise

ARMS, PROTOCOLS = ["pseudo", "chrono", "random"], ["chrono_context", "routed"]


def result(err, red_chrono, red_random, rho=None, regimes=True, persistence=0.5):
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
