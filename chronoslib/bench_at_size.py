"""Benchmark section ``at_size``: training at a researcher's scale, end to end, through the command the app's
training job runs (``python -m chronoslib train FILE --out M.pt --events E.jsonl``, defaults otherwise).

On a generated file (``synthetic.make_regime_series``: 3 regimes lasting ``MEAN_REGIME_BLOCKS`` blocks on
average, N rows x 6 features, minute timestamps, CSV; 1,000,000 rows by default) it reports: the file's size;
``read_table`` + ``build_dataset`` of it in a fresh process (``bench_data``'s child, the pyarrow path; the
pandas-vs-pyarrow comparison is ``bench --only data``); the train command as a subprocess: wall seconds, seconds
to its first progress event, seconds per stage from its events file (every interval between two events goes to
the stage of the earlier one, so the stages add up to the span from the first event to "done"), encoder epochs
and steps/s, the child's own peak RSS (``os.wait4``); and regime recovery: ARI of the trained model's regime
clustering of its training blocks (the automatic K the app shows: the views file's, else ``views.cluster``)
against the generator's block-majority labels, next to KMeans at the true K on the latents and on hand-made
block statistics (``experiments.block_stats``), so the figure shows what the training budget costs in quality.
The load average is read before and after. Knows nothing about the app.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

MEAN_REGIME_BLOCKS = 20     # long regimes: a block rarely straddles a switch, so block-majority labels are clean
N_FEATURES, N_REGIMES, SEED = 6, 3, 0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_regime_csv(path: str, rows: int, block_len: int, seed: int = SEED) -> Any:
    """Write ``rows`` minute bars (timestamp + f0..f5, 5 decimals) of a regime series; returns the series
    (``synthetic.RegimeSeries``: its data (T, F) and labels (T,))."""
    import pandas as pd

    from .synthetic import make_regime_series

    s = make_regime_series(rows, n_features=N_FEATURES, n_regimes=N_REGIMES,
                           mean_duration=MEAN_REGIME_BLOCKS * block_len, seed=seed)
    df = pd.DataFrame(s.data, columns=[f"f{i}" for i in range(N_FEATURES)])
    df.insert(0, "timestamp", pd.date_range("2020-01-01", periods=rows, freq="min"))
    df.to_csv(path, index=False, float_format="%.5f")
    return s


def supports_views() -> bool:
    """Whether this checkout's train command takes ``--views`` (it then computes the model views too)."""
    out = subprocess.run([sys.executable, "-m", "chronoslib", "train", "--help"], capture_output=True, text=True,
                         env=_child_env(), cwd=ROOT, timeout=120)
    return "--views" in out.stdout


def _child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=path)


def run_train(argv: Sequence[str], log_dir: str, timeout_s: float) -> dict[str, Any]:
    """Run ``argv`` to its end; wall seconds, launch time (unix), exit status, peak RSS of that child alone
    (``os.wait4``'s rusage, unlike RUSAGE_CHILDREN's maximum over every child so far) and its output's tail."""
    out_path, err_path = os.path.join(log_dir, "train.out"), os.path.join(log_dir, "train.err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        launched, t0 = time.time(), time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=_child_env(),
                                cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout_s:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    wall, ended = time.perf_counter() - t0, time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)   # reaped here: Popen must not wait for it again
    with open(out_path) as f:
        stdout = f.read()
    with open(err_path) as f:
        stderr = f.read()
    return {"wall_s": wall, "launched": launched, "ended": ended, "rc": proc.returncode,
            "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout, "stderr_tail": stderr[-2000:]}


def stage_seconds(events: list[dict[str, Any]], launched: float, ended: float) -> dict[str, Any]:
    """Seconds per stage from the events (in file order), plus launch -> first event and "done" -> exit."""
    stages: dict[str, float] = {}
    for a, b in zip(events, events[1:]):
        stages[a["stage"]] = stages.get(a["stage"], 0.0) + (b["t"] - a["t"])
    return {"stages_s": {k: round(v, 3) for k, v in stages.items()},
            "first_event_s": round(events[0]["t"] - launched, 3) if events else None,
            "after_done_s": round(ended - events[-1]["t"], 3) if events else None}


def encoder_rates(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Encoder / predictor epochs and steps per second from the epoch-end events (they carry a message)."""
    out: dict[str, Any] = {}
    for stage in ("encoder", "predictor"):
        ends = [e for e in events if e["stage"] == stage and e["message"] and e.get("epoch")]
        rates = [e["steps_per_s"] for e in ends if e.get("steps_per_s")]
        out[stage] = {"epochs": ends[-1]["epochs"] if ends else None, "epochs_run": len(ends),
                      "steps_per_epoch": ends[-1]["steps"] if ends else None,
                      "steps_per_s_median": float(np.median(rates)) if rates else None}
    return out


def regime_recovery(model_path: str, data: np.ndarray, labels: np.ndarray, views_path: str | None) -> dict[str, Any]:
    """ARI / NMI of the model's regime clustering of its training blocks vs the generator's block-majority
    labels (``labels`` (T,)), and of KMeans at the true K on the latents and on block statistics of the same
    blocks' rows of ``data`` (T, F)."""
    from sklearn.cluster import KMeans

    from .engine import ChronosDefragEngine
    from .experiments import block_stats
    from .metrics import agreement, block_majority
    from .views import cluster, load_views

    eng = ChronosDefragEngine.load(model_path)
    z, starts, L = np.asarray(eng.block_latents), np.asarray(eng.block_starts), eng.cfg.encoder.block_len
    truth, share = block_majority(labels, L, starts=starts, return_share=True)
    t0 = time.perf_counter()
    if views_path and os.path.exists(views_path):
        reg, source = load_views(views_path).regime, "views file"
    else:
        reg, source = cluster(z), "views.cluster"
    cluster_s = time.perf_counter() - t0
    k = len(np.unique(truth))
    zk = KMeans(k, n_init=4, random_state=0).fit_predict(z)
    # Raw feature statistics of the same blocks, standardised: the hand-made baseline needs no training.
    st = block_stats(data[(starts[:, None] + np.arange(L)[None, :]).reshape(-1)], L)     # (N, 3F)
    st = (st - st.mean(0)) / np.where(st.std(0) > 1e-12, st.std(0), 1.0)
    sk = KMeans(k, n_init=4, random_state=0).fit_predict(st)
    return {"blocks": int(z.shape[0]), "block_len": int(L), "true_k": k, "k_found": int(reg.k),
            "clustering": source, "cluster_s": round(cluster_s, 3),
            "block_label_share_mean": float(share.mean()),
            "model": agreement(reg.labels, truth),
            "latent_kmeans_true_k": agreement(zk, truth), "stats_kmeans_true_k": agreement(sk, truth)}


def bench_at_size(rows: int = 1_000_000, train_args: Sequence[str] = (), views: bool | None = None,
                  timeout_s: float = 3600.0) -> dict[str, Any]:
    """The section at ``rows`` rows; ``train_args`` are appended to the train command (tests: fewer epochs);
    ``views``: also pass ``--views`` (None: when the command supports it)."""
    from .bench_data import _child as read_child
    from .config import DefragConfig
    from .errors import DataError
    from .progress import read_events

    load = [list(os.getloadavg())]
    L = DefragConfig().encoder.block_len
    use_views = supports_views() if views is None else views
    with tempfile.TemporaryDirectory(prefix="chronos_at_size_") as tmp:
        path = os.path.join(tmp, f"regimes_{rows}.csv")
        t0 = time.perf_counter()
        series = write_regime_csv(path, rows, L)
        generate_s = time.perf_counter() - t0
        size_mb = os.path.getsize(path) / 2**20
        read = read_child(path, "pyarrow", build=True)
        model, events_path, views_path = (os.path.join(tmp, n) for n in ("model.pt", "events.jsonl", "views.npz"))
        argv = [sys.executable, "-m", "chronoslib", "train", path, "--out", model, "--events", events_path]
        argv += (["--views", views_path] if use_views else []) + list(train_args)
        run = run_train(argv, tmp, timeout_s)
        events, _ = read_events(events_path)
        if run["rc"] != 0 or not events or events[-1]["stage"] != "done":
            raise DataError(f"the train command exited {run['rc']} on {rows} rows; stderr: {run['stderr_tail']}")
        recovery = regime_recovery(model, series.data, series.labels, views_path if use_views else None)
    load.append(list(os.getloadavg()))
    timing = stage_seconds(events, run["launched"], run["ended"])
    return {
        "rows": rows, "features": N_FEATURES, "regimes": N_REGIMES, "mean_regime_blocks": MEAN_REGIME_BLOCKS,
        "blocks": recovery["blocks"], "block_len": recovery["block_len"], "file_mb": round(size_mb, 1),
        "generate_s": round(generate_s, 2),
        "read": {k: read[k] for k in ("read_s", "build_s", "process_s", "peak_rss_mb")},
        "command": " ".join(["python -m chronoslib train FILE --out M.pt --events E.jsonl"]
                            + (["--views V.npz"] if use_views else []) + list(train_args)),
        "views": use_views, "total_s": round(run["wall_s"], 2), **timing,
        "stages_sum_s": round(sum(timing["stages_s"].values()), 3),
        "training": encoder_rates(events), "summary": events[-1].get("summary", {}),
        "peak_rss_mb": round(run["peak_rss_mb"], 1), "regime_recovery": recovery,
        "load_avg": {"before": load[0], "after": load[1]}, "cores": os.cpu_count(),
        "note": "stages_s: event-to-event seconds by the earlier event's stage (starting: imports and argument "
                "checks; loading: torch import, read and build_dataset); total_s = first_event_s + stages_sum_s "
                "+ after_done_s. peak_rss_mb: the train process alone.",
    }
