"""Configuration dataclasses: defaults, validation and a JSON-safe round trip.

``DefragConfig`` groups five sub-configs (encoder, routing, predictor, optim, data) plus ``seed`` and
``device``. Fields are plain Python scalars / lists so ``to_dict`` output can go straight into JSON and into a
checkpoint (which is loaded with ``weights_only=True``). Validation raises ``ConfigError`` (a ``ValueError``),
never ``assert``, so it survives ``python -O``. ``with_overrides`` is the one way to change settings by flat
name (the command line, the evaluation and the app's Train form use it). The latent size is one field,
``encoder.latent_dim``; configs that also carry ``predictor.latent_dim`` load when the two agree. This module
knows nothing about torch or data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


@dataclass
class EncoderConfig:
    input_dim: int = 6          # F: features per tick
    block_len: int = 64         # L: ticks per block
    hidden_dim: int = 32        # conv channels
    latent_dim: int = 32        # D: size of the L2-normalised latent
    proj_dim: int = 32          # size of the projection head used by InfoNCE
    n_layers: int = 3           # residual blocks (dilations 1, 2, 4, ...)
    kernel_size: int = 3
    temperature: float = 0.2    # initial InfoNCE temperature (learnable, stored as a log)
    learn_temperature: bool = True
    entropy_weight: float = 1.0     # lambda of Temporal Entropy Regularisation
    continuity_weight: float = 0.5  # lambda of Latent Continuity Regularisation
    jitter_std: float = 0.1     # Gaussian jitter, in units of the normalised features
    max_shift: int = -1         # largest cyclic shift in ticks; -1 means block_len - 1


@dataclass
class RoutingConfig:
    registry_capacity: int = 65536
    top_k: int = 8
    decay: float = 0.9          # SPD delta in (0, 1]
    chain_method: str = "auto"  # auto (the default ordering) | greedy | refined | regime | exact | approx
    approx_threshold: int = 50_000  # auto switches to the approximate chain above this many blocks
    index_threshold: int = 200_000  # registries with at least this many entries are queried through an IVF index
    index_nprobe: int = 64          # IVF cells scored exactly per query (more: higher recall, slower)
    index_cells: int = 0            # IVF cells; 0 = about sqrt(registry entries)


@dataclass
class PredictorConfig:
    """The predictor's own sizes; its input is the encoder's latent (``encoder.latent_dim``), stored once there."""

    hidden_dim: int = 64
    n_layers: int = 2
    window: int = 8             # pseudo-timeline positions seen per training example
    forecast_dim: int = 8       # leading latent coordinates predicted for the next position


@dataclass
class OptimConfig:
    """Optimiser settings. Epoch counts of 0 are derived from ``window_budget`` by ``training.planned_epochs``:
    epochs = window_budget // training blocks, at least 1 and at most 30 (encoder) / 20 (predictor), so a
    small series gets many passes and a long one few; a count > 0 is used exactly."""

    encoder_epochs: int = 0     # 0 = derived from window_budget
    predictor_epochs: int = 0   # 0 = derived from window_budget
    window_budget: int = 60_000  # blocks (windows) seen per stage when the epochs are derived
    batch_size: int = 32
    lr: float = 1e-2
    predictor_lr: float = 3e-3
    weight_decay: float = 1e-5
    grad_clip: float = 1.0


@dataclass
class DataConfig:
    """How raw input becomes the (T, F) array the encoder sees; stored so a live window is treated alike."""

    normalize: str = "zscore"   # zscore | robust | none  (fitted on the training span only)
    features: list[str] = field(default_factory=list)   # chosen column names (empty = all numeric)
    transforms: list[str] = field(default_factory=list)  # feature engineering recipe (empty = raw)
    timestamp_col: str = ""
    label_col: str = ""
    nan_policy: str = "refuse"  # refuse | ffill
    price_col: str = ""
    # Feature-engineering sources and result (see chronoslib.features); empty strings mean "not used".
    high_col: str = ""
    low_col: str = ""
    volume_col: str = ""
    vol_window: int = 20        # ticks in the rolling_vol (log returns) and rel_volume (volumes) windows
    feature_names: list[str] = field(default_factory=list)  # model feature names in order (transforms, then raw)


_SECTIONS = {
    "encoder": EncoderConfig,
    "routing": RoutingConfig,
    "predictor": PredictorConfig,
    "optim": OptimConfig,
    "data": DataConfig,
}


@dataclass
class DefragConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 42
    device: str = "auto"        # auto | cpu | cuda

    # ------------------------------------------------------------------ validation
    def validate(self) -> DefragConfig:
        """Raise ``ConfigError`` naming the first bad field; return self when all is well."""
        e, r, p, o, d = self.encoder, self.routing, self.predictor, self.optim, self.data
        _positive_int("encoder.input_dim", e.input_dim)
        _positive_int("encoder.block_len", e.block_len, minimum=2)
        _positive_int("encoder.hidden_dim", e.hidden_dim)
        _positive_int("encoder.latent_dim", e.latent_dim, minimum=2)
        _positive_int("encoder.proj_dim", e.proj_dim)
        _positive_int("encoder.n_layers", e.n_layers)
        _positive_int("encoder.kernel_size", e.kernel_size)
        _positive_float("encoder.temperature", e.temperature)
        if e.temperature > 10:
            raise ConfigError(f"encoder.temperature must be in (0, 10], got {e.temperature}")
        _nonneg_float("encoder.entropy_weight", e.entropy_weight)
        _nonneg_float("encoder.continuity_weight", e.continuity_weight)
        _nonneg_float("encoder.jitter_std", e.jitter_std)
        if not isinstance(e.max_shift, int) or e.max_shift < -1 or e.max_shift >= e.block_len:
            raise ConfigError(
                f"encoder.max_shift must be -1 (auto) or in [0, block_len={e.block_len}), got {e.max_shift!r}"
            )
        _positive_int("routing.registry_capacity", r.registry_capacity, minimum=4)
        _positive_int("routing.top_k", r.top_k)
        if not (isinstance(r.decay, (int, float)) and 0 < r.decay <= 1):
            raise ConfigError(f"routing.decay (SPD delta) must be in (0, 1], got {r.decay!r}")
        _choice("routing.chain_method", r.chain_method, ("auto", "greedy", "refined", "regime", "exact", "approx"))
        _positive_int("routing.approx_threshold", r.approx_threshold)
        _positive_int("routing.index_threshold", r.index_threshold)
        _positive_int("routing.index_nprobe", r.index_nprobe)
        _nonneg_int("routing.index_cells", r.index_cells)
        _positive_int("predictor.hidden_dim", p.hidden_dim)
        _positive_int("predictor.n_layers", p.n_layers)
        _positive_int("predictor.window", p.window)
        _positive_int("predictor.forecast_dim", p.forecast_dim)
        if p.forecast_dim > e.latent_dim:
            raise ConfigError(
                f"predictor.forecast_dim ({p.forecast_dim}) cannot exceed encoder.latent_dim ({e.latent_dim})"
            )
        _nonneg_int("optim.encoder_epochs", o.encoder_epochs)
        _nonneg_int("optim.predictor_epochs", o.predictor_epochs)
        _positive_int("optim.window_budget", o.window_budget)
        _positive_int("optim.batch_size", o.batch_size, minimum=2)
        _positive_float("optim.lr", o.lr)
        _positive_float("optim.predictor_lr", o.predictor_lr)
        _nonneg_float("optim.weight_decay", o.weight_decay)
        _positive_float("optim.grad_clip", o.grad_clip)
        _choice("data.normalize", d.normalize, ("zscore", "robust", "none"))
        _choice("data.nan_policy", d.nan_policy, ("refuse", "ffill"))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        _choice("device", self.device, ("auto", "cpu", "cuda"))
        return self

    # ------------------------------------------------------------------ round trip
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe nested dict (lists are copied)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DefragConfig:
        """Inverse of ``to_dict``. Unknown keys are an error (they are usually typos); missing keys take defaults."""
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a dict, got {type(d).__name__}")
        top_fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - top_fields
        if unknown:
            raise ConfigError(f"unknown config keys: {sorted(unknown)} (known: {sorted(top_fields)})")
        d = _fold_predictor_latent_dim(d)
        kwargs: dict[str, Any] = {}
        for name, sub_cls in _SECTIONS.items():
            sub = d.get(name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"config section '{name}' must be a dict, got {type(sub).__name__}")
            known = {f.name for f in dataclasses.fields(sub_cls)}
            bad = set(sub) - known
            if bad:
                raise ConfigError(f"unknown keys in config section '{name}': {sorted(bad)}")
            for f in dataclasses.fields(sub_cls):
                if f.name in sub:
                    _check_type(f"{name}.{f.name}", f.type, sub[f.name])
            kwargs[name] = sub_cls(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in sub.items()})
        for name, typ in (("seed", "int"), ("device", "str")):
            if name in d:
                _check_type(name, typ, d[name])
                kwargs[name] = d[name]
        return cls(**kwargs).validate()

    @classmethod
    def from_json_file(cls, path: str) -> DefragConfig:
        """``from_dict`` of a JSON file, with errors that name the file."""
        import json

        try:
            with open(path) as f:
                d = json.load(f)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(d)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def copy(self) -> DefragConfig:
        return DefragConfig.from_dict(self.to_dict())

    def with_overrides(self, **flat: Any) -> DefragConfig:
        """A validated copy with some settings replaced, named flat; self is left unchanged.

        A name is a field only one section has (``block_len``, ``latent_dim``, ``encoder_epochs``, ``seed``) or
        ``section.field`` for any field (``**{"predictor.hidden_dim": 16}``); ``hidden_dim`` and ``n_layers``
        exist in both encoder and predictor, so they need their section. ``None`` means "not given" (an unset
        command-line flag) and changes nothing. A new ``latent_dim`` without a ``forecast_dim`` lowers
        ``forecast_dim`` to fit. Values are type-checked and the result validated as in ``from_dict``.

        >>> cfg = DefragConfig().with_overrides(block_len=16, latent_dim=4, encoder_epochs=None)
        >>> cfg.encoder.block_len, cfg.encoder.latent_dim, cfg.predictor.forecast_dim, cfg.optim.encoder_epochs
        (16, 4, 4, 0)
        """
        given = {_override_target(name): value for name, value in flat.items() if value is not None}
        d = self.to_dict()
        for (section, name), value in given.items():
            (d[section] if section else d)[name] = value
        latent = given.get(("encoder", "latent_dim"))
        if (isinstance(latent, int) and not isinstance(latent, bool)
                and ("predictor", "forecast_dim") not in given):
            d["predictor"]["forecast_dim"] = min(d["predictor"]["forecast_dim"], latent)
        return DefragConfig.from_dict(d)

    def architecture(self) -> dict[str, Any]:
        """The fields that decide tensor shapes: two configs that differ here cannot share weights."""
        e, p = self.encoder, self.predictor
        return {
            "encoder.input_dim": e.input_dim, "encoder.block_len": e.block_len,
            "encoder.hidden_dim": e.hidden_dim, "encoder.latent_dim": e.latent_dim,
            "encoder.proj_dim": e.proj_dim, "encoder.n_layers": e.n_layers,
            "encoder.kernel_size": e.kernel_size, "predictor.hidden_dim": p.hidden_dim,
            "predictor.n_layers": p.n_layers, "predictor.window": p.window,
            "predictor.forecast_dim": p.forecast_dim,
        }


def _flat_names() -> dict[str, list[tuple[str, str]]]:
    """Every field's flat name -> the (section, field) pairs it could mean ("" = top level)."""
    names: dict[str, list[tuple[str, str]]] = {"seed": [("", "seed")], "device": [("", "device")]}
    for section, sub_cls in _SECTIONS.items():
        for f in dataclasses.fields(sub_cls):
            names.setdefault(f.name, []).append((section, f.name))
            names[f"{section}.{f.name}"] = [(section, f.name)]
    return names


_FLAT_NAMES = _flat_names()


def _override_target(name: str) -> tuple[str, str]:
    """(section, field) of a ``with_overrides`` name, or a ConfigError for an unknown or ambiguous one."""
    targets = _FLAT_NAMES.get(name)
    if targets is None:
        import difflib

        close = difflib.get_close_matches(name, list(_FLAT_NAMES), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown config setting {name!r}{hint}")
    if len(targets) > 1:
        raise ConfigError(f"config setting {name!r} is in several sections; name one of "
                          f"{', '.join(f'{s}.{f}' for s, f in targets)}")
    return targets[0]


def _fold_predictor_latent_dim(d: dict[str, Any]) -> dict[str, Any]:
    """Configs written before ``latent_dim`` was stored once (checkpoints and JSON files) also carry it as
    ``predictor.latent_dim``. That copy is folded into ``encoder.latent_dim``: equal values, or a predictor
    value alone, load; two different values are a ConfigError naming both."""
    pred, enc = d.get("predictor"), d.get("encoder", {})
    if not isinstance(pred, dict) or "latent_dim" not in pred or not isinstance(enc, dict):
        return d  # nothing to fold, or a malformed section that from_dict's own checks name
    value = pred["latent_dim"]
    _check_type("predictor.latent_dim", "int", value)
    if "latent_dim" in enc and enc["latent_dim"] != value:
        raise ConfigError(f"encoder.latent_dim ({enc['latent_dim']!r}) and predictor.latent_dim ({value!r}) "
                          "disagree; the latent size is one setting, encoder.latent_dim: drop predictor.latent_dim")
    rest = {k: v for k, v in pred.items() if k != "latent_dim"}
    return {**d, "encoder": {**enc, "latent_dim": enc.get("latent_dim", value)}, "predictor": rest}


def _positive_int(name: str, v: Any, minimum: int = 1) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {v!r}")


def _nonneg_int(name: str, v: Any) -> None:
    _positive_int(name, v, minimum=0)


def _positive_float(name: str, v: Any) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0 or v != v or v == float("inf"):
        raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")


def _nonneg_float(name: str, v: Any) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0 or v == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")


def _choice(name: str, v: Any, options: tuple[str, ...]) -> None:
    if v not in options:
        raise ConfigError(f"{name} must be one of {list(options)}, got {v!r}")


def _check_type(name: str, typ: Any, v: Any) -> None:
    """Refuse a value whose JSON type differs from the field's declared one (bool is not an int, a string is not
    a list), so a typo in a config file is an error naming the field instead of a silent coercion."""
    typ = str(getattr(typ, "__name__", typ))
    if typ == "bool":
        ok = isinstance(v, bool)
    elif typ == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif typ == "float":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif typ == "str":
        ok = v is None or isinstance(v, str)  # None: an unset optional column, as checkpoints have stored it
    elif typ.startswith("list"):
        ok = isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)
        typ = "list of strings"
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{name} must be {typ}, got {type(v).__name__} {v!r:.80}")
