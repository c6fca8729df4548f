"""The Encoder interface every encoder kind returns, plus device/precision/weights helpers."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F


class EncoderError(ValueError):
    """An encoder cannot be built (unknown name, bad spec, missing weights); names the fix."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else is passed to torch.device."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EncoderError(f"device '{device}' requested but CUDA is not available; "
                           "use --device cpu (or 'auto')")
    return dev


def resolve_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for inference, or None for plain fp32.

    'auto': bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU (CPU autocast is
    slower than fp32 on most CPUs without AMX)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise EncoderError("precision fp16 is not supported on CPU; use fp32 or bf16")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike, prefix: int = 16) -> str:
    """sha256 of a weights file (first ``prefix`` hex chars), cached per (path, size, mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key][:prefix]


def hub_revision_of(path: str | os.PathLike) -> str | None:
    """Commit hash from a Hugging Face cache path (.../snapshots/<commit>/file), if any."""
    parts = Path(path).parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


@dataclass
class Encoder:
    """A loaded image/text encoder (see docs/architecture.md "Encoders").

    ``encode_images`` takes a float batch already normalised with ``mean``/``std`` (what
    ``preprocess`` or :meth:`normalize_uint8` produce) and returns L2-normalised embeddings.
    """

    name: str
    kind: str
    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[[list[str]], Any]
    embed_dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    _image_fn: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    _text_fn: Callable[[list[str]], torch.Tensor] | None = field(default=None, repr=False)
    _logit_scale: Callable[[], float] | None = field(default=None, repr=False)
    # Vision backbones (timm / hf_vision): raw features (the card's embedding rule) unless
    # the spec asks for L2 normalisation; patches are read at ``resize_size`` and centre-
    # cropped to ``image_size`` (None = read at image_size, no crop).
    l2_normalize: bool = True
    resize_size: int | None = None

    @property
    def has_text(self) -> bool:
        """Whether the encoder has a text tower (:meth:`encode_texts`)."""
        return self._text_fn is not None

    @property
    def read_size(self) -> int:
        """Side the patches are read at before the centre crop to ``image_size``."""
        return max(self.resize_size or self.image_size, self.image_size)

    @property
    def identifier(self) -> str:
        """Stable id of what produced a feature: encoder name, kind and weights identity."""
        return f"{self.name}|{self.kind}|{self.weights}"

    @property
    def logit_scale(self) -> float:
        return float(self._logit_scale()) if self._logit_scale else 100.0

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    @torch.inference_mode()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        with self._autocast():
            out = self._image_fn(images)
        return F.normalize(out.float(), dim=-1) if self.l2_normalize else out.float()

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        if self._text_fn is None:
            raise EncoderError(f"encoder '{self.name}' ({self.kind}) is vision-only: it has no text "
                               "tower; embed text with a CLIP such as pathgen-clip or plip")
        if isinstance(texts, str):
            texts = [texts]
        with self._autocast():
            out = self._text_fn(list(texts))
        return F.normalize(out.float(), dim=-1)

    def normalize_uint8(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) patches at ``image_size`` (or at :attr:`read_size`, then
        centre-cropped to ``image_size``) -> normalised float (B, 3, H, W)."""
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        h, w = x.shape[-2:]
        if h > self.image_size or w > self.image_size:  # torchvision CenterCrop's offsets
            top, left = int(round((h - self.image_size) / 2.0)), int(round((w - self.image_size) / 2.0))
            x = x[..., top:top + self.image_size, left:left + self.image_size]
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return x.sub_(mean).div_(std)

    def describe_preprocessing(self) -> str:
        crop = (f"{self.read_size}x{self.read_size}, centre crop "
                if self.read_size != self.image_size else "")
        return (f"patch -> {crop}{self.image_size}x{self.image_size} RGB, /255, "
                f"mean={list(self.mean)}, std={list(self.std)}")
