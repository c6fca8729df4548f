"""Make architectures and initial weights resolvable by open_clip."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import open_clip

from ..config.base import ConfigError

log = logging.getLogger(__name__)
PACKAGE_CONFIGS = Path(__file__).resolve().parent.parent / "model_configs"


def register_model_configs(extra: list[str | Path] = ()) -> None:
    """Register pathgen/model_configs (and any extra JSON files/folders) with open_clip."""
    try:  # pathgen.encoders registers the shipped configs on import (when present)
        importlib.import_module("pathgen.encoders")
    except ImportError:
        pass
    if PACKAGE_CONFIGS.is_dir():
        open_clip.add_model_config(PACKAGE_CONFIGS)
    for item in extra:
        path = Path(item)
        if not path.exists():
            raise ConfigError(f"training.model_config_file {path} does not exist")
        open_clip.add_model_config(path)


def check_arch(arch: str) -> None:
    if arch.startswith(("hf-hub:", "local-dir:")):
        return
    if arch not in open_clip.list_models():
        raise ConfigError(f"training.arch '{arch}' is not an open_clip architecture; known include "
                          f"{', '.join(open_clip.list_models()[:8])}, ... — or add its JSON with "
                          "training.model_config_file")


def resolve_pretrained(value: str | None, arch: str) -> str | None:
    """open_clip tag / local file pass through; 'hf-hub:org/name[/file]' is downloaded to a
    file so the run keeps `--model <arch>` (open_clip ignores --pretrained for hf-hub models)."""
    if not value:
        return None
    if value.startswith("hf-hub:"):
        from ..encoders.base import EncoderError
        from ..encoders.weights import resolve_hf_hub

        try:
            return resolve_hf_hub(value, schema=False).target
        except EncoderError as err:
            raise ConfigError(f"training.pretrained {value}: {err}") from None
    path = Path(value)
    if path.suffix in (".pt", ".pth", ".bin", ".safetensors") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"training.pretrained checkpoint {path} does not exist")
        return str(path)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if value not in tags:
        raise ConfigError(f"training.pretrained '{value}' is not a file or a tag of {arch} "
                          f"(tags: {', '.join(tags) or 'none'})")
    return value
