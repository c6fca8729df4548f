"""Zero-shot output paths and model names: config-only, imported by the Snakefile at parse time."""

from __future__ import annotations

from pathlib import Path

from ..config import PathgenConfig
from ..config.features import EncoderSpec


def zeroshot_dir(cfg: PathgenConfig) -> Path:
    return cfg.results_dir / "eval" / "zeroshot"


def result_path(cfg: PathgenConfig, benchmark: str, model: str, prompting: str) -> Path:
    return zeroshot_dir(cfg) / benchmark / model / f"results_{prompting}.json"


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
                       pretrained=str(cfg.results_dir / "training" / "final.pt"),
                       force_quick_gelu=tc.force_quick_gelu, image_size=tc.image_size)


def model_spec(cfg: PathgenConfig, name: str) -> EncoderSpec:
    known = cfg.all_encoders()
    if name in known:
        return known[name]
    if name == cfg.training.register_as:
        return trained_spec(cfg)
    return cfg.encoder_spec(name)  # raises with the list of known names
