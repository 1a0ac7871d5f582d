"""Hostile checkpoints: one mutated field per case, each refused with a CheckpointError that names the field,
and the engine that attempted the load is bit-for-bit unchanged (attributes and live predictions)."""

import copy
import io
import pickle
import resource

import numpy as np
import pytest
import torch

from chronoslib import ChronosDefragEngine
from chronoslib.checkpoint import checkpoint_bytes, read_checkpoint
from chronoslib.errors import CheckpointError
from chronoslib.registry import LOAD_SPARE_SLOTS, Registry
from tests.conftest import small_config


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16 * 24, 6)).astype(np.float32)
    eng = ChronosDefragEngine(small_config(epochs=1)).fit(x)
    window = rng.standard_normal((16, 6)).astype(np.float32)
    return eng, window


def _fingerprint(eng: ChronosDefragEngine, window: np.ndarray) -> dict:
    pred = eng.predict_live(window, timestamp=float(eng.train_end_tick))
    reg = eng.registry
    return {
        "ids": (id(eng.cfg), id(eng.encoder), id(eng.predictor), id(eng.registry), id(eng.normaliser)),
        "cfg": eng.cfg.to_dict(),
        "encoder": {k: v.clone() for k, v in eng.encoder.state_dict().items()},
        "predictor": {k: v.clone() for k, v in eng.predictor.state_dict().items()},
        "registry": {n: getattr(reg, n).clone() for n in ("latents", "ticks", "ids", "states", "log_weights")}
        | {"head": reg.head, "count": reg.count, "capacity": reg.capacity, "decay": reg.decay},
        "normaliser": eng.normaliser.to_dict(),
        "arrays": (eng.block_latents.copy(), eng.block_starts.copy(), eng.pseudo_timeline.copy()),
        "history": copy.deepcopy(eng.history), "meta": copy.deepcopy(eng.meta),
        "fit_summary": copy.deepcopy(eng.fit_summary), "train_end_tick": eng.train_end_tick,
        "pred": (pred.alpha_prediction.clone(), list(np.asarray(pred.neighbour_indices)),
                 list(np.asarray(pred.neighbour_scores)), pred.regime_confidence),
    }


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def _set(path: str, value):
    def mutate(p: dict) -> None:
        *parents, last = path.split(".")
        d = p
        for k in parents:
            d = d[k]
        if value is _DELETE:
            del d[last]
        else:
            d[last] = value(d[last]) if callable(value) else value
    return mutate


_DELETE = object()


def _nan_first(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


def _first_float(sd: dict) -> str:
    return next(k for k, v in sd.items() if v.is_floating_point() and v.numel())


def _mut_weights(section: str, value: float):
    def mutate(p: dict) -> None:
        k = _first_float(p[section])
        t = p[section][k].clone()
        t.view(-1)[0] = value
        p[section][k] = t
    return mutate


def _swap_first_two(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t[[0, 1]] = t[[1, 0]]
    return t


def _late_tick(p: dict) -> None:
    t = p["registry"]["ticks"].clone()
    t[-1] = float(p["train_end_tick"]) + 100.0
    p["registry"]["ticks"] = t


def _positive_log_weights(p: dict) -> None:
    p["registry"]["log_weights"] = torch.ones(p["registry"]["latents"].shape[0], dtype=torch.float64)


CASES = {
    # field name expected in the message: mutation
    "config missing": ("config", _set("config", _DELETE)),
    "config not a dict": ("config", _set("config", "x")),
    "config bool as int": ("learn_temperature", _set("config.encoder.learn_temperature", 1)),
    "config str for list": ("features", _set("config.data.features", "abc")),
    "config int as str": ("top_k", _set("config.routing.top_k", "8")),
    "config section not dict": ("optim", _set("config.optim", [1, 2])),
    "config latent dims disagree": ("predictor.latent_dim", _set("config.predictor.latent_dim", 99)),
    "encoder NaN weight": ("encoder", _mut_weights("encoder", float("nan"))),
    "predictor inf weight": ("predictor", _mut_weights("predictor", float("inf"))),
    "encoder not a dict": ("encoder", _set("encoder", [1, 2, 3])),
    "encoder missing": ("encoder", _set("encoder", _DELETE)),
    "normaliser zero scale": ("normaliser.scale", _set("normaliser.scale", lambda s: [0.0] + list(s[1:]))),
    "normaliser NaN scale": ("normaliser.scale", _set("normaliser.scale", lambda s: [float("nan")] + list(s[1:]))),
    "normaliser short centre": ("normaliser.centre", _set("normaliser.centre", lambda c: list(c[:-1]))),
    "normaliser bad method": ("normaliser.method", _set("normaliser.method", "minmax")),
    "normaliser not a dict": ("normaliser", _set("normaliser", "x")),
    "registry NaN latents": ("registry.latents", _set("registry.latents", _nan_first)),
    "registry latents wrong dim": ("registry.latents", _set("registry.latents", lambda t: t[:, :-1])),
    "registry latents int dtype": ("registry.latents", _set("registry.latents", lambda t: t.long())),
    "registry decay NaN": ("registry.decay", _set("registry.decay", float("nan"))),
    "registry decay 5": ("registry.decay", _set("registry.decay", 5.0)),
    "registry decay str": ("registry.decay", _set("registry.decay", "0.9")),
    "registry ids out of range": ("registry.ids", _set("registry.ids", lambda t: t + 10_000)),
    "registry ids below -1": ("registry.ids", _set("registry.ids", lambda t: t - 5)),
    "registry ids float": ("registry.ids", _set("registry.ids", lambda t: t.double())),
    "registry capacity below rows": ("registry.capacity", _set("registry.capacity", 3)),
    "registry capacity negative": ("registry.capacity", _set("registry.capacity", -1)),
    "registry capacity str": ("registry.capacity", _set("registry.capacity", "big")),
    "registry capacity bool": ("registry.capacity", _set("registry.capacity", True)),
    "registry states wrong shape": ("registry.states", _set("registry.states", lambda t: t[:, :1])),
    "registry states NaN": ("registry.states", _set("registry.states", _nan_first)),
    "registry ticks NaN": ("registry.ticks", _set("registry.ticks", _nan_first)),
    "registry ticks short": ("registry.ticks", _set("registry.ticks", lambda t: t[:-1])),
    "registry tick in the future": ("registry.ticks", _late_tick),
    "registry missing latents": ("registry.latents", _set("registry.latents", _DELETE)),
    "registry dim": ("registry.dim", _set("registry.dim", 99)),
    "registry block_len 0": ("registry.block_len", _set("registry.block_len", 0)),
    "registry log_weights positive": ("registry.log_weights", _positive_log_weights),
    "registry index_nprobe 0": ("registry.index_nprobe", _set("registry.index_nprobe", 0)),
    "registry not a dict": ("registry", _set("registry", 5)),
    "block_latents wrong shape": ("block_latents", _set("block_latents", lambda t: t[:, :3])),
    "block_latents NaN": ("block_latents", _set("block_latents", _nan_first)),
    "block_latents ints": ("block_latents", _set("block_latents", lambda t: t.long())),
    "block_latents empty": ("block_latents", _set("block_latents", lambda t: t[:0])),
    "block_starts decreasing": ("block_starts", _set("block_starts", _swap_first_two)),
    "block_starts float": ("block_starts", _set("block_starts", lambda t: t.double())),
    "block_starts short": ("block_starts", _set("block_starts", lambda t: t[:-1])),
    "block_starts missing": ("block_starts", _set("block_starts", _DELETE)),
    "block_starts not a tensor": ("block_starts", _set("block_starts", [0, 16])),
    "pseudo_timeline duplicate": ("pseudo_timeline", _set("pseudo_timeline", lambda t: torch.zeros_like(t))),
    "pseudo_timeline out of range": ("pseudo_timeline", _set("pseudo_timeline", lambda t: t * 100)),
    "pseudo_timeline not from 0": ("pseudo_timeline", _set("pseudo_timeline", lambda t: t.flip(0))),
    "history int": ("history", _set("history", 5)),
    "history items not dicts": ("history", _set("history", [1, "x"])),
    "meta str": ("meta", _set("meta", "x")),
    "fit_summary list": ("fit_summary", _set("fit_summary", [1])),
    "train_end_tick str": ("train_end_tick", _set("train_end_tick", "abc")),
    "train_end_tick bool": ("train_end_tick", _set("train_end_tick", True)),
    "train_end_tick inside training": ("train_end_tick", _set("train_end_tick", 5)),
    "train_end_tick float": ("train_end_tick", _set("train_end_tick", 1e30)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_field_is_refused_by_name_and_engine_stays_unchanged(fitted, case):
    eng, window = fitted
    field, mutate = CASES[case]
    payload = copy.deepcopy(eng._payload())
    mutate(payload)
    blob = checkpoint_bytes(payload)
    before = _fingerprint(eng, window)
    with pytest.raises(CheckpointError, match=field.replace(".", r"\.")):
        eng.load_checkpoint(blob)
    with pytest.raises(CheckpointError, match=field.replace(".", r"\.")):
        ChronosDefragEngine.load(blob)
    assert _same(before, _fingerprint(eng, window))


def test_an_untouched_payload_still_loads_and_predicts_identically(fitted):
    eng, window = fitted
    other = ChronosDefragEngine.load(checkpoint_bytes(eng._payload()))
    a, b = _fingerprint(eng, window), _fingerprint(other, window)
    assert _same(a["pred"], b["pred"]) and _same(a["registry"], b["registry"])


def test_a_checkpoint_that_also_stores_predictor_latent_dim_loads_and_predicts_identically(fitted):
    # Checkpoints written while the latent size was stored twice carry config.predictor.latent_dim too.
    eng, window = fitted
    payload = copy.deepcopy(eng._payload())
    payload["config"]["predictor"]["latent_dim"] = eng.cfg.encoder.latent_dim
    other = ChronosDefragEngine.load(checkpoint_bytes(payload))
    assert other.cfg == eng.cfg and _same(_fingerprint(eng, window)["pred"], _fingerprint(other, window)["pred"])


def test_a_huge_declared_capacity_allocates_only_what_the_file_holds(fitted):
    eng, window = fitted
    payload = copy.deepcopy(eng._payload())
    payload["registry"]["capacity"] = 30_000_000   # 30M x (8 + 16 state) floats would be several GB
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux (a peak: never decreases)
    other = ChronosDefragEngine.load(checkpoint_bytes(payload))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    rows = payload["registry"]["latents"].shape[0]
    assert other.registry.latents.shape[0] == max(rows, LOAD_SPARE_SLOTS) < 30_000_000
    assert other.registry.count == rows
    assert grown_mib < 200, f"peak RSS grew by {grown_mib:.0f} MiB"
    assert _same(_fingerprint(eng, window)["pred"], _fingerprint(other, window)["pred"])


def test_registry_from_state_dict_caps_capacity_and_refuses_fewer_slots_than_rows():
    r = Registry(8, 4)
    r.add(torch.nn.functional.normalize(torch.randn(5, 4), dim=1), np.arange(5.0))
    d = r.state_dict() | {"capacity": 10**9}
    assert Registry.from_state_dict(d).latents.shape[0] == LOAD_SPARE_SLOTS
    with pytest.raises(CheckpointError, match="capacity"):
        Registry.from_state_dict(d | {"capacity": 2})


def test_a_failing_warm_up_leaves_the_engine_unchanged(fitted, monkeypatch):
    eng, window = fitted
    blob = checkpoint_bytes(eng._payload())
    before = _fingerprint(eng, window)

    def boom(self):
        raise RuntimeError("index build failed")

    monkeypatch.setattr(Registry, "ensure_index", boom)
    with pytest.raises(CheckpointError, match="index build failed"):
        eng.load_checkpoint(blob)
    monkeypatch.undo()
    assert _same(before, _fingerprint(eng, window))


class _NotATensor:
    pass


def test_a_pickled_object_is_refused_without_advising_weights_only_false():
    buf = io.BytesIO()
    torch.save({"format": "chronosdefrag-checkpoint", "format_version": 1, "x": _NotATensor()}, buf)
    for blob in (buf.getvalue(), pickle.dumps(_NotATensor())):
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(blob)
        assert "weights_only" not in str(info.value) and "trust" not in str(info.value)
