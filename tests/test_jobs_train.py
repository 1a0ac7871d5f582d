"""The real ``python -m chronoslib train`` through the job queue: the argv ``jobs.train_argv`` builds from a Data
page recipe makes the CLI build the same dataset (feature names, split, values: the checkpoint's normaliser is
the training span's statistics and its block latents are what the model makes of our ``ds.train``), for the
labelled sample and for an engineered-features recipe on an OHLCV upload; progress events arrive in order; a bad
recipe fails with the data layer's message."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from chronoslib import ChronosDefragEngine, DefragConfig
from chronoslib.data import SAMPLE_DIR, SAMPLES, build_dataset, load_sample, read_table
from chronoslib.errors import ConfigError
from chronoslib.jobs import CONFIG, JOB_DIR_TOKEN, JobQueue, train_argv
from chronoslib.scaling import Normaliser

SMALL = dict(encoder_epochs=1, predictor_epochs=1, block_len=32, latent_dim=8, forecast_dim=4,
             **{"encoder.hidden_dim": 16})


@pytest.fixture(scope="module")
def queue(tmp_path_factory):
    q = JobQueue(str(tmp_path_factory.mktemp("jobs")), max_concurrent=1, threads=1, poll_s=0.05)
    yield q
    q.close()


def _recipe(ds, sort=False) -> dict:
    c = ds.config
    return {"timestamp_col": c.timestamp_col, "label_col": c.label_col, "feature_cols": list(c.features),
            "transforms": list(c.transforms), "price_col": c.price_col, "high_col": c.high_col,
            "low_col": c.low_col, "volume_col": c.volume_col, "vol_window": c.vol_window,
            "nan_policy": c.nan_policy, "holdout": 1 - ds.split / len(ds.features), "sort": sort}


def _train(queue, ds, data_name, content, sort=False, **overrides):
    cfg = ds.configure(DefragConfig().with_overrides(**(SMALL | overrides)))
    argv = train_argv(os.path.join(JOB_DIR_TOKEN, data_name), os.path.join(JOB_DIR_TOKEN, CONFIG),
                      _recipe(ds, sort), threads=1)
    job = queue.submit(argv, owner="test", label=ds.name,
                       files={data_name: content, CONFIG: json.dumps(cfg.to_dict()).encode()})
    return queue.wait(job.id, 240)


def _same_dataset(eng: ChronosDefragEngine, ds) -> None:
    c = eng.cfg.data
    assert c.feature_names == ds.feature_names and c.features == ds.config.features
    assert (c.transforms, c.timestamp_col, c.label_col, c.price_col, c.nan_policy) == (
        ds.config.transforms, ds.config.timestamp_col, ds.config.label_col, ds.config.price_col,
        ds.config.nan_policy)
    assert eng.train_end_tick == ds.split and eng.cfg.encoder.input_dim == ds.features.shape[1]
    used = ds.train[: ds.split // eng.cfg.encoder.block_len * eng.cfg.encoder.block_len]   # whole blocks
    mine_c, mine_s = Normaliser(eng.cfg.data.normalize).fit(used).arrays()
    got_c, got_s = eng.normaliser.arrays()
    np.testing.assert_allclose(got_c, mine_c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_s, mine_s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eng.embed(ds.train), eng.block_latents, atol=2e-5)


def test_the_sample_trains_through_the_queue_on_the_same_dataset_with_progress_events(queue):
    ds = load_sample(next(iter(SAMPLES)))
    job = _train(queue, ds, SAMPLES[ds.name], os.path.join(SAMPLE_DIR, SAMPLES[ds.name]))
    assert job.state == "done", job.message
    events = queue.events(job.id)
    stages = [e["stage"] for e in events]
    assert stages[-1] == "done" and events[-1]["out"] == job.out
    assert stages.index("encoder") < stages.index("predictor") < stages.index("done")
    ends = [e for e in events if e["stage"] == "encoder" and e["epoch"] and e["message"]]   # epoch ends
    assert [e["epoch"] for e in ends] == [1] and ends[0]["verdict"] in ("healthy", "collapsing", "collapsed")
    assert {"loss", "infonce", "ter", "lcr", "entropy", "entropy_target", "mean_cos", "eff_rank"} <= set(
        ends[0]["losses"])
    fractions = [e["fraction"] for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(e["t"] >= events[0]["t"] for e in events)
    eng = ChronosDefragEngine.load(job.out)
    _same_dataset(eng, ds)
    assert len(eng.block_latents) == ds.split // 32 and eng.cfg.encoder.latent_dim == 8


def _ohlcv(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    spread = np.abs(rng.normal(0, 0.005, n)) * close
    ts = pd.date_range("2024-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S")
    df = pd.DataFrame({"time": ts, "Close": close, "High": close + spread, "Low": close - spread,
                       "Volume": rng.integers(100, 10_000, n), "other": rng.normal(size=n)})
    return df.iloc[rng.permutation(n)]   # out of time order: the recipe sorts


def test_an_engineered_features_recipe_on_an_upload_builds_the_same_dataset_in_the_job(queue, tmp_path):
    path = tmp_path / "prices.csv"
    _ohlcv().to_csv(path, index=False)
    raw = path.read_bytes()
    ds = build_dataset(read_table(str(path), "prices.csv"), "prices.csv", timestamp_col="time",
                       feature_cols=["other"], label_col="", price_col="Close",
                       transforms=["log_return", "hl_range", "log_volume", "rolling_vol"], holdout=0.25,
                       vol_window=15, sort=True, nan_policy="ffill")
    job = _train(queue, ds, "prices.csv", raw, sort=True)
    assert job.state == "done", job.message
    eng = ChronosDefragEngine.load(job.out)
    _same_dataset(eng, ds)
    assert (eng.cfg.data.high_col, eng.cfg.data.low_col, eng.cfg.data.volume_col, eng.cfg.data.vol_window) == (
        "High", "Low", "Volume", 15)


def test_a_recipe_the_file_cannot_satisfy_fails_with_the_data_layers_message(queue, tmp_path):
    ds = load_sample(next(iter(SAMPLES)))
    recipe = _recipe(ds) | {"feature_cols": ["f0", "no_such_column"]}
    argv = train_argv(os.path.join(JOB_DIR_TOKEN, "d.csv"), os.path.join(JOB_DIR_TOKEN, CONFIG), recipe)
    job = queue.submit(argv, owner="test", label="bad",
                       files={"d.csv": os.path.join(SAMPLE_DIR, SAMPLES[ds.name]), CONFIG: b"{}"})
    job = queue.wait(job.id, 120)
    assert job.state == "failed" and "no_such_column" in job.message and "Traceback" not in job.message


def test_train_argv_passes_every_choice_and_refuses_what_a_flag_cannot_carry():
    argv = train_argv("d.csv", "c.json", {"timestamp_col": "", "label_col": "", "feature_cols": ["a", "b"],
                                          "transforms": [], "nan_policy": "ffill", "holdout": 0.1, "sort": True,
                                          "price_col": "p"}, threads=2)
    assert argv[1:5] == ["-m", "chronoslib", "train", "d.csv"]
    flags = " ".join(argv)
    for part in ("--no-timestamp", "--features a,b", "--nan-policy ffill", "--holdout 0.1",
                 "--sort", "--price p", "--threads 2", "--config c.json"):
        assert part in flags
    assert "--transforms" not in flags and "--high" not in flags and "--label" not in flags
    with pytest.raises(ConfigError, match="comma"):
        train_argv("d.csv", "c.json", {"feature_cols": ["a,b"]})
    with pytest.raises(ConfigError, match="holdout"):
        train_argv("d.csv", "c.json", {"holdout": 1.0})
