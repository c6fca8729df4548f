"""TransMIL-style transformer aggregator (after Shao et al., NeurIPS 2021), small version.

Embedded instances are padded to a square count by repeating the first ones, a class token
is prepended, then: transformer layer -> PPEG (depth-wise 7/5/3 convolutions over the square
grid, added to the tokens: conditional positional encoding) -> transformer layer -> norm ->
class token classified. Standard multi-head attention replaces the Nyström approximation,
which is fine for the bag sizes a CPU benchmark sees. The heatmap attention is the class
token's last-layer attention over the real instances (head-averaged, renormalised).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import ce_loss, instance_embedding


class TransLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, t: torch.Tensor, need_weights: bool = False):
        q = self.norm(t)
        out, w = self.attn(q, q, q, need_weights=need_weights, average_attn_weights=True)
        return t + out, w


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
                 transmil_heads: int = 4, **_):
        super().__init__()
        self.embed = instance_embedding(in_dim, hidden_dim, dropout)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        nn.init.normal_(self.cls_token, std=0.02)
        self.layer1 = TransLayer(hidden_dim, transmil_heads, dropout)
        self.ppeg = PPEG(hidden_dim)
        self.layer2 = TransLayer(hidden_dim, transmil_heads, dropout)
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
        t, _ = self.layer1(t)
        t = self.ppeg(t, side)
        t, w = self.layer2(t, need_weights=True)
        logits = self.classifier(self.norm(t)[:, 0])
        a = w[0, 0, 1:n + 1]
        a = a / a.sum().clamp_min(1e-12)
        return {"logits": logits, "attention": a}

    loss = staticmethod(ce_loss)
