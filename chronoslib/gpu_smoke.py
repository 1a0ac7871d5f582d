"""One-command GPU smoke test: ``python -m chronoslib.gpu_smoke [--out FILE]``.

Runs, on the first CUDA device, each GPU path the library has and prints one JSON document with a row per
step ("ok" with its numbers, "failed" with the error, or "skipped" with the reason):

1. ``train``: ``engine.fit`` with ``device="cuda"`` for a few epochs (the bf16-autocast training path);
2. ``predict``: ``predict_live`` / ``predict_batch`` of that engine (CPU after fit) and the trained encoder run
   on the GPU against the CPU encoder on the same blocks;
3. ``faiss_gpu``: a faiss IVF index moved to the GPU (``index_cpu_to_gpu``), searched against the CPU index;
4. ``nccl``: ``torchrun --nproc_per_node=1`` of this module's ``--ddp-worker`` (NCCL process group, one
   all_reduce).

Without CUDA every step is "skipped" and the exit status is 0; with CUDA it is 1 when any step failed.
Knows nothing about the app.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _step(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # a smoke test reports every failure rather than stopping at the first
        return {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[:500]}",
                "seconds": time.perf_counter() - t0}
    out.setdefault("status", "ok")
    out["seconds"] = time.perf_counter() - t0
    return out


def _train() -> tuple[dict[str, Any], Any, np.ndarray]:
    from .bench_measure import spec_config
    from .engine import ChronosDefragEngine
    from .synthetic import make_regime_series

    cfg = spec_config()
    cfg.device, cfg.optim.encoder_epochs, cfg.optim.predictor_epochs = "cuda", 3, 3
    data = make_regime_series(64 * 64, n_features=6, seed=0).data
    eng = ChronosDefragEngine(cfg).fit(data[: 64 * 48])
    return {"epochs": 3, "n_blocks": 48, "final_loss": eng.history[-1]}, eng, data[64 * 48:].reshape(-1, 64, 6)


def _predict(eng: Any, windows: np.ndarray) -> dict[str, Any]:
    w = windows.astype(np.float32)
    p = eng.predict_live(w[0])
    b = eng.predict_batch(w)
    x = torch.from_numpy(eng.normaliser.transform(w).astype(np.float32))
    with torch.inference_mode():
        cpu = eng.encoder(x)
        gpu = eng.encoder.cuda()(x.cuda()).cpu()
    eng.encoder.cpu()
    diff = float((gpu - cpu).abs().max())
    if diff > 1e-3 or p.neighbour_indices != list(b["neighbour_indices"][0]):
        raise AssertionError(f"GPU encoder differs from CPU by {diff:.3g} or live != batch neighbours")
    return {"live_ms": p.system_latency_ms, "batch_windows": len(w), "gpu_vs_cpu_latent_max_diff": diff}


def _faiss_gpu() -> dict[str, Any]:
    import faiss

    if not hasattr(faiss, "StandardGpuResources"):
        return {"status": "skipped", "reason": "faiss has no GPU support (faiss-cpu installed; faiss-gpu needed)"}
    rng = np.random.default_rng(0)
    z = rng.standard_normal((20_000, 32)).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    quant = faiss.IndexFlatIP(32)
    cpu = faiss.IndexIVFFlat(quant, 32, 64, faiss.METRIC_INNER_PRODUCT)
    cpu.train(z)
    cpu.add(z)
    cpu.nprobe = 8
    gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu)
    _, a = cpu.search(z[:100], 8)
    _, b = gpu.search(z[:100], 8)
    return {"entries": len(z), "top8_agreement": float((a == b).mean())}


def _nccl() -> dict[str, Any]:
    if not torch.distributed.is_nccl_available():
        return {"status": "skipped", "reason": "this torch build has no NCCL"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", "--standalone",
           "-m", "chronoslib.gpu_smoke", "--ddp-worker"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited {proc.returncode}: {proc.stderr[-800:]}")
    return {"all_reduce": proc.stdout.strip().splitlines()[-1]}


def _ddp_worker() -> int:
    import torch.distributed as dist

    dist.init_process_group("nccl")
    rank = dist.get_rank()
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    t = torch.ones(4, device="cuda") * (rank + 1)
    dist.all_reduce(t)
    print(f"rank {rank} of {dist.get_world_size()}: all_reduce sum {t.tolist()}")
    dist.destroy_process_group()
    return 0


def run_smoke() -> dict[str, Any]:
    """Every step's row (see the module docstring); all "skipped" without CUDA."""
    out: dict[str, Any] = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if not torch.cuda.is_available():
        reason = {"status": "skipped", "reason": "no CUDA device"}
        out.update(train=dict(reason), predict=dict(reason), faiss_gpu=dict(reason), nccl=dict(reason))
        return out
    out["device"] = torch.cuda.get_device_name(0)
    held: dict[str, Any] = {}

    def train() -> dict[str, Any]:
        row, held["eng"], held["live"] = _train()
        return row

    out["train"] = _step(train)
    out["predict"] = (_step(lambda: _predict(held["eng"], held["live"])) if "eng" in held
                      else {"status": "skipped", "reason": "training failed"})
    out["faiss_gpu"] = _step(_faiss_gpu)
    out["nccl"] = _step(_nccl)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chronoslib.gpu_smoke", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="", help="also write the JSON to this file")
    ap.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ddp_worker:
        return _ddp_worker()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    res = run_smoke()
    text = json.dumps(res, indent=1, default=str)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    failed = [k for k, v in res.items() if isinstance(v, dict) and v.get("status") == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
