"""Hugging Face `transformers` CLIPModel encoders (PLIP `vinid/plip`, PathGen-CLIP-L
`jamessyx/pathgenclip-vit-large-patch14-hf`, or a local `save_pretrained` folder).

Preprocessing follows the repo's CLIPImageProcessor (shortest-edge resize, centre crop,
mean/std) but is expressed as a torchvision PIL transform so every encoder exposes the same
`.preprocess` contract.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import transforms as T

from ..config.features import EncoderSpec
from .base import Encoder, EncoderError, file_sha256
from .registry import register_kind

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _pooled(out) -> torch.Tensor:
    # transformers >= 5 returns a ModelOutput whose pooler_output is the projection.
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _size_of(value, key: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    got = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
    return int(got) if got else default


@register_kind("hf_clip")
def build_hf_clip(name: str, spec: EncoderSpec, device: torch.device) -> Encoder:
    from transformers import CLIPModel, CLIPProcessor

    src = spec.pretrained
    if not src:
        raise EncoderError(f"encoder '{name}' (hf_clip) needs `pretrained`: a Hub id such as "
                           "vinid/plip or a local folder written by save_pretrained")
    local = Path(src).is_dir()
    rev = spec.revision or "main"
    try:
        model = CLIPModel.from_pretrained(src, revision=rev)
        processor = CLIPProcessor.from_pretrained(src, revision=rev)
    except OSError as err:
        hint = ("the folder lacks config.json/weights/tokenizer files" if local else
                "check the id, the network or HF_TOKEN, or download it and point `pretrained` "
                "at the local folder")
        raise EncoderError(f"encoder '{name}': cannot load CLIPModel '{src}': {err}. Fix: {hint}") from err
    model.eval().to(device)

    if local:
        wfile = next((Path(src) / f for f in _WEIGHT_FILES if (Path(src) / f).is_file()), None)
        identity = f"sha256:{file_sha256(wfile)}" if wfile else f"path:{Path(src).resolve()}"
    else:
        commit = getattr(model.config, "_commit_hash", None) or rev
        identity = f"hf:{src}@{commit}"

    ip = processor.image_processor
    crop = _size_of(ip.crop_size, "height", model.config.vision_config.image_size)
    short = _size_of(ip.size, "shortest_edge", crop)
    if spec.image_size:  # keep the resize/crop ratio, interpolate position embeddings
        short, crop = round(short * spec.image_size / crop), spec.image_size
    mean, std = tuple(ip.image_mean), tuple(ip.image_std)
    preprocess = T.Compose([
        T.Resize(short, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
        T.CenterCrop(crop),
        T.Lambda(lambda im: im.convert("RGB")),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])
    interpolate = crop != model.config.vision_config.image_size
    max_len = min(77, model.config.text_config.max_position_embeddings)

    def tokenize(texts: list[str]):
        return processor.tokenizer(list(texts), padding="max_length", truncation=True,
                                   max_length=max_len, return_tensors="pt")

    def image_fn(x: torch.Tensor) -> torch.Tensor:
        return _pooled(model.get_image_features(pixel_values=x, interpolate_pos_encoding=interpolate))

    def text_fn(texts: list[str]) -> torch.Tensor:
        tok = {k: v.to(device) for k, v in tokenize(texts).items()}
        return _pooled(model.get_text_features(input_ids=tok["input_ids"],
                                               attention_mask=tok.get("attention_mask")))

    return Encoder(
        name=name, kind="hf_clip", model=model, preprocess=preprocess, tokenizer=tokenize,
        embed_dim=int(model.config.projection_dim), image_size=crop, mean=mean, std=std,
        weights=identity, device=device, _image_fn=image_fn, _text_fn=text_fn,
        _logit_scale=lambda: model.logit_scale.exp().item())
