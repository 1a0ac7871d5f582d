"""Evidence experiments: does training the predictor over the pseudo-timeline actually help?

Owns the evaluation protocol behind ``python -m chronoslib evaluate`` (``evaluate``) and the app's Evidence page:
its numbers only, as one JSON-safe dict (``run_evaluation``); the statistics come from ``metrics`` and the
wording from ``verdicts``. It knows nothing about Streamlit or plotting.

Protocol (the same for every arm, stated again in the result's ``protocol`` field):

1. Time split: the encoder sees only the training span ``features[:split]`` (``engine.fit``, one fit per seed);
   the held-out span ``features[split:]`` is cut into blocks and embedded with that frozen encoder and the
   training span's normaliser.
2. Three arms per seed train a ``TemporalPredictor`` from the *same* initial weights and the *same* shuffling
   generator on the *same* training latents; only the order of the windows differs:
   ``pseudo`` = the engine's pseudo-timeline, ``chrono`` = block 0, 1, 2, ..., ``random`` = a seeded permutation.
3. Targets: held-out blocks 1..M-1 (block 0 only serves as context). Each arm forecasts the first
   ``forecast_dim`` latent coordinates of the target block from what was observed before it, two ways:
   * ``chrono_context``: the W chronologically preceding blocks (train + held-out latents), fed in time order;
   * ``routed`` (as deployed): the previous held-out block is the query; its top-k training neighbours by
     SPD-weighted cosine give a blended predictor state (states computed along the arm's own order, exactly as
     ``engine.fit`` does for its order), then one step with the query (``predict_live``'s computation).
   Error = mean squared error over the forecast coordinates, averaged over targets.
4. With prices: alpha = forecast[0] (the engine's ``alpha_prediction``); Spearman rank correlation of alpha with
   the target block's log return (last tick of the previous block to last tick of the target block).
5. With ground-truth labels: KMeans on the latents vs KMeans and a Gaussian HMM on hand-made block statistics
   (mean, std, lag-1 autocorrelation per feature), all fitted on the training blocks and scored (ARI, NMI against
   the majority label of each block) on the training and the held-out blocks.
6. Every number is summarised over seeds as mean and a 95 % Student-t interval of the mean.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .blocks import slice_blocks
from .config import DefragConfig
from .errors import ConfigError, DataError, NotEnoughBlocksError
from .metrics import agreement, block_majority, latent_mse, spearman, summarise
from .predictor import TemporalPredictor, gather_windows
from .registry import Registry
from .timeline import resolve_method
from .training import planned_epochs, preceding_states, train_predictor

ARMS = ("pseudo", "chrono", "random")
PROTOCOLS = ("chrono_context", "routed")
BASELINES = ("persistence", "train_mean")
REGIME_METHODS = ("latent_kmeans", "stats_kmeans", "stats_hmm")
MIN_HELDOUT_BLOCKS = 4       # block 0 is context only; Spearman needs >= 3 targets
QUICK = {"seeds": 3, "encoder_epochs": 10, "predictor_epochs": 10}
Progress = Callable[[str, int, int, dict], None]


# ---------------------------------------------------------------------------- protocol helpers
def block_stats(x: np.ndarray, block_len: int) -> np.ndarray:
    """Hand-made block features (N, 3F): per feature the mean, std and lag-1 autocorrelation of each block.

    Autocorrelation of a constant block is 0 (not NaN).
    """
    b = slice_blocks(np.asarray(x, dtype=np.float64), block_len, min_blocks=1).blocks  # (N, L, F)
    mean = b.mean(axis=1)                                                               # (N, F)
    c = b - mean[:, None, :]
    var = (c ** 2).sum(axis=1)                                                          # (N, F)
    lag = (c[:, 1:] * c[:, :-1]).sum(axis=1)
    ac = np.where(var > 1e-12, lag / np.maximum(var, 1e-12), 0.0)
    return np.concatenate([mean, b.std(axis=1), ac], axis=1)


def block_returns(prices: np.ndarray, starts: np.ndarray, block_len: int) -> np.ndarray:
    """Log return over each block: log p[last tick] - log p[tick before its first] (NaN for a block at tick 0)."""
    p = np.asarray(prices, dtype=np.float64)
    if (p <= 0).any() or not np.isfinite(p).all():
        raise DataError("prices must be finite and > 0 to compute block log returns")
    lp = np.log(p)
    s = np.asarray(starts, dtype=np.int64)
    prev = np.where(s > 0, lp[np.maximum(s - 1, 0)], np.nan)
    return lp[s + block_len - 1] - prev


def arm_orders(pseudo: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The three training orders over N blocks; the random one is redrawn until it differs from the other two."""
    pseudo = np.asarray(pseudo, dtype=np.int64)
    n = pseudo.shape[0]
    chrono = np.arange(n, dtype=np.int64)
    rand = rng.permutation(n)
    for _ in range(100):
        if not (np.array_equal(rand, chrono) or np.array_equal(rand, pseudo)):
            break
        rand = rng.permutation(n)
    return {"pseudo": pseudo, "chrono": chrono, "random": rand.astype(np.int64)}


# ---------------------------------------------------------------------------- forecasts under the two protocols
@torch.inference_mode()
def chrono_context_forecasts(predictor: TemporalPredictor, z_seq: torch.Tensor, targets: np.ndarray) -> torch.Tensor:
    """Forecast z_seq[t] from the W blocks z_seq[t-W : t] (zero-padded before 0), for each t: (M, forecast_dim)."""
    w = predictor.cfg.window
    t = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
    pos = t.unsqueeze(1) + torch.arange(-w, 0).unsqueeze(0)                       # (M, W) chronological positions
    idx = torch.where(pos >= 0, pos, torch.full_like(pos, -1))
    return predictor(gather_windows(z_seq, idx))


@torch.inference_mode()
def routed_forecasts(predictor: TemporalPredictor, z_train: torch.Tensor, order: np.ndarray, starts: np.ndarray,
                     queries: torch.Tensor, query_ticks: np.ndarray, cfg: DefragConfig) -> torch.Tensor:
    """``predict_live``'s computation for queries (M, D): registry of the arm's preceding states -> (M, fd)."""
    states = preceding_states(predictor, z_train, torch.as_tensor(order))        # (N, S) along the arm's order
    r = cfg.routing
    reg = Registry(max(len(z_train), 4), z_train.shape[1], predictor.state_dim, cfg.encoder.block_len, r.decay,
                   index_threshold=r.index_threshold, index_nprobe=r.index_nprobe, index_cells=r.index_cells)
    reg.add(z_train, starts, torch.arange(len(z_train)), states)
    out = []
    for q, tq in zip(queries, np.asarray(query_ticks, dtype=np.float64)):  # one query time each, as live
        state = reg.route(q.unsqueeze(0), float(tq), r.top_k).state              # (1, S)
        out.append(predictor.readout(predictor.step(q.unsqueeze(0), state)))
    return torch.cat(out)


# ---------------------------------------------------------------------------- regime recovery
def regime_scores(z_train: np.ndarray, z_held: np.ndarray, s_train: np.ndarray, s_held: np.ndarray,
                  y_train: np.ndarray, y_held: np.ndarray, k: int, seed: int) -> dict[str, dict[str, dict]]:
    """ARI / NMI of latent KMeans, stats KMeans and stats Gaussian HMM, each fitted on training blocks only.

    Returns {"train" | "heldout": {method: {"ari": float, "nmi": float}}}; NaN when a method fails to fit.
    """
    import warnings

    from sklearn.cluster import KMeans

    mu, sd = s_train.mean(axis=0), s_train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    st_tr, st_ho = (s_train - mu) / sd, (s_held - mu) / sd      # standardised on the training span only
    preds: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for name, (a, b) in (("latent_kmeans", (z_train, z_held)), ("stats_kmeans", (st_tr, st_ho))):
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(a)
        preds[name] = (km.labels_, km.predict(b))
    try:
        import logging

        from hmmlearn.hmm import GaussianHMM

        logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # "not converging" chatter on stderr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hmm = GaussianHMM(n_components=k, covariance_type="diag", n_iter=100, random_state=seed,
                              min_covar=1e-3).fit(st_tr)
            preds["stats_hmm"] = (hmm.predict(st_tr), hmm.predict(st_ho))
    except (ValueError, np.linalg.LinAlgError):
        preds["stats_hmm"] = None
    out: dict[str, dict[str, dict]] = {"train": {}, "heldout": {}}
    for name, p in preds.items():
        for j, (span, y) in enumerate((("train", y_train), ("heldout", y_held))):
            ok = np.asarray(y) >= 0                         # blocks without any label are not scored
            if p is None or ok.sum() < 2:
                out[span][name] = {"ari": float("nan"), "nmi": float("nan")}
            else:
                out[span][name] = agreement(p[j][ok], y[ok])
    return out


# ---------------------------------------------------------------------------- the experiment
def _check_inputs(features: np.ndarray, split: int, cfg: DefragConfig, seeds: int) -> tuple[int, int]:
    if not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {seeds!r}")
    if features.ndim != 2:
        raise DataError(f"features must be 2-D (T, F), got shape {features.shape}")
    if features.shape[1] != cfg.encoder.input_dim:
        raise DataError(f"data has {features.shape[1]} features but encoder.input_dim is {cfg.encoder.input_dim}")
    t, L = features.shape[0], cfg.encoder.block_len
    if not 0 < split < t:
        raise DataError(f"the time split must leave both a training and a held-out span, got split={split} "
                        f"of {t} ticks")
    n_train, n_held = split // L, (t - split) // L
    need = max(4, cfg.predictor.window + 2)
    if n_train < need:
        raise NotEnoughBlocksError(f"Need at least {need} training blocks for the evaluation: the training span "
                                   f"has {split} ticks = {n_train} block(s) of block_len={L}")
    if n_held < MIN_HELDOUT_BLOCKS:
        raise NotEnoughBlocksError(
            f"Need at least {MIN_HELDOUT_BLOCKS} held-out blocks for the evaluation: the held-out span has "
            f"{t - split} ticks = {n_held} block(s) of block_len={L}; hold out more data or lower block_len")
    return n_train, n_held


@dataclass
class _Spans:
    """One seed's fitted engine, the frozen encoder's latents of both spans and the forecast targets."""
    eng: Any
    z_tr: torch.Tensor          # (N, D) training blocks
    z_ho: torch.Tensor          # (M, D) held-out blocks
    held_starts: np.ndarray     # (M,) global start tick of each held-out block
    targets: np.ndarray         # held-out blocks 1..M-1 (block 0 is context only)
    y: np.ndarray               # (M-1, forecast_dim) the targets' leading latent coordinates


def _seed_run(features: np.ndarray, split: int, labels: np.ndarray | None, prices: np.ndarray | None,
              cfg: DefragConfig, predictor_epochs: int, seed: int, report: Callable[[str], None]) -> dict:
    """One seed: fit the encoder, train the three arms, score both protocols and (with labels) the regimes."""
    sp = _fit_and_embed(features, split, cfg, seed)
    report("encoder")
    orders = arm_orders(sp.eng.pseudo_timeline, np.random.default_rng(seed))
    with torch.random.fork_rng(devices=[]):   # one seeded init shared by all arms, global RNG untouched
        torch.manual_seed(seed)
        init = TemporalPredictor(cfg.predictor, cfg.encoder.latent_dim)
    pcfg = cfg.with_overrides(predictor_epochs=predictor_epochs)
    rec: dict[str, Any] = {"seed": seed, "path_cost_ratio": float(sp.eng.fit_summary["path_cost_ratio"]),
                           "orders_head": {a: o[:12].tolist() for a, o in orders.items()},
                           "error": {p: {} for p in PROTOCOLS}, "spearman": {p: {} for p in PROTOCOLS},
                           "final_train_loss": {}}
    rets = None if prices is None else block_returns(prices, sp.held_starts, cfg.encoder.block_len)[sp.targets]
    for arm in ARMS:
        _score_arm(rec, arm, copy.deepcopy(init), orders[arm], sp, pcfg, cfg, seed, rets)
        report(arm)
    rec["baselines"] = _baselines(sp, cfg.predictor.forecast_dim, rets)
    if labels is not None:
        rec.update(_regime_record(features, split, labels, sp, cfg.encoder.block_len, seed))
    return rec


def _fit_and_embed(features: np.ndarray, split: int, cfg: DefragConfig, seed: int) -> _Spans:
    """Fit the encoder on the training span's whole blocks, embed the held-out blocks with it."""
    from .engine import ChronosDefragEngine

    L = cfg.encoder.block_len
    c = cfg.with_overrides(seed=seed, predictor_epochs=1)   # the engine's own predictor is not used here
    n_fit = (split // L) * L        # whole blocks only: the split % L ticks before the held-out span go unused
    eng = ChronosDefragEngine(c).fit(features[:n_fit])
    z_tr = torch.from_numpy(eng.block_latents).float()                            # (N, D)
    held = slice_blocks(features[split:], L, min_blocks=1)
    z_ho = torch.from_numpy(eng.embed(features[split:split + held.n_blocks * L])).float()  # (M, D)
    targets = np.arange(1, z_ho.shape[0])
    return _Spans(eng, z_tr, z_ho, split + held.starts, targets, z_ho[targets, :cfg.predictor.forecast_dim].numpy())


def _score_arm(rec: dict, arm: str, pred: TemporalPredictor, order: np.ndarray, sp: _Spans, pcfg: DefragConfig,
               cfg: DefragConfig, seed: int, rets: np.ndarray | None) -> None:
    """Train one arm's predictor along its order, then score its forecasts under both protocols into ``rec``."""
    hist: list[dict] = []
    train_predictor(pred, sp.z_tr, torch.from_numpy(order), pcfg, torch.Generator().manual_seed(seed), hist)
    pred.eval()
    rec["final_train_loss"][arm] = float(hist[-1]["loss"]) if hist else float("nan")
    z_seq = torch.cat([sp.z_tr, sp.z_ho])                                         # chronological (N + M, D)
    fc = {"chrono_context": chrono_context_forecasts(pred, z_seq, sp.z_tr.shape[0] + sp.targets),
          "routed": routed_forecasts(pred, sp.z_tr, order, sp.eng.block_starts, sp.z_ho[sp.targets - 1],
                                     sp.held_starts[sp.targets - 1], cfg)}
    for p, f in fc.items():
        rec["error"][p][arm] = latent_mse(f.numpy(), sp.y)
        if rets is not None:
            rec["spearman"][p][arm] = spearman(f[:, 0].numpy(), rets)


def _baselines(sp: _Spans, fd: int, rets: np.ndarray | None) -> dict[str, float]:
    """Naive forecasts: persistence (next latent = current one) and the training mean."""
    prev = sp.z_ho[sp.targets - 1, :fd].numpy()
    out = {"persistence": latent_mse(prev, sp.y),
           "train_mean": latent_mse(np.broadcast_to(sp.z_tr[:, :fd].numpy().mean(0), sp.y.shape), sp.y)}
    if rets is not None:
        out["persistence_spearman"] = spearman(prev[:, 0], rets)
    return out


def _regime_record(features: np.ndarray, split: int, labels: np.ndarray, sp: _Spans, L: int, seed: int) -> dict:
    """Regime recovery scores (and the number of regimes) when the training span has at least two labels."""
    lab_tr, lab_ho = block_majority(labels[:split], L), block_majority(labels[split:], L)
    k = int(np.unique(lab_tr[lab_tr >= 0]).size)
    if k < 2:
        return {}
    n, m = sp.z_tr.shape[0], sp.z_ho.shape[0]
    return {"regimes": regime_scores(sp.z_tr.numpy(), sp.z_ho.numpy(), block_stats(features[:n * L], L),
                                     block_stats(features[split:split + m * L], L), lab_tr, lab_ho, k, seed),
            "n_regimes": k}


def _summary(per_seed: list[dict], has_prices: bool, has_regimes: bool) -> dict[str, Any]:
    s: dict[str, Any] = {"error": {}, "error_reduction_pct": {}, "spearman": {}, "baselines": {}}
    for p in PROTOCOLS:
        err = {a: np.array([r["error"][p][a] for r in per_seed]) for a in ARMS}
        s["error"][p] = {a: summarise(err[a]) for a in ARMS}
        # Paired per seed (same encoder, same init): 100 * (other - pseudo) / other; > 0 means pseudo is better.
        s["error_reduction_pct"][p] = {f"vs_{o}": summarise(100.0 * (err[o] - err["pseudo"]) / err[o])
                                       for o in ("chrono", "random")}
        if has_prices:
            s["spearman"][p] = {a: summarise([r["spearman"][p][a] for r in per_seed]) for a in ARMS}
    for b in per_seed[0]["baselines"]:
        s["baselines"][b] = summarise([r["baselines"][b] for r in per_seed])
    if has_regimes:
        s["regimes"] = {span: {meth: {m: summarise([r["regimes"][span][meth][m] for r in per_seed])
                                      for m in ("ari", "nmi")} for meth in REGIME_METHODS}
                        for span in ("train", "heldout")}
    s["path_cost_ratio"] = summarise([r["path_cost_ratio"] for r in per_seed])
    return s


def run_evaluation(features: np.ndarray, split: int, cfg: DefragConfig, *, labels: np.ndarray | None = None,
                   prices: np.ndarray | None = None, seeds: int = 5, seed0: int = 0,
                   encoder_epochs: int | None = None, predictor_epochs: int | None = None,
                   dataset: str = "data", progress: Progress | None = None,
                   ordering: str | None = None) -> dict[str, Any]:
    """Run the evidence protocol (see the module docstring) and return a JSON-safe dict.

    features (T, F) raw features; ``split`` the first held-out tick; ``cfg`` the model configuration to test
    (its seed is replaced by seed0, seed0 + 1, ...); labels (T,) optional ground truth; prices (T,) optional;
    ordering: the pseudo arm's method (``timeline.build_pseudo_timeline``; default the config's chain_method).
    """
    t0 = time.perf_counter()
    cfg = cfg.with_overrides(encoder_epochs=None if encoder_epochs is None else int(encoder_epochs),
                             chain_method=ordering)
    pe = cfg.optim.predictor_epochs if predictor_epochs is None else int(predictor_epochs)
    if predictor_epochs is not None and pe < 1:
        raise ConfigError(f"predictor_epochs must be >= 1 for the evaluation, got {pe}")
    x = np.asarray(features, dtype=np.float32)
    n_train, n_held = _check_inputs(x, int(split), cfg, seeds)
    enc_ep, planned_pe = planned_epochs(cfg, n_train)    # a 0 in the config: derived from the window budget
    cfg, pe = cfg.with_overrides(encoder_epochs=enc_ep), pe or planned_pe
    labels = None if labels is None else _checked_labels(labels, x.shape[0])
    prices = None if prices is None else _checked_prices(prices, x.shape[0])
    report = _reporter(progress, seeds * (1 + len(ARMS)))
    per_seed = [_seed_run(x, int(split), labels, prices, cfg, pe, seed0 + i, report) for i in range(seeds)]
    has_regimes = all("regimes" in r for r in per_seed)
    return _json_safe({
        "dataset": dataset, "n_ticks": int(x.shape[0]), "n_features": int(x.shape[1]), "split": int(split),
        "block_len": cfg.encoder.block_len, "window": cfg.predictor.window, "forecast_dim": cfg.predictor.forecast_dim,
        "n_train_blocks": n_train, "n_heldout_blocks": n_held, "n_targets": n_held - 1,
        "seeds": [seed0 + i for i in range(seeds)], "ordering": resolve_method(cfg.routing.chain_method),
        "encoder_epochs": cfg.optim.encoder_epochs,
        "predictor_epochs": pe, "has_prices": prices is not None, "has_regimes": has_regimes,
        "n_regimes": per_seed[0].get("n_regimes"), "arms": list(ARMS), "protocols": list(PROTOCOLS),
        "protocol": PROTOCOL_TEXT, "per_seed": per_seed,
        "summary": _summary(per_seed, prices is not None, has_regimes),
        "seconds": round(time.perf_counter() - t0, 2),
    })


def _checked_labels(labels: Any, n: int) -> np.ndarray:
    """(T,) integer label codes (-1 = missing); strings are coded 0..K-1 in order of appearance."""
    labels = np.asarray(labels)
    if labels.shape[0] != n:
        raise DataError(f"labels have {labels.shape[0]} rows but features have {n}")
    if not np.issubdtype(labels.dtype, np.integer):
        import pandas as pd

        return pd.factorize(labels)[0].astype(np.int64)   # strings -> 0..K-1 (missing -> -1)
    if labels.min() < -1:
        raise DataError(f"label codes must be >= 0 (-1 = missing), got {int(labels.min())}")
    return labels


def _checked_prices(prices: Any, n: int) -> np.ndarray:
    prices = np.asarray(prices, dtype=np.float64)
    if prices.shape[0] != n:
        raise DataError(f"prices have {prices.shape[0]} rows but features have {n}")
    return prices


def _reporter(progress: Progress | None, total: int) -> Callable[[str], None]:
    """A callback counting finished steps (an encoder fit or an arm) and passing them on to ``progress``."""
    step = 0

    def report(what: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress("evaluate", step, total, {"seed_index": (step - 1) // (1 + len(ARMS)), "done": what})

    return report


PROTOCOL_TEXT = (
    "Time split: the encoder is fitted on the training span only (once per seed). Three predictors per seed start "
    "from the same weights and see the same training latents, shuffled by the same generator; only the order of "
    "their training windows differs (pseudo-timeline, chronological, random). Each forecasts the leading latent "
    "coordinates of held-out blocks 1..M-1 (a) from the W chronologically preceding blocks and (b) as deployed: the "
    "previous held-out block queries the training registry (SPD-weighted top-k, states along the arm's own order) "
    "and the predictor steps once. Error is the mean squared error of that forecast. Alpha = forecast[0], compared "
    "with the target block's log return by Spearman correlation. Intervals: 95 % Student-t over seeds.")


def _json_safe(obj: Any) -> Any:
    """NaN / inf -> None and NumPy scalars -> Python, so the result is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
