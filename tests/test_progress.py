"""The training budget (planned_epochs), the in-epoch progress calls and the progress events (chronoslib.progress)."""

import io
import json

import numpy as np
import pytest
import torch

from chronoslib import ChronosDefragEngine, DefragConfig
from chronoslib import training as tr
from chronoslib.errors import ConfigError
from chronoslib.progress import STAGES, EventWriter, Renderer, RunTracker, read_events
from tests.conftest import small_config


# ---------------------------------------------------------------------- the budget
def test_derived_epochs_keep_the_sample_at_30_20_and_shrink_with_the_series():
    cfg = DefragConfig()
    assert cfg.optim.encoder_epochs == 0 and cfg.optim.predictor_epochs == 0          # derived by default
    assert tr.planned_epochs(cfg, 128) == (30, 20)       # the app's sample split (160 blocks, 20 % held out)
    assert tr.planned_epochs(cfg, 160) == (30, 20)
    b = cfg.optim.window_budget
    assert tr.planned_epochs(cfg, 15_625) == (b // 15_625,) * 2   # 1M ticks of 64
    assert tr.planned_epochs(cfg, b // 7) == (7, 7)
    assert tr.planned_epochs(cfg, 10**8) == (1, 1)       # never below one epoch
    assert tr.planned_epochs(cfg, 1) == (30, 20)          # never above the caps


def test_explicit_epochs_are_used_exactly_and_the_budget_is_validated():
    cfg = DefragConfig().with_overrides(encoder_epochs=30, predictor_epochs=20)
    assert tr.planned_epochs(cfg, 15_625) == (30, 20)     # e.g. an older checkpoint's explicit 30 / 20
    cfg = DefragConfig().with_overrides(encoder_epochs=45, window_budget=1000)
    assert tr.planned_epochs(cfg, 100) == (45, 10)
    old = DefragConfig().to_dict()
    old["optim"].pop("window_budget")                     # a config written before the budget existed
    old["optim"].update(encoder_epochs=30, predictor_epochs=20)
    assert tr.planned_epochs(DefragConfig.from_dict(old), 15_625) == (30, 20)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ConfigError, match="optim.window_budget"):
            DefragConfig().with_overrides(window_budget=bad)


def test_the_loops_run_the_planned_epochs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16 * 40, 6)).astype(np.float32)
    cfg = small_config()
    cfg.optim.encoder_epochs = cfg.optim.predictor_epochs = 0
    cfg.optim.window_budget = 100                        # 40 blocks -> 100 // 40 = 2 epochs each
    eng = ChronosDefragEngine(cfg).fit(x)
    stages = [h["stage"] for h in eng.history]
    assert stages.count("encoder") == 2 and stages.count("predictor") == 2
    assert all(h["epochs"] == 2 for h in eng.history)


@pytest.mark.parametrize("n", [2, 3, 17, 18, 34, 50])
@pytest.mark.parametrize("batch", [2, 3, 16, 32])
def test_anchor_batches_use_every_anchor_once_and_step_counts_match(n, batch):
    groups = tr.anchor_batches(n, batch, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(groups).tolist()) == list(range(n - 1))
    assert len(groups) == tr.encoder_steps(n, batch)
    if batch >= 4:                                          # batch 2 / 3 is one pair per batch by design
        assert len(groups) == 1 or min(g.numel() for g in groups) >= 2
    assert tr.predictor_steps(n, batch) == len(torch.arange(n - 1).split(max(2, batch)))


# ---------------------------------------------------------------------- in-epoch progress
def _fit_calls(monkeypatch, interval):
    monkeypatch.setattr(tr, "REPORT_INTERVAL_S", interval)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16 * 40, 6)).astype(np.float32)
    calls = []
    eng = ChronosDefragEngine(small_config(epochs=2)).fit(x, progress=lambda *c: calls.append(c))
    return eng, x, calls


def test_in_epoch_calls_report_every_step_when_unthrottled(monkeypatch):
    eng, _, calls = _fit_calls(monkeypatch, 0.0)
    enc = [c for c in calls if c[0] == "encoder_batch"]
    steps = tr.encoder_steps(40, 16)
    assert [(c[3]["epoch"], c[1]) for c in enc] == [(e, s) for e in (1, 2) for s in range(1, steps + 1)]
    for _, _, total, m in enc:
        assert total == steps and m["epochs"] == 2
        assert {"loss", "infonce", "ter", "lcr", "steps_per_s", "eta_s"} <= set(m)
        assert m["steps_per_s"] > 0 and m["eta_s"] >= 0
    assert enc[-1][3]["eta_s"] == 0.0                        # the last step leaves nothing of the stage
    # loss is this epoch's running mean: at the epoch's last step it equals the epoch record's mean
    first_epoch = next(h for h in eng.history if h["stage"] == "encoder")
    assert enc[steps - 1][3]["loss"] == pytest.approx(first_epoch["loss"], rel=1e-6)
    pred = [c for c in calls if c[0] == "predictor_batch"]
    assert len(pred) == 2 * tr.predictor_steps(40, 16) and set(pred[0][3]) >= {"epoch", "epochs", "loss", "eta_s"}
    order = [c[0] for c in calls]
    assert order.index("encoder_batch") < order.index("encoder") < order.index("pseudo_timeline") \
        < order.index("predictor_batch") < order.index("predictor")


def test_in_epoch_calls_are_throttled_to_each_epochs_first_step(monkeypatch):
    _, _, calls = _fit_calls(monkeypatch, 1e9)
    enc = [(c[3]["epoch"], c[1]) for c in calls if c[0] == "encoder_batch"]
    pred = [(c[3]["epoch"], c[1]) for c in calls if c[0] == "predictor_batch"]
    assert enc == [(1, 1), (2, 1)] and pred == [(1, 1), (2, 1)]
    assert [c[1:3] for c in calls if c[0] == "encoder"] == [(1, 2), (2, 2)]   # per-epoch calls as before


def test_progress_reporting_does_not_change_what_is_learned(monkeypatch):
    eng, x, _ = _fit_calls(monkeypatch, 0.0)
    quiet = ChronosDefragEngine(small_config(epochs=2)).fit(x)
    assert np.array_equal(eng.block_latents, quiet.block_latents)
    assert np.array_equal(eng.pseudo_timeline, quiet.pseudo_timeline)


# ---------------------------------------------------------------------- events
def test_events_round_trip_and_a_partial_last_line_waits(tmp_path):
    path = tmp_path / "run" / "events.jsonl"
    w = EventWriter(str(path))
    w.emit("starting", message="hello")
    w.emit("encoder", fraction=0.4, epoch=1, epochs=3, step=5, steps=9, steps_per_s=12.5, eta_s=3.0,
           losses={"loss": np.float32(0.5)})
    w.emit("encoder", fraction=0.2)                          # a lower fraction is held at the previous one
    events, off = read_events(str(path))
    assert [e["stage"] for e in events] == ["starting", "encoder", "encoder"]
    assert events[1]["losses"] == {"loss": 0.5} and events[1]["epoch"] == 1 and events[1]["steps"] == 9
    assert [e["fraction"] for e in events] == [0.0, 0.4, 0.4] and off == path.stat().st_size
    assert set(events[0]) == {"t", "stage", "epoch", "epochs", "step", "steps", "steps_per_s", "eta_s", "fraction",
                              "losses", "message"}
    done = json.dumps({"stage": "done", "fraction": 1.0})
    with open(path, "a") as f:                               # another writer, caught mid-line
        f.write(done[:10])
    more, off2 = read_events(str(path), off)
    assert more == [] and off2 == off
    with open(path, "a") as f:
        f.write(done[10:] + "\n")
    more, off3 = read_events(str(path), off2)
    assert [e["stage"] for e in more] == ["done"] and off3 == path.stat().st_size
    w.close()
    assert read_events(str(tmp_path / "missing.jsonl"), 7) == ([], 7)


def test_a_torn_line_is_skipped_and_unknown_stages_are_refused(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"stage": "starting"}\n{"stage": "enc\n{"stage": "done"}\n')
    events, _ = read_events(str(path))
    assert [e["stage"] for e in events] == ["starting", "done"]
    with pytest.raises(ValueError, match="unknown progress stage"):
        EventWriter().emit("encoder_batch")


def _track(calls):
    sink: list[dict] = []
    t = RunTracker(EventWriter(sinks=(sink.append,)), (2, 1), (3, 2), 40)
    for c in calls:
        t(*c)
    t.stage("saving", "writing")
    return sink


def test_the_tracker_turns_training_calls_into_whole_run_events():
    enc = {"loss": 1.0, "infonce": 0.5, "ter": 0.1, "lcr": 0.2}
    rec = {**enc, "entropy": 1.0, "entropy_target": 1.2, "eff_rank": 3.0, "verdict": "healthy", "seconds": 0.3}
    calls = [("encoder_batch", 1, 3, {**enc, "epoch": 1, "epochs": 2, "steps_per_s": 10.0, "eta_s": 0.5}),
             ("encoder", 1, 2, rec), ("something_new", 1, 1, {}),
             ("encoder_batch", 1, 3, {**enc, "epoch": 2, "epochs": 2, "steps_per_s": 10.0, "eta_s": 0.2}),
             ("encoder", 2, 2, rec), ("pseudo_timeline", 1, 1, {"seconds": 0.1}),
             ("predictor_batch", 1, 2, {"loss": 0.1, "epoch": 1, "epochs": 1, "steps_per_s": 20.0, "eta_s": 0.05}),
             ("predictor", 1, 1, {"loss": 0.1, "seconds": 0.1})]
    ev = _track(calls)
    assert [e["stage"] for e in ev] == ["encoder", "encoder", "encoder", "encoder", "pseudo_timeline",
                                        "pseudo_timeline", "predictor", "predictor", "registry", "saving"]
    fr = [e["fraction"] for e in ev]
    assert fr == sorted(fr) and all(0 <= f < 1 for f in fr)
    assert all(e["eta_s"] >= 0 for e in ev) and ev[0]["losses"] == enc and ev[0]["steps_per_s"] == 10.0
    epoch_ends = [e for e in ev if e["message"].startswith("encoder epoch")]
    assert [e["epoch"] for e in epoch_ends] == [1, 2] and "healthy" in epoch_ends[0]["message"]
    assert ev[0]["message"] == ""                           # in-epoch events carry no line of their own


def test_the_plain_renderer_prints_one_line_per_message_and_the_bar_draws():
    out = io.StringIO()
    r = Renderer(out, tty=False)
    w = EventWriter(sinks=(r,))
    w.emit("starting", message="quiet before training")
    w.emit("encoder", fraction=0.1, losses={"loss": 1.0})
    w.emit("encoder", fraction=0.5, epoch=1, epochs=2, message="encoder epoch 1/2 loss=1")
    w.emit("failed", message="quiet: the command prints the error")
    assert out.getvalue().splitlines() == ["[encoder] encoder epoch 1/2 loss=1"]
    bar_out = io.StringIO()
    w = EventWriter(sinks=(Renderer(bar_out, tty=True),))
    for stage in STAGES[2:-2]:
        w.emit(stage, fraction=0.5, eta_s=3.0, losses={"loss": 0.25}, message=f"{stage} line")
    w.emit("done", fraction=1.0, message="saved")
    w.close()
    text = bar_out.getvalue()
    assert "100%" in text and "[saving] saving line" in text and "loss 0.2500" in text
