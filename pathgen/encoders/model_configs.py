"""pathgen's own open_clip architectures (pathgen/model_configs/*.json), registered with
open_clip on first use."""

from __future__ import annotations

from pathlib import Path

MODEL_CONFIG_DIR = Path(__file__).resolve().parent.parent / "model_configs"
_configs_added = False


def ensure_model_configs() -> None:
    """Make open_clip know pathgen's architectures (idempotent)."""
    global _configs_added
    if not _configs_added:
        import open_clip
        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _configs_added = True
