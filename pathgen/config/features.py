"""Config sections for patch encoders and feature extraction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from .base import Section


class EncoderSpec(Section):
    kind: Literal["open_clip", "hf_clip"] = Field(
        "open_clip", description="open_clip model or Hugging Face CLIPModel.")
    arch: str | None = Field(None, description="open_clip architecture name, e.g. ViT-B-16, or a "
                                               "model config shipped in pathgen/model_configs.")
    pretrained: str | None = Field(
        None, description="open_clip pretrained tag, local checkpoint path, 'hf-hub:org/name', "
                          "HF id/path for hf_clip, or null for random init.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for "
                                                   "'hf-hub:' / hf_clip weights; default main.")
    force_quick_gelu: bool = Field(False, description="Use QuickGELU (OpenAI-CLIP-initialised "
                                                      "models such as PathGen-CLIP need it).")
    image_size: int | None = Field(None, gt=0, description="Override the model's input size.")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="Inference autocast: auto = bf16/fp16 on GPU, fp32 on CPU.")


class FeaturesConfig(Section):
    encoder: str = Field("tiny-demo", description="Name of an entry in `encoders` (or a built-in).")
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(1, ge=0, description="Patch-reading worker processes.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    dtype: Literal["float32", "float16"] = Field("float32", description="Stored feature dtype.")
    reader: Literal["auto", "tiff", "openslide"] = Field(
        "auto", description="Patch reader: 'tiff' decodes tiled-JPEG TIFF/SVS tiles directly "
                            "(fast), 'openslide' reads aligned regions; 'auto' picks tiff when "
                            "the slide allows it.")
    tile_cache_mb: int = Field(256, ge=8, description="Decoded-tile cache per reading worker (MiB).")


EncodersConfig = dict[str, EncoderSpec]
BUILTIN_ENCODERS: dict[str, dict] = {
    # Tiny random-init ViT from pathgen/model_configs (offline demo/tests).
    "tiny-demo": {"kind": "open_clip", "arch": "pathgen-tiny-vit", "pretrained": None},
    "pathgen-clip": {"kind": "open_clip", "arch": "ViT-B-16",
                     "pretrained": "hf-hub:jamessyx/PathGen-CLIP", "force_quick_gelu": True},
    "pathgen-clip-l": {"kind": "open_clip", "arch": "ViT-L-14-336",
                       "pretrained": "hf-hub:jamessyx/PathGen-CLIP-L", "force_quick_gelu": True},
    "pathgen-clip-l-hf": {"kind": "hf_clip", "pretrained": "jamessyx/pathgenclip-vit-large-patch14-hf"},
    "plip": {"kind": "hf_clip", "pretrained": "vinid/plip"},
    "quiltnet-b-32": {"kind": "open_clip", "arch": "ViT-B-32",
                      "pretrained": "hf-hub:wisdomik/QuiltNet-B-32"},
    "openai-vit-b-16": {"kind": "open_clip", "arch": "ViT-B-16", "pretrained": "openai",
                        "force_quick_gelu": True},
}


def known_encoders(overrides: Mapping[str, EncoderSpec] | None = None) -> dict[str, EncoderSpec]:
    """Every encoder name a run can use: the built-ins, with a config's `encoders:` section
    (``overrides``) added over them. The one list behind ``PathgenConfig.all_encoders``."""
    out = {k: EncoderSpec(**v) for k, v in BUILTIN_ENCODERS.items()}
    out.update(overrides or {})
    return out
