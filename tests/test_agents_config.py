"""The `agents:` config section: off by default, checked keys, and no self-training cycle."""

import pytest

from pathgen.config import ConfigError, validate_config

BASE = {"demo": {"enabled": True}}
TRAINED = "results/agents/describe/model"


def test_defaults_off_and_unknown_keys_named():
    cfg = validate_config(BASE)
    assert cfg.agents.enabled is False and cfg.agents.agents == ["describe", "revise"]
    assert cfg.agents.data.corrupter == "rules" and cfg.agents.train.lora_target_modules[0] == "q_proj"
    with pytest.raises(ConfigError, match="agents.train.lora_rank.*did you mean 'lora_r'"):
        validate_config({**BASE, "agents": {"train": {"lora_rank": 8}}})
    with pytest.raises(ConfigError, match="module names such as q_proj"):
        validate_config({**BASE, "agents": {"train": {"lora_target_modules": [".*q_proj"]}}})


@pytest.mark.parametrize("captioning", [
    {"backend": "transformers", "transformers": {"model": TRAINED}},
    {"agents": {"describe": {"backend": "transformers", "model": TRAINED}}},
])
def test_captioning_with_the_models_this_run_trains_is_refused(captioning):
    validate_config({**BASE, "captioning": captioning})  # a later run, agents off: fine
    with pytest.raises(ConfigError, match="agents.enabled: false"):
        validate_config({**BASE, "captioning": captioning, "agents": {"enabled": True}})
    validate_config({**BASE, "agents": {"enabled": True}})  # training alone: fine
