"""Progress events of a training run: the event schema, the events file and the command line's rendering.

One event is one JSON object on one line of an events file, appended and flushed as it happens, so another
process (the app's job queue) can follow a run by reading the file:

    {"t": unix seconds, "stage": one of STAGES, "epoch", "epochs", "step", "steps": int | null,
     "steps_per_s", "eta_s": float | null (eta_s: the rest of the whole run), "fraction": float in [0, 1]
     (the whole run, never decreasing), "losses": {name: float}, "message": str,
     "out", "views", "summary": only on "done"}

``RunTracker`` turns the training loops' progress callback (``training.Progress``) into events, with the
fraction and ETA of the whole run planned from ``training.planned_epochs``. An event with a non-empty message
is worth a line of its own (a stage starting, an epoch ending); in-epoch events carry none. ``Renderer`` shows
events on a terminal (a tqdm bar on a TTY, else one line per stage change and per epoch). ``read_events``
reads the complete lines of a file from an offset. This module imports neither torch nor numpy at module
level: the command line writes its first event before those are loaded. It knows nothing about the app.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import IO, Any

STAGES = ("starting", "loading", "encoder", "predictor", "pseudo_timeline", "registry", "saving", "views",
          "done", "failed")

# Reference costs on one core of the 2-core development machine (1 torch thread, 64 x 6 blocks, batch 32),
# used only to shape the fraction and the ETA before a stage has been measured; the measured encoder speed
# rescales all of them. Seconds per optimiser step, or per training block for the per-block stages.
REF_ENCODER_STEP_S = 0.010      # 16 anchor pairs, two views
REF_PREDICTOR_STEP_S = 0.0075   # 32 windows of 8 latents
REF_TIMELINE_BLOCK_S = 0.5e-3   # encoding every block + the refined pseudo-timeline (7.9 s at 15,625 blocks)
REF_REGISTRY_BLOCK_S = 0.05e-3  # predictor states, the registry, warm-up
REF_SAVING_BLOCK_S = 0.01e-3

Sink = Callable[[dict[str, Any]], None]


def make_event(stage: str, *, fraction: float = 0.0, epoch: int | None = None, epochs: int | None = None,
               step: int | None = None, steps: int | None = None, steps_per_s: float | None = None,
               eta_s: float | None = None, losses: dict[str, float] | None = None, message: str = "",
               **extra: Any) -> dict[str, Any]:
    """One event dict in the schema above (``extra``: out / views / summary on "done")."""
    if stage not in STAGES:
        raise ValueError(f"unknown progress stage {stage!r} (known: {', '.join(STAGES)})")
    return {"t": time.time(), "stage": stage, "epoch": epoch, "epochs": epochs, "step": step, "steps": steps,
            "steps_per_s": _num(steps_per_s), "eta_s": _num(eta_s), "fraction": min(max(float(fraction), 0.0), 1.0),
            "losses": {k: float(v) for k, v in (losses or {}).items()}, "message": message, **extra}


def _num(v: float | None) -> float | None:
    return None if v is None or v != v or v in (float("inf"), float("-inf")) else round(float(v), 3)


class EventWriter:
    """Appends each event to ``path`` (one line, flushed; no file when ``path`` is empty) and hands it to the
    sinks (a ``Renderer``). The fraction of successive events never decreases."""

    def __init__(self, path: str | None = None, sinks: tuple[Sink, ...] = ()) -> None:
        self.path, self.sinks = path or "", sinks
        self.fraction = 0.0
        self._f: IO[str] | None = None
        if self.path:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 — kept open for the whole run

    def emit(self, stage: str, **fields: Any) -> dict[str, Any]:
        """Build, write and pass on one event; returns it."""
        fields["fraction"] = self.fraction = max(self.fraction, float(fields.get("fraction", self.fraction)))
        ev = make_event(stage, **fields)
        if self._f is not None:
            # One write per line: a reader sees a whole line or (while it is being written) a partial one,
            # which read_events leaves for the next read.
            self._f.write(json.dumps(ev, default=float, separators=(",", ":")) + "\n")
            self._f.flush()
        for sink in self.sinks:
            sink(ev)
        return ev

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()


def read_events(path: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The events in the complete lines of ``path`` from byte ``offset`` on, and the offset after the last
    complete line (a half-written last line waits for the next read). A missing file is no events yet."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a killed writer: skip it, keep reading
    return events, offset + end


class RunTracker:
    """The progress callback of one fit (``training.Progress``), turned into events of the whole run.

    Stages it knows: encoder_batch / encoder (epoch ends), pseudo_timeline, predictor_batch / predictor;
    others are ignored. After the last encoder epoch it announces the pseudo-timeline stage, after the last
    predictor epoch the registry stage (the engine reports neither start). ``stage`` announces the rest.
    """

    def __init__(self, writer: EventWriter, epochs: tuple[int, int], steps: tuple[int, int], n_blocks: int,
                 started: float | None = None) -> None:
        """epochs, steps: (encoder, predictor) epochs and steps per epoch; started: ``time.monotonic()`` when
        the run began (default now), so the time spent reading the data counts in the fraction."""
        self.writer, self.clock = writer, time.monotonic
        self.started = time.monotonic() if started is None else started
        (self.enc_epochs, self.pred_epochs), (self.enc_steps, self.pred_steps) = epochs, steps
        self.ref_s = {"encoder": self.enc_epochs * self.enc_steps * REF_ENCODER_STEP_S,
                      "pseudo_timeline": n_blocks * REF_TIMELINE_BLOCK_S,
                      "predictor": self.pred_epochs * self.pred_steps * REF_PREDICTOR_STEP_S,
                      "registry": n_blocks * REF_REGISTRY_BLOCK_S + 0.2, "saving": n_blocks * REF_SAVING_BLOCK_S + 0.1}
        self.order = list(self.ref_s)
        self.speed = 1.0       # measured / reference seconds, from the encoder's steps/s once it runs
        self.current = "encoder"

    def eta(self, stage: str, stage_left_s: float | None = None) -> float:
        """Seconds left in the run: the rest of ``stage`` (measured, else its reference share) + later stages."""
        i = self.order.index(stage) if stage in self.order else -1
        later = sum(self.ref_s[s] for s in self.order[i + 1:]) * self.speed
        if stage_left_s is None:
            stage_left_s = self.ref_s.get(stage, 0.0) * self.speed
        return max(stage_left_s, 0.0) + later

    def _fraction(self, eta: float) -> float:
        elapsed = self.clock() - self.started
        return min(0.99, elapsed / max(elapsed + eta, 1e-9))

    def stage(self, stage: str, message: str = "", left_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """Announce ``stage`` (registry, saving, views...): it starts, or with ``left_s=0`` it has ended."""
        self.current = stage
        eta = self.eta(stage, left_s)
        return self.writer.emit(stage, fraction=self._fraction(eta), eta_s=eta, message=message, **fields)

    def __call__(self, stage: str, step: int, total: int, metrics: dict[str, Any]) -> None:
        if stage in ("encoder_batch", "predictor_batch"):
            self._in_epoch(stage.split("_")[0], step, total, metrics)
        elif stage == "encoder":
            self._epoch_end("encoder", step, total, metrics, self.enc_steps,
                            f"loss={metrics['loss']:.4f} infonce={metrics['infonce']:.4f} ter={metrics['ter']:.4f} "
                            f"lcr={metrics['lcr']:.4f} entropy={metrics['entropy']:.3f}/"
                            f"{metrics['entropy_target']:.3f} eff_rank={metrics['eff_rank']:.2f} {metrics['verdict']}")
            if step == total:
                self.stage("pseudo_timeline", "encoding the blocks and building the pseudo-timeline")
        elif stage == "pseudo_timeline":
            self.stage("pseudo_timeline", f"pseudo-timeline built in {metrics.get('seconds', 0.0):.1f} s", left_s=0)
        elif stage == "predictor":
            self._epoch_end("predictor", step, total, metrics, self.pred_steps, f"loss={metrics['loss']:.5f}")
            if step == total:
                self.stage("registry", "predictor states and the routing registry")

    def _in_epoch(self, stage: str, step: int, total: int, m: dict[str, Any]) -> None:
        rate, left = m.get("steps_per_s"), m.get("eta_s")
        if stage == "encoder" and rate:
            self.speed = (1.0 / rate) / REF_ENCODER_STEP_S
        self.current = stage
        eta = self.eta(stage, left)
        losses = {k: m[k] for k in ("loss", "infonce", "ter", "lcr") if k in m}
        self.writer.emit(stage, fraction=self._fraction(eta), epoch=m.get("epoch"), epochs=m.get("epochs"),
                         step=step, steps=total, steps_per_s=rate, eta_s=eta, losses=losses)

    def _epoch_end(self, stage: str, epoch: int, epochs: int, m: dict[str, Any], steps: int, text: str) -> None:
        seconds = float(m.get("seconds") or 0.0)
        rate = steps / seconds if seconds > 0 else None
        left = (epochs - epoch) * seconds if seconds > 0 else None
        eta = self.eta(stage, left)
        # the collapse statistics too: the app's live loss chart draws the TER target and its banner the verdict
        losses = {k: float(m[k]) for k in ("loss", "infonce", "ter", "lcr", "entropy", "entropy_target", "mean_cos",
                                           "eff_rank") if k in m}
        health = {"verdict": m["verdict"], "collapsed": bool(m.get("collapsed"))} if "verdict" in m else {}
        self.writer.emit(stage, fraction=self._fraction(eta), epoch=epoch, epochs=epochs, step=steps, steps=steps,
                         steps_per_s=rate, eta_s=eta, losses=losses, message=f"{stage} epoch {epoch}/{epochs} {text}",
                         **health)


class Renderer:
    """Shows events on ``stream``: a tqdm bar of the whole run on a TTY (event messages printed above it),
    else one line per event that has a message. "starting", "loading" and "failed" print nothing: before
    training starts, and on failure, the command's own output is the only line."""

    QUIET_STAGES = ("starting", "loading", "failed")

    def __init__(self, stream: IO[str], tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.bar: Any = None

    def __call__(self, ev: dict[str, Any]) -> None:
        if ev["stage"] in self.QUIET_STAGES:
            return
        if not self.tty:
            if ev["message"]:
                print(f"[{ev['stage']}] {ev['message']}", file=self.stream, flush=True)
            return
        self._draw(ev)

    def _draw(self, ev: dict[str, Any]) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=1000, file=self.stream, unit="‰", dynamic_ncols=True,
                            bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix}")
        if ev["message"]:
            self.bar.write(f"[{ev['stage']}] {ev['message']}", file=self.stream)
        where = ev["stage"] + (f" {ev['epoch']}/{ev['epochs']}" if ev.get("epoch") else "")
        self.bar.set_description_str(where, refresh=False)
        eta = ev.get("eta_s")
        loss = ev["losses"].get("loss")
        self.bar.set_postfix_str(" ".join(p for p in (f"loss {loss:.4f}" if loss is not None else "",
                                                      f"ETA {eta:.0f} s" if eta is not None else "") if p),
                                 refresh=False)
        self.bar.update(max(0, round(ev["fraction"] * 1000) - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def one_line(exc: BaseException) -> str:
    """An exception as the one line the command prints (its message's whitespace collapsed)."""
    if isinstance(exc, SystemExit):
        return f"stopped (exit status {exc.code})"
    return " ".join(str(exc).split()) or type(exc).__name__
