"""Config sections for patch encoders and feature extraction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_serializer, model_validator

from .base import Section

# Kinds without a text tower: they serve features (selection's prototypes, MIL) but nothing
# that embeds text (prompt retrieval, zero-shot, the caption alignment filter).
VISION_ONLY_KINDS = ("timm", "hf_vision")
# What a refusal suggests instead (built-in CLIPs with a text tower).
TEXT_CLIP_HINT = "a CLIP such as pathgen-clip or plip"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EncoderSpec(Section):
    kind: Literal["open_clip", "hf_clip", "timm", "hf_vision"] = Field(
        "open_clip", description="open_clip model, Hugging Face CLIPModel, a timm model "
                                 "(timm.create_model) or a transformers AutoModel vision backbone; "
                                 "timm and hf_vision have no text tower.")
    arch: str | None = Field(None, description="open_clip architecture name, e.g. ViT-B-16, or a "
                                               "model config shipped in pathgen/model_configs; "
                                               "timm: the architecture built for random init or a "
                                               "local weights file (e.g. vit_large_patch16_224); "
                                               "hf_vision: a transformers model_type (e.g. dinov2) "
                                               "for random init.")
    pretrained: str | None = Field(
        None, description="open_clip pretrained tag, local checkpoint path, 'hf-hub:org/name', "
                          "HF id/path for hf_clip/hf_vision, or null for random init.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for "
                                                   "'hf-hub:' / hf_clip / hf_vision weights; default main.")
    force_quick_gelu: bool = Field(False, description="Use QuickGELU (OpenAI-CLIP-initialised "
                                                      "models such as PathGen-CLIP need it).")
    image_size: int | None = Field(None, gt=0, description="Override the model's input size.")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="Inference autocast: auto = bf16/fp16 on GPU, fp32 on CPU.")
    # -- vision backbones (timm / hf_vision): what their model cards document ------------------
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="timm: keyword arguments of timm.create_model (a model card's, e.g. UNI2-h's "
                    "img_size, patch_size, depth, ..., mlp_layer: SwiGLUPacked, act_layer: SiLU; "
                    "layer names are looked up in timm.layers, then torch.nn); hf_vision: config "
                    "overrides.")
    pooling: Literal["model", "cls", "mean_patch", "cls_mean_patch"] = Field(
        "model", description="Embedding rule (timm / hf_vision): model = the model's own output "
                             "(timm model(x) with num_classes=0, transformers pooler_output); cls = "
                             "class token; mean_patch = mean of the patch tokens (register tokens "
                             "excluded); cls_mean_patch = concat(class token, mean of patch tokens), "
                             "e.g. Virchow2.")
    mean: tuple[float, float, float] | None = Field(
        None, description="Normalisation mean; null = the model's (timm pretrained_cfg, "
                          "transformers image processor, open_clip config).")
    std: tuple[float, float, float] | None = Field(None, description="Normalisation std; null = "
                                                                     "the model's.")
    resize: int | None = Field(None, gt=0, description="Resize the patch's shorter side to this, "
                                                       "then centre-crop to the input size (e.g. "
                                                       "256 -> 224); null = the model's (no crop "
                                                       "when unknown).")
    interpolation: Literal["bicubic", "bilinear"] | None = Field(
        None, description="Resize interpolation of `preprocess`; null = the model's (bicubic "
                          "when unknown).")
    normalize: bool | None = Field(
        None, description="L2-normalise image embeddings; null = yes for CLIPs (their cosine "
                          "space), no for timm/hf_vision (the card's raw features, what MIL "
                          "papers train on). Selection and dedup normalise by themselves.")
    embed_dim: int | None = Field(None, gt=0, description="Embedding dimension the model card "
                                                          "documents; checked when the model loads.")
    mpp: float | None = Field(None, gt=0, description="µm per pixel the model was trained at "
                                                      "(0.5 = 20x); shown by `pathgen encoders`.")
    gated: bool = Field(False, description="The Hub weights need an accepted access request "
                                           "and HF_TOKEN (checked by `pathgen doctor`).")
    card: str | None = Field(None, description="Model card URL (named in errors and listings).")

    @property
    def has_text(self) -> bool:
        """The encoder has a text tower (prompt retrieval, zero-shot, alignment filter)."""
        return self.kind not in VISION_ONLY_KINDS

    @model_validator(mode="after")
    def _vision_keys(self):
        if self.has_text and (self.pooling != "model" or self.model_kwargs):
            raise ValueError(f"pooling / model_kwargs apply to the {' and '.join(VISION_ONLY_KINDS)} "
                             f"kinds, not {self.kind}")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_vision_keys(self, handler):
        """The dump (rule params, fingerprints) leaves out the vision-backbone keys at their
        defaults, so adding them did not change any existing encoder's definition."""
        data = handler(self)
        if isinstance(data, dict):
            for key in _VISION_KEYS:
                if key in data and data[key] == _VISION_DEFAULTS[key]:
                    del data[key]
        return data


_VISION_KEYS = ("model_kwargs", "pooling", "mean", "std", "resize", "interpolation", "normalize",
                "embed_dim", "mpp", "gated", "card")
_VISION_DEFAULTS = {"model_kwargs": {}, "pooling": "model", "mean": None, "std": None,
                    "resize": None, "interpolation": None, "normalize": None, "embed_dim": None,
                    "mpp": None, "gated": False, "card": None}


def encoder_needs_text(spec: EncoderSpec, name: str, setting: str, use: str) -> str | None:
    """The refusal text when ``setting`` names a vision-only encoder for a ``use`` that embeds
    text; None when ``spec`` has a text tower."""
    if spec.has_text:
        return None
    return (f"{setting} is '{name}', a vision-only encoder (kind {spec.kind}, no text tower), "
            f"but {use} needs one: use {TEXT_CLIP_HINT} for {setting}; vision-only encoders "
            "serve features and evaluation.mil.encoders")


class FeaturesConfig(Section):
    encoder: str = Field("pathgen-clip", description="Name of an entry in `encoders` (or a built-in); "
                                                     "default PathGen-CLIP (ViT-B/16), a pretrained "
                                                     "pathology CLIP (the demo: tiny-demo).")
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
# The H-optimus models share architecture, pooling and preprocessing (their cards).
_H_OPTIMUS = {"kind": "timm", "arch": "vit_giant_patch14_reg4_dinov2",
              "model_kwargs": {"img_size": 224, "init_values": 1e-5, "dynamic_img_size": False,
                               "num_classes": 0, "global_pool": "token"},
              "pooling": "cls", "mean": (0.707223, 0.578729, 0.703617),
              "std": (0.211883, 0.230117, 0.177517), "resize": 224, "embed_dim": 1536,
              "mpp": 0.5, "gated": True}
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
    # -- vision-only pathology foundation models (features + MIL; no text tower) ---------------
    # Each entry repeats its model card: timm.create_model keyword arguments (the same for the
    # Hub weights and for `arch`, which builds the architecture for random init or a local
    # weights file), preprocessing, input size, µm/px and embedding rule. docs/features.md.
    #
    # UNI: https://huggingface.co/MahmoodLab/UNI - ViT-L/16, class token = 1024-d; Resize(224),
    # ImageNet mean/std; 224 px tiles at 20x (~0.5 µm/px). Gated.
    "uni": {"kind": "timm", "arch": "vit_large_patch16_224", "pretrained": "hf-hub:MahmoodLab/uni",
            "model_kwargs": {"img_size": 224, "patch_size": 16, "init_values": 1e-5,
                             "num_classes": 0, "dynamic_img_size": True},
            "pooling": "cls", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "resize": 224,
            "interpolation": "bilinear", "embed_dim": 1024, "mpp": 0.5, "gated": True,
            "card": "https://huggingface.co/MahmoodLab/UNI"},
    # UNI2-h: https://huggingface.co/MahmoodLab/UNI2-h - ViT-H/14 (timm vit_giant_patch14_224
    # with the card's kwargs: SwiGLUPacked MLP, SiLU, 8 register tokens), class token = 1536-d;
    # Resize(224), ImageNet mean/std; 224 px at 20x. Gated.
    "uni2-h": {"kind": "timm", "arch": "vit_giant_patch14_224", "pretrained": "hf-hub:MahmoodLab/UNI2-h",
               "model_kwargs": {"img_size": 224, "patch_size": 14, "depth": 24, "num_heads": 24,
                                "init_values": 1e-5, "embed_dim": 1536, "mlp_ratio": 2.66667 * 2,
                                "num_classes": 0, "no_embed_class": True,
                                "mlp_layer": "SwiGLUPacked", "act_layer": "SiLU", "reg_tokens": 8,
                                "dynamic_img_size": True},
               "pooling": "cls", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "resize": 224,
               "interpolation": "bilinear", "embed_dim": 1536, "mpp": 0.5, "gated": True,
               "card": "https://huggingface.co/MahmoodLab/UNI2-h"},
    # Virchow2: https://huggingface.co/paige-ai/Virchow2 - ViT-H/14, SwiGLUPacked/SiLU, 4
    # register tokens; embedding = concat(class token, mean of the patch tokens without the
    # registers) = 2 x 1280 = 2560-d; timm data config: 224 px, bicubic, crop_pct 1, ImageNet
    # mean/std. Trained on 5x-40x tiles; 20x (0.5 µm/px) is the usual choice. Gated.
    "virchow2": {"kind": "timm", "arch": "vit_huge_patch14_224",
                 "pretrained": "hf-hub:paige-ai/Virchow2",
                 "model_kwargs": {"img_size": 224, "init_values": 1e-5, "num_classes": 0,
                                  "reg_tokens": 4, "mlp_ratio": 5.3375, "global_pool": "",
                                  "dynamic_img_size": True, "mlp_layer": "SwiGLUPacked",
                                  "act_layer": "SiLU"},
                 "pooling": "cls_mean_patch", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                 "resize": 224, "interpolation": "bicubic", "embed_dim": 2560, "mpp": 0.5,
                 "gated": True, "card": "https://huggingface.co/paige-ai/Virchow2"},
    # H-optimus-0: https://huggingface.co/bioptimus/H-optimus-0 - ViT-g/14 with 4 registers
    # (timm vit_giant_patch14_reg4_dinov2), class token = 1536-d; ToTensor + its own mean/std;
    # 224x224 tiles at 0.5 µm/px. Access needs accepted conditions.
    "h-optimus-0": {**_H_OPTIMUS, "pretrained": "hf-hub:bioptimus/H-optimus-0",
                    "card": "https://huggingface.co/bioptimus/H-optimus-0"},
    # H-optimus-1: https://huggingface.co/bioptimus/H-optimus-1 - same architecture, usage and
    # preprocessing as H-optimus-0 (1536-d class token, 224 px at 0.5 µm/px). Gated.
    "h-optimus-1": {**_H_OPTIMUS, "pretrained": "hf-hub:bioptimus/H-optimus-1",
                    "card": "https://huggingface.co/bioptimus/H-optimus-1"},
    # Prov-GigaPath tile encoder: https://huggingface.co/prov-gigapath/prov-gigapath - ViT-g
    # (timm vit_giant_patch14_dinov2; the Hub config sets patch_size 16), class token =
    # 1536-d; Resize(256, bicubic) + CenterCrop(224), ImageNet mean/std; tiles at 0.5 µm/px. Gated.
    "prov-gigapath": {"kind": "timm", "arch": "vit_giant_patch14_dinov2",
                      "pretrained": "hf-hub:prov-gigapath/prov-gigapath",
                      "model_kwargs": {"img_size": 224, "in_chans": 3, "patch_size": 16,
                                       "embed_dim": 1536, "depth": 40, "num_heads": 24,
                                       "init_values": 1e-5, "mlp_ratio": 5.33334,
                                       "num_classes": 0, "global_pool": "token"},
                      "pooling": "cls", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "resize": 256,
                      "interpolation": "bicubic", "embed_dim": 1536, "mpp": 0.5, "gated": True,
                      "card": "https://huggingface.co/prov-gigapath/prov-gigapath"},
    # Phikon-v2: https://huggingface.co/owkin/phikon-v2 - transformers AutoModel (DINOv2
    # ViT-L), features = last_hidden_state[:, 0] (CLS) = 1024-d; preprocessing = its
    # AutoImageProcessor (read at load time); 20x (0.5 µm/px). Open weights.
    "phikon-v2": {"kind": "hf_vision", "pretrained": "owkin/phikon-v2", "pooling": "cls",
                  "embed_dim": 1024, "mpp": 0.5, "card": "https://huggingface.co/owkin/phikon-v2"},
}


def known_encoders(overrides: Mapping[str, EncoderSpec] | None = None) -> dict[str, EncoderSpec]:
    """Every encoder name a run can use: the built-ins, with a config's `encoders:` section
    (``overrides``) added over them. The one list behind ``PathgenConfig.all_encoders``."""
    out = {k: EncoderSpec(**v) for k, v in BUILTIN_ENCODERS.items()}
    out.update(overrides or {})
    return out
