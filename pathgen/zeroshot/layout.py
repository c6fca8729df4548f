"""Zero-shot model names and specs: config-only, imported by the Snakefile at parse time.

Paths are pathgen.paths.Layout's (zeroshot_dir, zeroshot_result, ...); the two functions below
are delegates kept for pathgen/zeroshot/cli.py and pathgen.zeroshot's lazy exports."""

from __future__ import annotations

from pathlib import Path

from ..config import PathgenConfig
from ..config.features import EncoderSpec
from ..paths import Layout


def zeroshot_dir(cfg: PathgenConfig) -> Path:
    """Delegate of Layout.zeroshot_dir."""
    return Layout(cfg).zeroshot_dir


def result_path(cfg: PathgenConfig, benchmark: str, model: str, prompting: str) -> Path:
    """Delegate of Layout.zeroshot_result."""
    return Layout(cfg).zeroshot_result(benchmark, model, prompting)


def model_names(cfg: PathgenConfig) -> list[str]:
    zs = cfg.evaluation.zeroshot
    if zs.models:
        return list(zs.models)
    names = [cfg.training.register_as] if cfg.training.enabled else []
    return names + [n for n in [cfg.features.encoder] if n not in names]


def trained_spec(cfg: PathgenConfig) -> EncoderSpec:
    """The encoder the training stage produces (results/training/final.pt)."""
    tc = cfg.training
    return EncoderSpec(kind="open_clip", arch=tc.arch,
                       pretrained=str(Layout(cfg).training_final),
                       force_quick_gelu=tc.force_quick_gelu, image_size=tc.image_size)


def model_spec(cfg: PathgenConfig, name: str) -> EncoderSpec:
    known = cfg.all_encoders()
    if name in known:
        return known[name]
    if name == cfg.training.register_as:
        return trained_spec(cfg)
    return cfg.encoder_spec(name)  # raises with the list of known names
