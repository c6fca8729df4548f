"""WSI MIL task presets (pathgen/data/mil_presets.yaml): classes, label maps and split
settings of CAMELYON16, BRACS, TCGA-NSCLC and TCGA-RCC. Part of the config: the schema fills
a task's `preset:` from here at parse time (pathgen.mil.preset_tasks builds the labels)."""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources

import yaml

from .base import ConfigError

# Task keys a preset may fill when the task leaves them out.
TASK_KEYS = ("classes", "folds", "val_fraction")


@lru_cache(maxsize=1)
def presets() -> dict[str, dict]:
    text = resources.files("pathgen.data").joinpath("mil_presets.yaml").read_text()
    return yaml.safe_load(text)


def get_preset(name: str) -> dict:
    table = presets()
    key = str(name).lower().replace("-", "_")
    if key not in table:
        hint = difflib.get_close_matches(key, list(table), n=1)
        raise ConfigError(f"unknown MIL preset {name!r}" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                          + f"; known: {', '.join(table)} (pathgen/data/mil_presets.yaml)")
    return {"name": key, **table[key]}


def fill_task(data: dict) -> dict:
    """A task mapping with its preset's classes/folds/val_fraction filled in where absent."""
    if not isinstance(data, dict) or not data.get("preset"):
        return data
    p = get_preset(data["preset"])
    return {**{k: p[k] for k in TASK_KEYS if k in p}, **data}
