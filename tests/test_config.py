"""DefragConfig: defaults, validation errors that name the field, JSON round trip."""

import json

import pytest

from chronoslib import ConfigError, DefragConfig


def test_defaults_validate_and_match_the_spec():
    cfg = DefragConfig().validate()
    assert cfg.encoder.input_dim == 6 and cfg.encoder.block_len == 64
    assert cfg.optim.grad_clip == 1.0
    assert cfg.encoder.latent_dim == 32 and not hasattr(cfg.predictor, "latent_dim")
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


def test_latent_dim_is_one_setting_and_forecast_dim_must_fit_in_it():
    cfg = DefragConfig()
    cfg.encoder.latent_dim = 16
    assert cfg.validate().to_dict()["encoder"]["latent_dim"] == 16
    assert "latent_dim" not in cfg.to_dict()["predictor"]
    cfg.encoder.latent_dim = 4
    with pytest.raises(ConfigError, match=r"forecast_dim \(8\) cannot exceed encoder.latent_dim \(4\)"):
        cfg.validate()


def test_a_config_that_also_stores_predictor_latent_dim_loads_when_the_two_agree():
    d = DefragConfig().to_dict()
    d["encoder"]["latent_dim"] = d["predictor"]["latent_dim"] = 16
    cfg = DefragConfig.from_dict(d)
    assert cfg.encoder.latent_dim == 16 and "latent_dim" not in cfg.to_dict()["predictor"]
    alone = DefragConfig.from_dict({"predictor": {"latent_dim": 12}})
    assert alone.encoder.latent_dim == 12


def test_a_config_whose_two_latent_dims_disagree_is_a_clear_error(tmp_path):
    d = DefragConfig().to_dict()
    d["encoder"]["latent_dim"], d["predictor"]["latent_dim"] = 16, 8
    with pytest.raises(ConfigError, match=r"encoder.latent_dim \(16\) and predictor.latent_dim \(8\) disagree"):
        DefragConfig.from_dict(d)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="old.json: encoder.latent_dim"):
        DefragConfig.from_json_file(str(path))
    d["predictor"]["latent_dim"] = "16"
    with pytest.raises(ConfigError, match="predictor.latent_dim must be int"):
        DefragConfig.from_dict(d)


def test_with_overrides_returns_a_validated_copy_and_leaves_the_original_alone():
    base = DefragConfig()
    cfg = base.with_overrides(block_len=16, encoder_epochs=3, seed=7, normalize="robust", lr=0.05,
                              batch_size=None, **{"predictor.hidden_dim": 8, "encoder.hidden_dim": 12})
    assert (cfg.encoder.block_len, cfg.optim.encoder_epochs, cfg.seed, cfg.data.normalize) == (16, 3, 7, "robust")
    assert (cfg.optim.lr, cfg.optim.batch_size) == (0.05, base.optim.batch_size)
    assert (cfg.predictor.hidden_dim, cfg.encoder.hidden_dim) == (8, 12)
    assert base == DefragConfig()
    assert base.with_overrides() == base and base.with_overrides() is not base


def test_with_overrides_lowers_forecast_dim_to_a_smaller_latent_dim_unless_both_are_given():
    assert DefragConfig().with_overrides(latent_dim=4).predictor.forecast_dim == 4
    assert DefragConfig().with_overrides(latent_dim=64).predictor.forecast_dim == 8
    with pytest.raises(ConfigError, match="cannot exceed encoder.latent_dim"):
        DefragConfig().with_overrides(latent_dim=4, forecast_dim=6)


@pytest.mark.parametrize("flat,fragment", [
    ({"blok_len": 8}, "unknown config setting 'blok_len' \\(did you mean block_len"),
    ({"hidden_dim": 8}, "'hidden_dim' is in several sections; name one of encoder.hidden_dim, predictor.hidden_dim"),
    ({"encoder.window": 8}, "unknown config setting 'encoder.window'"),
    ({"block_len": 1}, "encoder.block_len must be an integer >= 2"),
    ({"learn_temperature": 1}, "encoder.learn_temperature must be bool"),
    ({"seed": "7"}, "seed must be int"),
])
def test_with_overrides_refuses_bad_names_and_values_by_name(flat, fragment):
    with pytest.raises(ConfigError, match=fragment):
        DefragConfig().with_overrides(**flat)


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
