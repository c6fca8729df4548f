"""Vision-only encoders (no text tower): kind `timm` (any ``timm.create_model`` model,
``hf-hub:`` ids included, with the keyword arguments its model card documents) and kind
`hf_vision` (a transformers ``AutoModel`` vision backbone such as Phikon-v2).

They serve features (selection's prototypes, MIL) and refuse text: the config refuses them
where text is embedded (pathgen.config.features.encoder_needs_text) and
:meth:`Encoder.encode_texts` raises. Their embedding rule is the spec's ``pooling``; their
image embeddings are the raw features unless ``normalize: true``.

Weights: ``pretrained`` null = random init of ``arch`` (seeded; tests, offline demo), a
local weights file (loaded into ``arch`` built with ``model_kwargs``), a local folder (timm
``local-dir:`` / transformers ``save_pretrained``) or a Hub id (``hf-hub:org/name`` for timm,
``org/name`` for hf_vision). A refused download (gated weights) names the model page and
HF_TOKEN.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torchvision import transforms as T

from ..config.features import IMAGENET_MEAN, IMAGENET_STD, EncoderSpec
from .base import Encoder, EncoderError, file_sha256, hub_revision_of
from .registry import register_kind
from .weights import CKPT_SUFFIXES, hub_access_error, hub_fetch_error, hub_refusal

log = logging.getLogger(__name__)

TIMM_HUB_PREFIXES = ("hf-hub:", "hf_hub:")
_INTERPOLATION = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}
_PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}  # transformers image processors' `resample`
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors",
                 "open_clip_pytorch_model.bin")


# -- shared --------------------------------------------------------------------------------
def _preprocess(image_size: int, resize: int | None, interpolation: str, mean, std):
    """PIL patch -> tensor: shorter side to ``resize`` (default image_size), centre crop to
    image_size, RGB, /255, mean/std (the cards' torchvision transforms)."""
    return T.Compose([
        T.Resize(resize or image_size, interpolation=_INTERPOLATION[interpolation], antialias=True),
        T.CenterCrop(image_size),
        T.Lambda(lambda im: im.convert("RGB")),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


def _pool(tokens: torch.Tensor, pooling: str, prefix: int) -> torch.Tensor:
    """Embedding rule over a (B, N, D) token sequence whose first ``prefix`` tokens are the
    class token and the register tokens (excluded from the patch mean)."""
    if pooling == "cls":
        return tokens[:, 0]
    patches = tokens[:, prefix:].mean(dim=1)
    if pooling == "mean_patch":
        return patches
    return torch.cat([tokens[:, 0], patches], dim=-1)  # cls_mean_patch


def _check_dim(name: str, spec: EncoderSpec, dim: int) -> None:
    if spec.embed_dim is not None and spec.embed_dim != dim:
        raise EncoderError(
            f"encoder '{name}' gives {dim}-d embeddings (pooling {spec.pooling}) but its entry "
            f"documents {spec.embed_dim}-d{' (' + spec.card + ')' if spec.card else ''}: "
            "model_kwargs or pooling do not match the model card")


def _folder_identity(folder: Path) -> str:
    wfile = next((folder / f for f in _WEIGHT_FILES if (folder / f).is_file()), None)
    if wfile is None:
        wfile = next((p for p in sorted(folder.iterdir()) if p.suffix in CKPT_SUFFIXES), None)
    return f"sha256:{file_sha256(wfile)}" if wfile else f"path:{folder.resolve()}"


def _hub_identity(repo: str, revision: str | None, prefix: str = "") -> str:
    """'<prefix><repo>@<commit>' from the Hugging Face cache (the revision name if not there)."""
    commit = None
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(repo, "config.json", revision=revision)
        commit = hub_revision_of(path) if isinstance(path, str) else None
    except Exception:  # identity falls back to the revision name
        pass
    return f"{prefix}{repo}@{commit or revision or 'main'}"


def _random_init(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random-init encoders are reproducible run to run
        return build()


# -- timm ----------------------------------------------------------------------------------
def timm_kwargs(name: str, spec: EncoderSpec) -> dict[str, Any]:
    """spec.model_kwargs for timm.create_model: layer names (``*_layer``: 'SwiGLUPacked',
    'SiLU') become classes from torch.nn, else timm.layers; ``image_size`` sets img_size."""
    import timm.layers

    out: dict[str, Any] = {}
    for key, value in spec.model_kwargs.items():
        if key.endswith("_layer") and isinstance(value, str):
            found = getattr(torch.nn, value, None) or getattr(timm.layers, value, None)
            if found is None and key not in ("act_layer", "norm_layer"):  # timm reads those names
                raise EncoderError(f"encoder '{name}': model_kwargs.{key} '{value}' is neither in "
                                   "torch.nn nor in timm.layers (e.g. SwiGLUPacked, Mlp, SiLU)")
            value = found or value
        out[key] = value
    if spec.image_size:
        out["img_size"] = spec.image_size
    return out


def _timm_source(name: str, spec: EncoderSpec) -> tuple[str, dict[str, Any], str | None, str | None]:
    """(model name for timm, create_model arguments, weights identity (None: the Hub's, known
    after the download), Hub repo or None)."""
    p = spec.pretrained
    if p is None or not p.startswith(TIMM_HUB_PREFIXES):
        if p is not None and Path(p).is_dir():
            return f"local-dir:{p}", {"pretrained": True}, _folder_identity(Path(p)), None
        if not spec.arch:
            raise EncoderError(f"encoder '{name}' (timm) needs `arch` (a timm architecture, e.g. "
                               "vit_large_patch16_224) for random init or a local weights file, "
                               "or `pretrained: hf-hub:org/name`")
        if p is None:
            return spec.arch, {"pretrained": False}, "random-init(seed=0)", None
        if not Path(p).is_file():
            raise EncoderError(f"encoder '{name}' (timm): pretrained '{p}' is not 'hf-hub:org/name', "
                               "a weights file or a model folder")
        return spec.arch, {"pretrained": False, "checkpoint_path": p}, f"sha256:{file_sha256(p)}", None
    repo = p.split(":", 1)[1]
    ref = f"hf-hub:{repo}" + (f"@{spec.revision}" if spec.revision else "")
    return ref, {"pretrained": True}, None, repo


def _timm_dims(name: str, spec: EncoderSpec, model) -> tuple[int, int]:
    """(embedding dimension of spec.pooling, number of prefix tokens)."""
    nf = int(model.num_features)
    prefix = int(getattr(model, "num_prefix_tokens", 0))
    if spec.pooling == "model":
        if getattr(model, "global_pool", None) == "":
            raise EncoderError(
                f"encoder '{name}': this timm model returns all its tokens (global_pool ''); set "
                "`pooling` to the card's rule: cls, mean_patch or cls_mean_patch (Virchow2)")
        return int(model.num_classes or getattr(model, "head_hidden_size", nf)), prefix
    if spec.pooling in ("cls", "cls_mean_patch") and getattr(model, "cls_token", None) is None:
        raise EncoderError(f"encoder '{name}': pooling '{spec.pooling}' needs a class token, which "
                           "this timm model lacks; use pooling model or mean_patch")
    return (2 * nf if spec.pooling == "cls_mean_patch" else nf), prefix


def _timm_image_size(spec: EncoderSpec, model, data_cfg: dict) -> int:
    if spec.image_size:
        return spec.image_size
    pe = getattr(model, "patch_embed", None)
    size = getattr(pe, "img_size", None)  # ViTs: the built size (pretrained_cfg may say 518)
    if size:
        return int(size[0] if isinstance(size, (tuple, list)) else size)
    return int(data_cfg["input_size"][-1])


@register_kind("timm")
def build_timm(name: str, spec: EncoderSpec, device: torch.device) -> Encoder:
    import timm
    from timm.data import resolve_data_config

    model_name, create, identity, repo = _timm_source(name, spec)
    kwargs = timm_kwargs(name, spec)
    try:
        model = _random_init(lambda: timm.create_model(model_name, **create, **kwargs))
    except EncoderError:
        raise
    except Exception as err:
        if repo is not None:
            if (why := hub_refusal(err)) is not None:
                raise hub_access_error(name, repo, spec.card, err, why) from err
            if isinstance(err, (OSError, ConnectionError)) or "huggingface" in type(err).__module__:
                raise hub_fetch_error(name, repo, err) from err
        raise EncoderError(f"encoder '{name}' (timm): cannot build '{model_name}' with "
                           f"{spec.model_kwargs}: {type(err).__name__}: {err}") from err
    if identity is None:
        identity = _hub_identity(repo, spec.revision, "hf-hub:")
    model.eval().to(device)

    data_cfg = resolve_data_config({}, model=model)
    dim, prefix = _timm_dims(name, spec, model)
    _check_dim(name, spec, dim)
    size = _timm_image_size(spec, model, data_cfg)
    crop_pct = float(data_cfg.get("crop_pct") or 1.0)
    resize = spec.resize or int(size / crop_pct)
    interpolation = spec.interpolation or (data_cfg.get("interpolation") if data_cfg.get(
        "interpolation") in _INTERPOLATION else "bicubic")
    mean = tuple(spec.mean or data_cfg.get("mean") or IMAGENET_MEAN)
    std = tuple(spec.std or data_cfg.get("std") or IMAGENET_STD)
    pooling = spec.pooling

    def image_fn(x: torch.Tensor) -> torch.Tensor:
        if pooling == "model":
            return model(x)
        tokens = model.forward_features(x)
        if tokens.ndim == 4:  # a convolutional trunk: (B, C, H, W)
            return tokens.mean(dim=(2, 3))
        return _pool(tokens, pooling, prefix)

    return Encoder(
        name=name, kind="timm", model=model,
        preprocess=_preprocess(size, resize, interpolation, mean, std), tokenizer=None,
        embed_dim=dim, image_size=size, mean=mean, std=std, weights=identity, device=device,
        _image_fn=image_fn, l2_normalize=bool(spec.normalize), resize_size=resize)


# -- transformers AutoModel ----------------------------------------------------------------
def _processor_value(ip, attr: str, key: str) -> int | None:
    value = getattr(ip, attr, None) if ip is not None else None
    if value is None:
        return None
    if isinstance(value, int):
        return value
    got = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
    return int(got) if got else None


def _load_hf(name: str, spec: EncoderSpec):
    """(model, image processor or None, weights identity)."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    src = spec.pretrained
    if src is None:
        if not spec.arch:
            raise EncoderError(f"encoder '{name}' (hf_vision) needs `pretrained` (a Hub id such as "
                               "owkin/phikon-v2 or a save_pretrained folder) or, for random init, "
                               "`arch` (a transformers model_type such as dinov2)")
        try:
            config = AutoConfig.for_model(spec.arch, **spec.model_kwargs)
        except ValueError as err:
            raise EncoderError(f"encoder '{name}' (hf_vision): {err}") from err
        return _random_init(lambda: AutoModel.from_config(config)), None, "random-init(seed=0)"
    local = Path(src).is_dir()
    rev = spec.revision or "main"
    try:
        model = AutoModel.from_pretrained(src, revision=rev, **spec.model_kwargs)
    except Exception as err:
        if not local and (why := hub_refusal(err)) is not None:
            raise hub_access_error(name, src, spec.card, err, why) from err
        if local:
            raise EncoderError(f"encoder '{name}': cannot load the AutoModel folder {src}: {err}") from err
        raise hub_fetch_error(name, src, err) from err
    try:
        processor = AutoImageProcessor.from_pretrained(src, revision=rev)
    except Exception as err:  # no processor config: the spec's / ImageNet values
        log.info("encoder '%s': no image processor in %s (%s); using the spec's preprocessing",
                 name, src, type(err).__name__)
        processor = None
    identity = _folder_identity(Path(src)) if local else (
        f"hf:{src}@{getattr(model.config, '_commit_hash', None) or rev}")
    return model, processor, identity


@register_kind("hf_vision")
def build_hf_vision(name: str, spec: EncoderSpec, device: torch.device) -> Encoder:
    model, ip, identity = _load_hf(name, spec)
    model.eval().to(device)
    cfg = getattr(model.config, "vision_config", None) or model.config
    hidden = int(cfg.hidden_size)
    prefix = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)
    pooling = spec.pooling
    dim = hidden * (2 if pooling == "cls_mean_patch" else 1)
    _check_dim(name, spec, dim)

    native = getattr(cfg, "image_size", None)
    native = int(native[0] if isinstance(native, (tuple, list)) else native) if native else None
    crop = spec.image_size or _processor_value(ip, "crop_size", "height") or (
        _processor_value(ip, "size", "shortest_edge") or _processor_value(ip, "size", "height")
        or native or 224)
    short = _processor_value(ip, "size", "shortest_edge") if getattr(ip, "do_center_crop", False) else None
    resize = spec.resize or (round(short * crop / (_processor_value(ip, "crop_size", "height") or crop))
                             if short else None)
    mean = tuple(spec.mean or getattr(ip, "image_mean", None) or IMAGENET_MEAN)
    std = tuple(spec.std or getattr(ip, "image_std", None) or IMAGENET_STD)
    interpolation = spec.interpolation or _PIL_RESAMPLE.get(int(getattr(ip, "resample", 3) or 3), "bicubic")
    extra = {"interpolate_pos_encoding": True} if native and crop != native else {}

    def image_fn(x: torch.Tensor) -> torch.Tensor:
        out = model(pixel_values=x, **extra)
        if pooling == "model":
            if getattr(out, "pooler_output", None) is None:
                raise EncoderError(f"encoder '{name}': the model has no pooler_output; set "
                                   "pooling: cls (or mean_patch / cls_mean_patch)")
            return out.pooler_output
        return _pool(out.last_hidden_state, pooling, prefix)

    return Encoder(
        name=name, kind="hf_vision", model=model,
        preprocess=_preprocess(crop, resize, interpolation, mean, std), tokenizer=None,
        embed_dim=dim, image_size=crop, mean=mean, std=std, weights=identity, device=device,
        _image_fn=image_fn, l2_normalize=bool(spec.normalize), resize_size=resize)
