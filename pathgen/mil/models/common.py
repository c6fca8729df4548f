"""Pieces shared by the attention models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedAttention(nn.Module):
    """Ilse et al. 2018 gated attention: a_k = w_k^T (tanh(V h) * sigmoid(U h)), K heads."""

    def __init__(self, dim: int, attn_dim: int, n_heads: int = 1, dropout: float = 0.0):
        super().__init__()
        self.V = nn.Sequential(nn.Linear(dim, attn_dim), nn.Tanh(), nn.Dropout(dropout))
        self.U = nn.Sequential(nn.Linear(dim, attn_dim), nn.Sigmoid(), nn.Dropout(dropout))
        self.w = nn.Linear(attn_dim, n_heads)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(N, dim) -> raw attention scores (K, N), before the softmax over instances."""
        return self.w(self.V(h) * self.U(h)).transpose(0, 1)


def instance_embedding(in_dim: int, hidden_dim: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout))


def ce_loss(out: dict, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out["logits"], y.view(1))
