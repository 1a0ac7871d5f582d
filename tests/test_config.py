"""DefragConfig: defaults, validation errors that name the field, JSON round trip."""

import json

import pytest

from chronoslib import ConfigError, DefragConfig


def test_defaults_validate_and_match_the_spec():
    cfg = DefragConfig().validate()
    assert cfg.encoder.input_dim == 6 and cfg.encoder.block_len == 64
    assert cfg.optim.grad_clip == 1.0
    assert cfg.encoder.latent_dim == cfg.predictor.latent_dim
    assert cfg.device == "auto"


def test_json_round_trip_gives_an_equal_config():
    cfg = DefragConfig()
    cfg.encoder.block_len = 32
    cfg.routing.decay = 0.5
    cfg.data.features = ["a", "b"]
    cfg.seed = 9
    again = DefragConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.data.features is not cfg.data.features  # copied, not shared


def test_latent_dim_mismatch_is_a_clear_error():
    cfg = DefragConfig()
    cfg.encoder.latent_dim = 16
    with pytest.raises(ConfigError, match="encoder.latent_dim must match predictor.latent_dim"):
        cfg.validate()


@pytest.mark.parametrize("section,field,value,fragment", [
    ("encoder", "block_len", 1, "encoder.block_len"),
    ("encoder", "temperature", 0.0, "encoder.temperature"),
    ("encoder", "entropy_weight", -1.0, "encoder.entropy_weight"),
    ("routing", "decay", 1.5, "routing.decay"),
    ("routing", "chain_method", "magic", "routing.chain_method"),
    ("optim", "batch_size", 1, "optim.batch_size"),
    ("optim", "lr", float("nan"), "optim.lr"),
    ("predictor", "forecast_dim", 99, "forecast_dim"),
    ("data", "normalize", "minmax", "data.normalize"),
])
def test_bad_values_name_the_field(section, field, value, fragment):
    cfg = DefragConfig()
    setattr(getattr(cfg, section), field, value)
    with pytest.raises(ConfigError, match=fragment):
        cfg.validate()


def test_bad_device_and_seed_are_refused():
    with pytest.raises(ConfigError, match="device"):
        DefragConfig(device="tpu").validate()
    with pytest.raises(ConfigError, match="seed"):
        DefragConfig(seed="1").validate()


def test_unknown_keys_are_refused_not_ignored():
    d = DefragConfig().to_dict()
    d["encoder"]["latnet_dim"] = 8
    with pytest.raises(ConfigError, match="latnet_dim"):
        DefragConfig.from_dict(d)
    with pytest.raises(ConfigError, match="unknown config keys"):
        DefragConfig.from_dict({"encodr": {}})


def test_architecture_lists_shape_fields():
    a, b = DefragConfig(), DefragConfig()
    b.optim.lr = 0.1
    assert a.architecture() == b.architecture()
    b.encoder.hidden_dim = 8
    assert a.architecture() != b.architecture()


def test_config_json_file_round_trip_and_errors_name_the_file(tmp_path):
    cfg = DefragConfig()
    cfg.encoder.block_len = 16
    good = tmp_path / "cfg.json"
    good.write_text(json.dumps(cfg.to_dict()))
    assert DefragConfig.from_json_file(str(good)) == cfg
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json is not valid JSON"):
        DefragConfig.from_json_file(str(bad))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"encoder": {"block_len": 0}}))
    with pytest.raises(ConfigError, match="wrong.json: encoder.block_len"):
        DefragConfig.from_json_file(str(wrong))
