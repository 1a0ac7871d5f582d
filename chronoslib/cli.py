"""Argument parsing and the ``train`` command; ``bench`` and ``evaluate`` live in their own modules.

``main(argv)`` returns an exit status; user errors (ValueError / RuntimeError / OSError from the library)
become one line on stderr and status 2. ``train`` reports progress through ``chronoslib.progress``: events
appended to ``--events`` (the app's training job follows that file) and a bar or lines on stderr; its last
stdout line is the JSON summary. Torch is imported only once the first events are written.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .progress import one_line

if TYPE_CHECKING:
    import numpy as np

    from .config import DefragConfig
    from .progress import EventWriter

OTHER_COMMANDS = ("bench", "evaluate", "views_cli")   # modules with an add_parser(sub) of their own


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
    p.add_argument("--epochs", type=int, default=None, help="encoder epochs (default: from --budget)")
    p.add_argument("--predictor-epochs", type=int, default=None, help="predictor epochs (default: from --budget)")
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
    p.add_argument("--budget", type=int, default=None,
                   help="blocks seen per stage when the epochs are derived (default 60000: epochs = budget / "
                        "training blocks, 1-30 encoder, 1-20 predictor)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for training (default 1, or CHRONOS_JOB_THREADS: on a busy 2-core "
                        "machine a second thread is slower)")
    p.add_argument("--nproc", type=int, default=1,
                   help="train as N local processes (data-parallel encoder, torchrun); torchrun itself can "
                        "also start the command (--nnodes, --rdzv-endpoint, ...)")
    p.add_argument("--events", default="", help="append progress events (JSON lines) to this file")
    p.add_argument("--views", default="", help="after saving, also compute the model's views into this .npz "
                   "(what the app's Manifold / Timeline pages draw; see `views`)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr (the JSON summary still prints)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing --out file that is not a ChronosDefrag checkpoint")
    p.set_defaults(func=cmd_train)


MAX_EPOCHS = 10_000       # far above any useful run; a typo like 1e9 epochs is refused instead of running forever
MAX_BUDGET = 10**9        # windows; far above any useful run
MAX_THREADS = 256
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
    """Train with progress events (``--events``) and the terminal rendering; a failure is one "failed" event.

    SIGTERM stops the run like an error (the checkpoint is written atomically, so --out is never partial)."""
    from .progress import EventWriter, Renderer

    args.started = time.monotonic()
    lead = os.environ.get("RANK", "0") == "0"       # under torchrun only rank 0 reports, renders and saves
    writer = EventWriter(args.events if lead else "", () if args.quiet or not lead else (Renderer(sys.stderr),))
    writer.emit("starting", message=f"training on {args.data}")
    previous = signal.signal(signal.SIGTERM, _terminate) if _in_main_thread() else None
    try:
        if args.nproc > 1 and _world_size() == 1:
            return _launch(args, writer)
        return _train(args, writer)
    except BaseException as exc:  # user errors (main prints them), SIGTERM, a bug: the events say why it stopped
        writer.emit("failed", message=one_line(exc))
        raise
    finally:
        writer.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _world_size() -> int:
    from .distributed import env_world_size

    return env_world_size()


def _launch(args: argparse.Namespace, writer: EventWriter) -> int:
    """--nproc N: the same command as N local ranks under torchrun (rank 0 writes the events from here on)."""
    from .distributed import launch_local

    _bounded("--nproc", args.nproc, 1, MAX_THREADS)
    argv, skip = [], False
    for a in args.argv:                            # the command line without --nproc
        if skip or a.startswith("--nproc="):
            skip = False
            continue
        skip = a == "--nproc"
        if not skip:
            argv.append(a)
    code = launch_local(args.nproc, argv)
    if code != 0 and args.events:
        from .progress import read_events

        events, _ = read_events(args.events)
        if not events or events[-1]["stage"] != "failed":  # a rank died without saying why
            writer.emit("failed", message=f"a training process exited with status {code}")
    return code


def _encoder_worker(cfg: DefragConfig, data: np.ndarray) -> None:
    """Ranks > 0 of a data-parallel run: the encoder's share of the training, nothing else (rank 0 builds the
    pseudo-timeline, the predictor and the registry from the same encoder weights, then saves)."""
    import torch

    from .engine import ChronosDefragEngine
    from .training import train_encoder

    eng = ChronosDefragEngine(cfg)
    _, _, blocks = eng._normalised_blocks(eng._as_array(data))
    encoder, _ = eng._initial_models(False, blocks.device)
    train_encoder(encoder, blocks, cfg, torch.Generator().manual_seed(cfg.seed), [], None)  # as fit seeds it


def _threads(flag: int | None) -> int:
    """--threads, else CHRONOS_JOB_THREADS, else 1 (measured: 2 threads lose to 1 on a busy 2-core machine)."""
    if flag is None:
        env = os.environ.get("CHRONOS_JOB_THREADS", "").strip()
        if env and not env.isdigit():
            raise UsageError(f"CHRONOS_JOB_THREADS must be a whole number of threads, got {env!r}")
        flag = int(env) if env else 1
    _bounded("--threads", flag, 1, MAX_THREADS)
    return flag


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _train(args: argparse.Namespace, writer: EventWriter) -> int:
    from .config import DefragConfig

    _bounded("--epochs", args.epochs, 1, MAX_EPOCHS)
    _bounded("--predictor-epochs", args.predictor_epochs, 1, MAX_EPOCHS)
    _bounded("--budget", args.budget, 1, MAX_BUDGET)
    args.threads = _threads(args.threads)
    _bounded("--seed", args.seed, 0, MAX_SEED)
    check_out_path(args.out, [args.data, args.config], args.force)
    if args.views:
        from .views_cli import check_views_path

        check_views_path(args.views, [args.data, args.config, args.out])   # before training, not after
    base = DefragConfig.from_json_file(args.config) if args.config else DefragConfig()
    cfg = base.with_overrides(encoder_epochs=args.epochs, predictor_epochs=args.predictor_epochs,
                              window_budget=args.budget, block_len=args.block_len, batch_size=args.batch_size,
                              latent_dim=args.latent_dim, seed=args.seed, normalize=args.normalize)
    writer.emit("loading", message=f"reading {args.data}")
    import torch  # the first events are out before torch and pandas load (seconds on a busy machine)

    torch.set_num_threads(args.threads)
    from .data import load_for_training
    from .engine import ChronosDefragEngine
    from .progress import RunTracker
    from .training import encoder_steps, planned_epochs, predictor_steps

    features = [c.strip() for c in args.features.split(",") if c.strip()]
    transforms = [c.strip() for c in args.transforms.split(",") if c.strip()]
    ds, cfg = load_for_training(args.data, cfg, features=features, timestamp_col=args.timestamp,
                                label_col=args.label, holdout=args.holdout, transforms=transforms,
                                price_col=args.price, high_col=args.high, low_col=args.low, volume_col=args.volume,
                                vol_window=args.vol_window, nan_policy=args.nan_policy, sort=args.sort,
                                no_timestamp=args.no_timestamp)
    cfg.validate()
    world, backend = _world_size(), "none"
    if world > 1:
        from . import distributed

        backend = distributed.init_from_env(cfg.device)
        if distributed.rank() != 0:
            _encoder_worker(cfg, ds.train)
            distributed.shutdown()
            return 0
    n, bs = ds.split // cfg.encoder.block_len, cfg.optim.batch_size
    epochs = planned_epochs(cfg, n)
    tracker = RunTracker(writer, epochs, (encoder_steps(n, bs, max(2, world)), predictor_steps(n, bs)), n,
                         args.started)
    ranks = (f" x {world} ranks ({backend})" if world > 1 else "") + "".join(f"; {x}" for x in ds.notes)
    tracker.stage("encoder", f"{ds.name}: {len(ds.features)} ticks x {len(ds.feature_names)} features "
                  f"{ds.feature_names}, training on the first {ds.split} ({n} blocks): {epochs[0]} encoder and "
                  f"{epochs[1]} predictor epochs, {args.threads} thread(s){ranks}",
                  epoch=0, epochs=epochs[0], step=0, steps=tracker.enc_steps)
    t0 = time.perf_counter()
    eng = ChronosDefragEngine(cfg).fit(ds.train, progress=tracker)
    eng.meta.update(dataset=ds.name, features=list(ds.feature_names), data_notes=list(ds.notes))
    if world > 1:
        from . import distributed

        distributed.shutdown()
    check_out_path(args.out, [args.data, args.config], args.force)  # again: it may have appeared while training
    tracker.stage("saving", f"writing {args.out}")
    eng.save(args.out)
    summary = {k: v for k, v in eng.fit_summary.items()}
    summary.update(out=args.out, seconds=round(time.perf_counter() - t0, 2), encoder_epochs=epochs[0],
                   predictor_epochs=epochs[1], threads=args.threads)
    views = None  # the views file, once computed after the checkpoint (--views)
    if args.views:
        from .views_cli import write_views

        summary["view_seconds"] = write_views(eng, args.views, writer)
        views = args.views
    writer.emit("done", fraction=1.0, eta_s=0.0, message=f"saved {args.out} ({summary['seconds']:.1f} s)",
                out=args.out, views=views, summary=json.loads(json.dumps(summary, default=float)))
    print(json.dumps(summary, default=float))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as the single ``error: ...`` line every command uses (subparsers inherit it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="python -m chronoslib", description="ChronosDefrag command line")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _add_train(sub)
    # The other commands' modules import torch at once: a train run skips them, so its first event is out fast.
    if argv[:1] != ["train"]:
        import torch

        torch.set_num_threads(1)
        for name in OTHER_COMMANDS:
            importlib.import_module(f".{name}", __package__).add_parser(sub)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
