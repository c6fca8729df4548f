"""TransMIL transformer aggregator (Shao et al., NeurIPS 2021) with Nyström attention.

Embedded instances are padded to a square count by repeating the first ones, a class token
is prepended, then: transformer layer -> PPEG (depth-wise 7/5/3 convolutions over the square
grid, added to the tokens: conditional positional encoding) -> transformer layer -> norm ->
class token classified.

Attention is the paper's Nyström approximation (`nystrom-attention` package: landmarks =
hidden_dim / 2, 6 Moore-Penrose iterations, depth-wise residual conv on the values), so memory
grows linearly with the bag: a 100,000-patch slide fits on a CPU (bench/transmil_memory.py).
`attention="full"` keeps exact O(N²) multi-head attention (the benchmark's baseline).
In training, bags above `checkpoint_tokens` run each layer under activation checkpointing
(torch.utils.checkpoint, RNG state preserved: same numbers, one extra layer forward in the
backward pass) so only the layer inputs are kept between the passes.

Heatmap attention: the class token's row of the last layer's attention over the real
instances, head-averaged. For Nyström it is the approximated row (attn1 · pinv(attn2) ·
attn3, only that row is formed: O(N)); the approximation can dip below zero, so negatives are
clipped before renormalising to sum 1.
"""

from __future__ import annotations

import math

import torch
import torch.utils.checkpoint as ckpt
from nystrom_attention import NystromAttention
from torch import nn

from .common import ce_loss, instance_embedding


class TransLayer(nn.Module):
    """Pre-norm residual attention block (TransMIL has no MLP in its layers)."""

    def __init__(self, dim: int, heads: int, dropout: float, attention: str = "nystrom"):
        super().__init__()
        if attention not in ("nystrom", "full"):
            raise ValueError(f"TransMIL attention must be 'nystrom' or 'full', not {attention!r}")
        self.kind = attention
        self.norm = nn.LayerNorm(dim)
        if attention == "nystrom":
            self.attn = NystromAttention(dim=dim, dim_head=dim // heads, heads=heads,
                                         num_landmarks=max(1, dim // 2), pinv_iterations=6,
                                         residual=True, dropout=dropout)
            # The depth-wise residual conv over the value sequence starts at zero, so a layer
            # starts as pure Nyström attention and learns the neighbour term only where it helps:
            # default-initialised, its 33 neighbours' values swamp the attention on small bags
            # (the synthetic MIL test stops learning: AUROC ~0.5 vs ~0.95).
            nn.init.zeros_(self.attn.res_conv.weight)
        else:
            self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, t: torch.Tensor, need_cls_row: bool = False):
        """(1, T, dim) -> (tokens, class-token attention row (T,) or None)."""
        q = self.norm(t)
        if self.kind == "full":
            out, w = self.attn(q, q, q, need_weights=need_cls_row, average_attn_weights=True)
            return t + out, (w[0, 0] if need_cls_row else None)
        if not need_cls_row:
            return t + self.attn(q), None
        out, (a1, a2_inv, a3) = self.attn(q, return_attn_matrices=True)
        with torch.no_grad():
            # The package left-pads the sequence to a multiple of the landmarks: the class
            # token (index 0 of t) sits at row `front`, the tokens at columns front: .
            n = t.shape[1]
            front = a1.shape[2] - n
            row = (a1[0, :, front:front + 1] @ a2_inv[0] @ a3[0])[:, 0, front:]    # (h, T)
        return t + out, row.mean(0)


class PPEG(nn.Module):
    """Pyramid position encoding generator: identity + depth-wise convs of size 7, 5, 3."""

    def __init__(self, dim: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim) for k in (7, 5, 3))

    def forward(self, t: torch.Tensor, side: int) -> torch.Tensor:
        cls, feats = t[:, :1], t[:, 1:]
        b, n, c = feats.shape
        grid = feats.transpose(1, 2).reshape(b, c, side, side)
        grid = grid + sum(conv(grid) for conv in self.convs)
        return torch.cat([cls, grid.flatten(2).transpose(1, 2)], dim=1)


class TransMIL(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, hidden_dim: int = 256, dropout: float = 0.25,
                 transmil_heads: int = 4, attention: str = "nystrom", checkpoint_tokens: int = 8192, **_):
        super().__init__()
        self.checkpoint_tokens = checkpoint_tokens
        self.embed = instance_embedding(in_dim, hidden_dim, dropout)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        nn.init.normal_(self.cls_token, std=0.02)
        self.layer1 = TransLayer(hidden_dim, transmil_heads, dropout, attention)
        self.ppeg = PPEG(hidden_dim)
        self.layer2 = TransLayer(hidden_dim, transmil_heads, dropout, attention)
        self.norm = nn.LayerNorm(hidden_dim)
        self.classifier = nn.Linear(hidden_dim, n_classes)

    def forward(self, x: torch.Tensor) -> dict:
        h = self.embed(x).unsqueeze(0)                                # (1, N, H)
        n = h.shape[1]
        side = max(1, math.ceil(math.sqrt(n)))
        pad = side * side - n
        if pad:  # repeat the first instances to fill the square grid (TransMIL convention)
            reps = math.ceil(pad / n)
            h = torch.cat([h, h.repeat(1, reps, 1)[:, :pad]], dim=1)
        t = torch.cat([self.cls_token, h], dim=1)
        t, _ = self._layer(self.layer1, t, False)
        t = self.ppeg(t, side)
        t, row = self._layer(self.layer2, t, True)
        logits = self.classifier(self.norm(t)[:, 0])
        return {"logits": logits, "attention": _normalise(row.detach()[1:n + 1])}

    def _layer(self, layer: TransLayer, t: torch.Tensor, need_cls_row: bool):
        if self.training and torch.is_grad_enabled() and t.shape[1] > self.checkpoint_tokens:
            return ckpt.checkpoint(layer, t, need_cls_row, use_reentrant=False)
        return layer(t, need_cls_row)

    loss = staticmethod(ce_loss)


def _normalise(a: torch.Tensor) -> torch.Tensor:
    a = a.clamp_min(0)
    total = a.sum()
    return a / total if total > 0 else torch.full_like(a, 1.0 / len(a))
