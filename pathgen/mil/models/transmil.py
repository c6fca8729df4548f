"""TransMIL transformer aggregator (Shao et al., NeurIPS 2021) with Nyström attention.

Embedded instances are padded to a square count by repeating the first ones, a class token
is prepended, then: transformer layer -> PPEG (depth-wise 7/5/3 convolutions over the square
grid, added to the tokens: conditional positional encoding) -> transformer layer -> norm ->
class token classified.

Attention is the paper's Nyström approximation (`nystrom-attention` package: landmarks =
hidden_dim / 2, 6 Moore-Penrose iterations, depth-wise residual conv on the values), so memory
grows linearly with the bag: a 100,000-patch slide fits in 4 GB on a CPU
(bench/transmil_memory.py). The package's module holds the parameters (same names, same
initialisation); its forward is computed here by :func:`nystrom_forward`, the same numbers
with fewer bag-sized tensors kept for the backward pass (see there).
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
import torch.nn.functional as F
import torch.utils.checkpoint as ckpt
from nystrom_attention import NystromAttention
from nystrom_attention.nystrom_attention import moore_penrose_iter_pinv
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
        out, row = nystrom_forward(self.attn, q, need_cls_row)
        return t + out, (row.mean(0) if need_cls_row else None)


def nystrom_forward(attn: NystromAttention, x: torch.Tensor, need_cls_row: bool = False):
    """``attn(x)`` (nystrom-attention 0.0.14, no mask) with the same parameters and numbers
    (up to float rounding), and the class token's attention row (h, T) when asked for.

    As the package: the sequence is left-padded with zeros to a multiple of the m landmarks,
    each landmark is the mean of (T + pad) / m consecutive padded queries / keys, out =
    attn1 · pinv(attn2) · attn3 · v + a depth-wise conv over v, merged heads -> to_out (Linear,
    Dropout over the padded rows, so the dropout draws the same random numbers), last T rows.

    What differs is what a bag of T tokens keeps alive for the backward pass: the package's
    forward saves 14 bag-sized (T x dim fp32) tensors per layer, this one 11 (at 100,000
    patches one is 0.1 GB), and it makes fewer transient ones: q, k, v are projected from the
    unpadded input and padded per head (no padded copy of the input; zero rows project to
    zero without a bias, as the package's padded input does); the 1/sqrt(d) scale goes into
    the (m x d) landmarks instead of a scaled copy of every query; and the product is taken
    as attn1 · (pinv(attn2) · (attn3 · v)), an (m x d) matrix, instead of forming
    attn1 · pinv(attn2), a (T x m) one per head.
    """
    b, n, _ = x.shape
    h, m = attn.heads, attn.num_landmarks
    front = -n % m                      # zero rows in front, as the package pads
    per = (n + front) // m              # tokens per landmark

    def split(w: torch.Tensor) -> torch.Tensor:   # (b, n, dim) -> (b, h, front + n, d), contiguous
        y = F.linear(x, w).view(b, n, h, -1).transpose(1, 2)
        return F.pad(y, (0, 0, front, 0)) if front else y.contiguous()

    wq, wk, wv = attn.to_qkv.weight.chunk(3, dim=0)
    q = split(wq)
    k = split(wk)
    d = q.shape[-1]
    q_l = q.view(b, h, m, per, d).sum(3) * (attn.scale / per)    # scaled query landmarks
    k_l = k.view(b, h, m, per, d).sum(3) / per
    attn1 = (q @ (k_l * attn.scale).transpose(-1, -2)).softmax(-1)   # (b, h, T', m)
    del q  # (the dels free memory early where nothing saves it: checkpointing's no-grad pass)
    attn2_inv = moore_penrose_iter_pinv((q_l @ k_l.transpose(-1, -2)).softmax(-1),
                                        attn.pinv_iterations)       # (b, h, m, m)
    attn3 = (q_l @ k.transpose(-1, -2)).softmax(-1)                 # (b, h, m, T')
    del k
    v = split(wv)
    w = attn2_inv @ (attn3 @ v)                                     # (b, h, m, d)
    out = attn1 @ w
    if attn.residual:
        out = out + attn.res_conv(v)
    del v
    out = attn.to_out(out.transpose(1, 2).reshape(b, front + n, h * d))[:, -n:]
    row = None
    if need_cls_row:
        with torch.no_grad():
            # the class token (index 0 of x) sits at row `front`, the tokens at columns front:
            row = (attn1[0, :, front:front + 1] @ attn2_inv[0] @ attn3[0])[:, 0, front:]
    return out, row


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
