"""Argument parsing and the ``train`` command; ``bench`` and ``evaluate`` live in their own modules.

``main(argv)`` returns an exit status; user errors (ValueError / RuntimeError / OSError from the library)
become one line on stderr and status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import torch


class UsageError(ValueError):
    """A command-line argument that would be unsafe or makes no sense (reported as one ``error:`` line)."""


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an engine on a CSV / Parquet file and save a checkpoint")
    p.add_argument("data", help="CSV or Parquet file, one row per tick")
    p.add_argument("--out", required=True, help="checkpoint path to write (atomically)")
    p.add_argument("--features", default="", help="comma-separated feature columns (default, with no --transforms "
                   "either: advice.default_recipe: stationary features for market data, else every numeric column)")
    p.add_argument("--timestamp", default="", help="timestamp column (default: detected)")
    p.add_argument("--label", default="", help="ground-truth label column, excluded from features")
    p.add_argument("--epochs", type=int, default=None, help="encoder epochs")
    p.add_argument("--predictor-epochs", type=int, default=None)
    p.add_argument("--block-len", type=int, default=None)
    p.add_argument("--latent-dim", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--holdout", type=float, default=0.0, help="fraction of the end kept out of training")
    p.add_argument("--config", default="", help="JSON file with a DefragConfig dict to start from")
    p.add_argument("--transforms", default="", help="comma-separated feature engineering from prices: "
                   "log_return, abs_return, hl_range, log_volume, rel_volume, rolling_vol (default: see --features)")
    p.add_argument("--price", default=None, help="price column for the transforms (default: detected by name)")
    p.add_argument("--high", default=None, help="high column for hl_range (default: detected)")
    p.add_argument("--low", default=None, help="low column for hl_range (default: detected)")
    p.add_argument("--volume", default=None, help="volume column for log_volume / rel_volume (default: detected)")
    p.add_argument("--vol-window", type=int, default=None,
                   help="ticks in the rolling_vol / rel_volume window (default 20)")
    p.add_argument("--nan-policy", choices=("refuse", "ffill"), default=None,
                   help="NaN / inf / non-numeric cells: refuse (default) or forward-fill")
    p.add_argument("--normalize", choices=("zscore", "robust", "none"), default=None,
                   help="per-feature normalisation fitted on the training span (default zscore)")
    p.add_argument("--sort", action="store_true", help="sort rows by timestamp instead of refusing disorder")
    p.add_argument("--no-timestamp", action="store_true", help="the file has no timestamp column")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing --out file that is not a ChronosDefrag checkpoint")
    p.set_defaults(func=cmd_train)


MAX_EPOCHS = 10_000       # far above any useful run; a typo like 1e9 epochs is refused instead of running forever
MAX_SEED = 2**63 - 1      # torch.manual_seed accepts [0, 2**64) but numpy's default_rng needs an int64-safe value


def _bounded(name: str, v: int | None, lo: int, hi: int) -> None:
    if v is not None and not lo <= v <= hi:
        raise UsageError(f"{name} must be in [{lo}, {hi}], got {v}")


def _is_checkpoint(path: str) -> bool:
    """True if ``path`` starts like a checkpoint we wrote (read fully: it is small and weights-only)."""
    from .checkpoint import read_checkpoint

    try:
        read_checkpoint(path)
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def check_out_path(out: str, inputs: Sequence[str], force: bool) -> None:
    """Refuse an ``--out`` that would destroy data: an input file (same file by any path or link), a folder,
    or an existing file that is not a ChronosDefrag checkpoint (unless ``force``)."""
    if os.path.isdir(out):
        raise UsageError(f"--out {out} is a folder; give a file path")
    real = os.path.realpath(out)
    for src in inputs:
        if src and os.path.exists(src) and (os.path.realpath(src) == real or (
                os.path.exists(out) and os.path.samefile(src, out))):
            raise UsageError(f"--out {out} is the input file {src}; writing the checkpoint would destroy it")
    if os.path.exists(out) and not force and not _is_checkpoint(out):
        raise UsageError(f"--out {out} exists and is not a ChronosDefrag checkpoint; refusing to overwrite it "
                         "(use --force to overwrite)")


def cmd_train(args: argparse.Namespace) -> int:
    from .config import DefragConfig
    from .data import load_for_training
    from .engine import ChronosDefragEngine

    _bounded("--epochs", args.epochs, 1, MAX_EPOCHS)
    _bounded("--predictor-epochs", args.predictor_epochs, 0, MAX_EPOCHS)
    _bounded("--seed", args.seed, 0, MAX_SEED)
    check_out_path(args.out, [args.data, args.config], args.force)
    base = DefragConfig.from_json_file(args.config) if args.config else DefragConfig()
    cfg = base.with_overrides(encoder_epochs=args.epochs, predictor_epochs=args.predictor_epochs,
                              block_len=args.block_len, batch_size=args.batch_size, latent_dim=args.latent_dim,
                              seed=args.seed, normalize=args.normalize)
    features = [c.strip() for c in args.features.split(",") if c.strip()]
    transforms = [c.strip() for c in args.transforms.split(",") if c.strip()]
    ds, cfg = load_for_training(args.data, cfg, features=features, timestamp_col=args.timestamp,
                                label_col=args.label, holdout=args.holdout, transforms=transforms,
                                price_col=args.price, high_col=args.high, low_col=args.low, volume_col=args.volume,
                                vol_window=args.vol_window, nan_policy=args.nan_policy, sort=args.sort,
                                no_timestamp=args.no_timestamp)
    cfg.validate()
    if not args.quiet:
        print(f"[data] {ds.name}: {len(ds.features)} ticks x {len(ds.feature_names)} features "
              f"{ds.feature_names}, training on the first {ds.split}", file=sys.stderr)
        for note in ds.notes:
            print(f"[data] {note}", file=sys.stderr)

    def progress(stage: str, step: int, total: int, metrics: dict) -> None:
        if not args.quiet and stage == "encoder":
            print(f"[encoder {step}/{total}] loss={metrics['loss']:.4f} infonce={metrics['infonce']:.4f} "
                  f"ter={metrics['ter']:.4f} lcr={metrics['lcr']:.4f} entropy={metrics['entropy']:.3f}/"
                  f"{metrics['entropy_target']:.3f} eff_rank={metrics['eff_rank']:.2f} {metrics['verdict']}",
                  file=sys.stderr)

    t0 = time.perf_counter()
    eng = ChronosDefragEngine(cfg).fit(ds.train, progress=progress)
    eng.meta.update(dataset=ds.name, features=list(ds.feature_names), data_notes=list(ds.notes))
    check_out_path(args.out, [args.data, args.config], args.force)  # again: it may have appeared while training
    eng.save(args.out)
    summary = {k: v for k, v in eng.fit_summary.items()}
    summary.update(out=args.out, seconds=round(time.perf_counter() - t0, 2))
    print(json.dumps(summary, default=float))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as the single ``error: ...`` line every command uses (subparsers inherit it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    torch.set_num_threads(1)
    parser = _Parser(prog="python -m chronoslib", description="ChronosDefrag command line")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_train(sub)
    from . import bench, evaluate

    bench.add_parser(sub)
    evaluate.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, RuntimeError, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the message held
        print(f"error: {msg}", file=sys.stderr)
        return 2
