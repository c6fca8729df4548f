"""open_clip encoders: built-in/registered architectures with a pretrained tag, a local
checkpoint (open_clip training `epoch_N.pt` or a bare state dict), a local open_clip model
folder (`open_clip_config.json` + weights), or a Hugging Face Hub repo (`hf-hub:org/name`).

`hf-hub:` repos that ship an `open_clip_config.json` are loaded through open_clip's own
schema; repos that ship only a checkpoint (e.g. PathGen-CLIP's `.pt`) are downloaded with
huggingface_hub and loaded into the `arch` given in the spec.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from ..config.features import EncoderSpec
from .base import Encoder, EncoderError, file_sha256
from .model_configs import ensure_model_configs
from .registry import register_kind
from .weights import CKPT_SUFFIXES, HF_HUB_PREFIX, OPEN_CLIP_CONFIG, pick_checkpoint, resolve_hf_hub

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet_root_logger():
    """open_clip logs its every step at INFO on the root logger; keep our logs readable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _local_dir(folder: Path) -> tuple[str | None, str | None, str]:
    """A local folder: an open_clip model folder (config + weights) or a folder of weights."""
    if (folder / OPEN_CLIP_CONFIG).is_file():
        ckpt = next((p for p in sorted(folder.iterdir()) if p.suffix in CKPT_SUFFIXES), None)
        return f"local-dir:{folder}", None, f"sha256:{file_sha256(ckpt)}" if ckpt else "random-init(seed=0)"
    ckpt = folder / pick_checkpoint([p.name for p in folder.iterdir()], str(folder))
    return None, str(ckpt), f"sha256:{file_sha256(ckpt)}"


def _pretrained_tag(name: str, arch: str | None, pretrained: str) -> str:
    """Check an open_clip pretrained tag of `arch`; its identity."""
    import open_clip

    if arch is None:
        raise EncoderError(f"encoder '{name}': pretrained tag '{pretrained}' needs `arch`")
    if not open_clip.get_pretrained_cfg(arch, pretrained):
        looks_like_path = "/" in pretrained or pretrained.endswith(CKPT_SUFFIXES)
        raise EncoderError(
            f"encoder '{name}': pretrained '{pretrained}' is "
            + ("a path that does not exist" if looks_like_path else
               f"not a known open_clip tag for {arch}; known tags: "
               f"{', '.join(open_clip.list_pretrained_tags_by_model(arch)) or 'none'}"))
    return f"open_clip:{arch}/{pretrained}"


def _weights_source(name: str, spec: EncoderSpec) -> tuple[str | None, str | None, str]:
    """(model name for open_clip, `pretrained=` argument, weights identity) of a spec."""
    arch, pretrained = spec.arch, spec.pretrained
    if pretrained is None:
        return arch, None, "random-init(seed=0)"
    if pretrained.startswith(HF_HUB_PREFIX):
        hub = resolve_hf_hub(pretrained, spec.revision)
        if hub.kind == "schema":
            return hub.target, None, hub.identity
        return arch, hub.target, hub.identity
    if Path(pretrained).is_dir():
        model_name, weights_arg, identity = _local_dir(Path(pretrained))
        return model_name or arch, weights_arg, identity
    if Path(pretrained).is_file():
        return arch, pretrained, f"sha256:{file_sha256(pretrained)}"
    return arch, pretrained, _pretrained_tag(name, arch, pretrained)


def _check_model_name(name: str, model_name: str | None) -> str:
    import open_clip

    if model_name is None:
        raise EncoderError(f"encoder '{name}' (open_clip) needs `arch` (one of open_clip.list_models(), "
                           "e.g. ViT-B-16 or pathgen-tiny-vit)")
    if not model_name.startswith((HF_HUB_PREFIX, "local-dir:")) and model_name not in open_clip.list_models():
        raise EncoderError(f"encoder '{name}': unknown open_clip arch '{model_name}'; e.g. "
                           f"{', '.join(open_clip.list_models()[:8])}, pathgen-tiny-vit, ...")
    return model_name


def _with_tag_hash(identity: str, spec: EncoderSpec) -> str:
    """A pretrained tag's file is in the local cache once loaded: add its content hash."""
    import open_clip

    if not identity.startswith("open_clip:"):
        return identity
    try:
        path = open_clip.download_pretrained(open_clip.get_pretrained_cfg(spec.arch, spec.pretrained))
        return identity + f"@sha256:{file_sha256(path)}"
    except Exception:  # identity stays the tag name
        return identity


def _encoder(name: str, model, preprocess, model_name: str, identity: str,
             device: torch.device) -> Encoder:
    import open_clip

    pcfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    with _quiet_root_logger():
        tok = open_clip.get_tokenizer(model_name)

    def text_fn(texts: list[str]) -> torch.Tensor:
        return model.encode_text(tok(texts).to(device))

    return Encoder(
        name=name, kind="open_clip", model=model, preprocess=preprocess, tokenizer=tok,
        embed_dim=int(model.visual.output_dim), image_size=size,
        mean=tuple(pcfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(pcfg.get("std", open_clip.OPENAI_DATASET_STD)),
        weights=identity, device=device,
        _image_fn=model.encode_image, _text_fn=text_fn,
        _logit_scale=lambda: model.logit_scale.exp().item())


@register_kind("open_clip")
def build_open_clip(name: str, spec: EncoderSpec, device: torch.device) -> Encoder:
    import open_clip

    ensure_model_configs()
    model_name, weights_arg, identity = _weights_source(name, spec)
    model_name = _check_model_name(name, model_name)
    with torch.random.fork_rng(devices=[]), _quiet_root_logger():
        torch.manual_seed(0)  # random-init encoders are reproducible run to run
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=weights_arg, force_quick_gelu=spec.force_quick_gelu,
            force_image_size=spec.image_size, device=device)
    model.eval()
    return _encoder(name, model, preprocess, model_name, _with_tag_hash(identity, spec), device)
