"""The single config schema: defaults validate, typos name the key and the allowed values."""

import pytest

from pathgen.config import ConfigError, load_config, validate_config


def test_repo_config_validates():
    cfg = load_config("config.yaml")
    assert cfg.demo.enabled
    um, mpp, px = cfg.tiling.geometry()
    assert px == round(um / mpp)


def test_unknown_key_names_key_and_allowed_values():
    with pytest.raises(ConfigError) as err:
        validate_config({"tiling": {"patch_sise_um": 100}})
    msg = str(err.value)
    assert "tiling.patch_sise_um" in msg
    assert "did you mean 'patch_size_um'" in msg
    assert "tissue_threshold" in msg  # the allowed keys are listed


def test_unknown_top_level_section():
    with pytest.raises(ConfigError, match="unknown key 'tilling'"):
        validate_config({"tilling": {}})


def test_bad_value_names_key():
    with pytest.raises(ConfigError, match="tiling.tissue_threshold"):
        validate_config({"tiling": {"tissue_threshold": 1.5}})


def test_pathgen_preset_geometry():
    cfg = validate_config({"tiling": {"preset": "pathgen"}})
    um, mpp, px = cfg.tiling.geometry()
    assert (px, mpp) == (672, 0.25)
    assert um == pytest.approx(168.0)


def test_magnification_geometry():
    cfg = validate_config({"tiling": {"target_mpp": None, "target_magnification": 20,
                                      "patch_size_um": None, "patch_size_px": 256}})
    assert cfg.tiling.geometry() == (pytest.approx(128.0), 0.5, 256)


def test_unknown_encoder_lists_known():
    with pytest.raises(ConfigError, match="tiny-demo"):
        validate_config({"features": {"encoder": "nope"}})


def test_cli_set_override_and_error(capsys):
    from pathgen.cli import main

    assert main(["validate-config", "--config", "config.yaml", "--set", "tiling.patch_size_um=128"]) == 0
    assert "patch_size_um: 128" in capsys.readouterr().out
    assert main(["validate-config", "--config", "config.yaml", "--set", "tiling.bogus=1"]) == 2
    assert "tiling.bogus" in capsys.readouterr().err


def test_rule_resources_merge_over_defaults():
    cfg = validate_config({"resources": {"extract_features": {"threads": 1}, "my_rule": {"mem_mb": 500}}})
    feats = cfg.rule_resources("extract_features")
    assert feats.threads == 1 and feats.gpu == 1  # the GPU request survives a partial override
    assert cfg.rule_resources("my_rule").mem_mb == 500
    assert cfg.rule_resources("tile").gpu == 0
    with pytest.raises(ConfigError, match="resources.tile.gpus"):
        validate_config({"resources": {"tile": {"gpus": 1}}})
