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
from .base import Encoder, EncoderError, file_sha256, hub_revision_of
from .registry import register_kind

log = logging.getLogger(__name__)

_CKPT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
_PREFERRED = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _pick_checkpoint(files: list[str], where: str) -> str:
    for name in _PREFERRED:
        if name in files:
            return name
    cands = [f for f in files if f.endswith(_CKPT_SUFFIXES)]
    if len(cands) == 1:
        return cands[0]
    raise EncoderError(f"{where}: cannot choose a checkpoint among {cands or 'no weight files'}; "
                       "name the file explicitly, e.g. 'hf-hub:org/name/file.pt'")


def _resolve_hub(pretrained: str, revision: str | None) -> tuple[str, str | None, str]:
    """'hf-hub:org/name[/file]' -> (kind, path-or-model-name, identity).

    kind is 'schema' (let open_clip load config + weights) or 'file' (a checkpoint path)."""
    from huggingface_hub import hf_hub_download, list_repo_files

    ref = pretrained[len("hf-hub:"):]
    parts = ref.split("/")
    if len(parts) < 2:
        raise EncoderError(f"'{pretrained}' is not 'hf-hub:org/name' or 'hf-hub:org/name/file'")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or None
    try:
        if filename is None:
            files = list_repo_files(repo, revision=revision)
            if "open_clip_config.json" in files:
                cfg = hf_hub_download(repo, "open_clip_config.json", revision=revision)
                rev = hub_revision_of(cfg) or revision or "main"
                return "schema", f"hf-hub:{repo}", f"hf-hub:{repo}@{rev}"
            filename = _pick_checkpoint(files, f"hf-hub:{repo}")
        path = hf_hub_download(repo, filename, revision=revision)
    except EncoderError:
        raise
    except Exception as err:  # network/auth/offline: say what to do instead
        raise EncoderError(
            f"cannot fetch '{pretrained}' from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "Check the network / HF_TOKEN, or download the checkpoint and set `pretrained` to its "
            "local path.") from err
    rev = hub_revision_of(path) or revision or "main"
    return "file", path, f"hf-hub:{repo}/{filename}@{rev}"


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


@register_kind("open_clip")
def build_open_clip(name: str, spec: EncoderSpec, device: torch.device) -> Encoder:
    import open_clip

    from . import ensure_model_configs
    ensure_model_configs()
    arch, pretrained = spec.arch, spec.pretrained
    model_name, weights_arg, identity = arch, None, None

    if pretrained is None:
        identity = "random-init(seed=0)"
    elif pretrained.startswith("hf-hub:"):
        how, target, identity = _resolve_hub(pretrained, spec.revision)
        if how == "schema":
            model_name = target
        else:
            weights_arg = target
    elif Path(pretrained).is_dir():
        folder = Path(pretrained)
        if (folder / "open_clip_config.json").is_file():
            model_name = f"local-dir:{folder}"
            ckpt = next((p for p in sorted(folder.iterdir()) if p.suffix in _CKPT_SUFFIXES), None)
            identity = f"sha256:{file_sha256(ckpt)}" if ckpt else "random-init(seed=0)"
        else:
            ckpt = folder / _pick_checkpoint([p.name for p in folder.iterdir()], str(folder))
            weights_arg, identity = str(ckpt), f"sha256:{file_sha256(ckpt)}"
    elif Path(pretrained).is_file():
        weights_arg, identity = pretrained, f"sha256:{file_sha256(pretrained)}"
    else:
        if arch is None:
            raise EncoderError(f"encoder '{name}': pretrained tag '{pretrained}' needs `arch`")
        if not open_clip.get_pretrained_cfg(arch, pretrained):
            looks_like_path = "/" in pretrained or pretrained.endswith(_CKPT_SUFFIXES)
            raise EncoderError(
                f"encoder '{name}': pretrained '{pretrained}' is "
                + ("a path that does not exist" if looks_like_path else
                   f"not a known open_clip tag for {arch}; known tags: "
                   f"{', '.join(open_clip.list_pretrained_tags_by_model(arch)) or 'none'}"))
        weights_arg, identity = pretrained, f"open_clip:{arch}/{pretrained}"

    if model_name is None:
        raise EncoderError(f"encoder '{name}' (open_clip) needs `arch` (one of open_clip.list_models(), "
                           "e.g. ViT-B-16 or pathgen-tiny-vit)")
    if not model_name.startswith(("hf-hub:", "local-dir:")) and model_name not in open_clip.list_models():
        raise EncoderError(f"encoder '{name}': unknown open_clip arch '{model_name}'; e.g. "
                           f"{', '.join(open_clip.list_models()[:8])}, pathgen-tiny-vit, ...")
    with torch.random.fork_rng(devices=[]), _quiet_root_logger():
        torch.manual_seed(0)  # random-init encoders are reproducible run to run
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=weights_arg, force_quick_gelu=spec.force_quick_gelu,
            force_image_size=spec.image_size, device=device)
    model.eval()
    if identity.startswith("open_clip:"):
        # The tag's file is in the local cache now: record its content hash as well.
        try:
            path = open_clip.download_pretrained(open_clip.get_pretrained_cfg(arch, pretrained))
            identity += f"@sha256:{file_sha256(path)}"
        except Exception:  # identity stays the tag name
            pass
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
