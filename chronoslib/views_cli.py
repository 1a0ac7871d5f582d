"""The ``views`` command: ``python -m chronoslib views M.pt --out V.npz [--events E.jsonl]`` computes a
checkpoint's model views (``views.compute_views``) in its own process and writes them with ``views.save_views``;
``write_views`` is the same step for the ``train`` command's ``--views`` flag, after its checkpoint is saved.

Progress goes through ``progress.EventWriter``: stage "views" once per step (its message names the step and
its seconds), then "done" naming the views file (or "failed" with the message). Uses two processes
(``compute_views(workers=2)``): the command runs after training, when the training core is free again.
Knows nothing about the app.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from .errors import ConfigError
from .progress import EventWriter, Renderer, one_line
from .views import STEPS, compute_views, save_views

WORKERS = 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("views", help="compute a checkpoint's model views (projection, regimes, orderings)")
    p.add_argument("model", help="checkpoint written by `train` (or saved from the app)")
    p.add_argument("--out", required=True, help="views file to write (.npz, atomically)")
    p.add_argument("--events", default="", help="append progress events (JSON lines) to this file")
    p.add_argument("--workers", type=int, default=WORKERS, choices=(1, 2),
                   help="processes: 2 makes the projection next to the orderings (default 2)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_views)


def check_views_path(out: str, others: list[str]) -> None:
    """Refuse a views path that is a folder or one of the command's other files (data, checkpoint, config)."""
    if os.path.isdir(out):
        raise ConfigError(f"views path {out} is a folder; give a file path")
    real = os.path.realpath(out)
    for other in others:
        if other and os.path.realpath(other) == real:
            raise ConfigError(f"views path {out} is also {other}; writing the views would destroy it")


def write_views(engine: Any, out: str, writer: EventWriter, workers: int = WORKERS) -> dict[str, float]:
    """Compute ``engine``'s views and save them to ``out``, one "views" event per step; the seconds per step."""
    n = len(engine.block_latents)
    writer.emit("views", step=0, steps=len(STEPS), message=f"views of {n:,} blocks: {', '.join(STEPS)}")

    def step(what: str, i: int, total: int, info: dict) -> None:
        writer.emit("views", step=i, steps=total, message=f"{what} done ({info['seconds']:.1f} s)")

    v = compute_views(engine, progress=step, workers=workers)
    save_views(out, v)
    return dict(v.seconds)


def cmd_views(args: argparse.Namespace) -> int:
    """Load the checkpoint, compute and save its views; a failure is one "failed" event, then the error."""
    from .engine import ChronosDefragEngine

    t0 = time.perf_counter()
    writer = EventWriter(args.events, () if args.quiet else (Renderer(sys.stderr),))
    try:
        writer.emit("loading", message=f"reading {args.model}")
        check_views_path(args.out, [args.model, args.events])
        eng = ChronosDefragEngine.load(args.model)
        secs = write_views(eng, args.out, writer, args.workers)
        summary = {"out": args.out, "n_blocks": int(len(eng.block_latents)),
                   "seconds": round(time.perf_counter() - t0, 2), "steps": secs}
        writer.emit("done", fraction=1.0, eta_s=0.0, message=f"views written to {args.out}", out=args.model,
                    views=args.out, summary=summary)
    except BaseException as exc:
        writer.emit("failed", message=one_line(exc))
        raise
    finally:
        writer.close()
    print(json.dumps(summary))
    return 0
