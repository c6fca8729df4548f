"""ABMIL: gated-attention MIL pooling (Ilse, Tomczak & Welling, ICML 2018).

Instances are embedded, scored by one gated-attention branch, softmax-pooled into a slide
embedding and classified. No masking (the ACMIL paper's one-branch baseline).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import GatedAttention, ce_loss, instance_embedding


class ABMIL(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, hidden_dim: int = 256, attn_dim: int = 128,
                 dropout: float = 0.25, **_):
        super().__init__()
        self.embed = instance_embedding(in_dim, hidden_dim, dropout)
        self.attention = GatedAttention(hidden_dim, attn_dim, 1, dropout)
        self.classifier = nn.Linear(hidden_dim, n_classes)

    def forward(self, x: torch.Tensor) -> dict:
        h = self.embed(x)                                        # (N, H)
        a = torch.softmax(self.attention(h), dim=1)              # (1, N)
        z = a @ h                                                # (1, H)
        return {"logits": self.classifier(z), "attention": a[0]}

    loss = staticmethod(ce_loss)
