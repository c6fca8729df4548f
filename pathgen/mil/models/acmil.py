"""ACMIL: attention-challenging MIL (Zhang et al., ICCV 2023).

- Multi-branch attention: K gated-attention branches (K=5), each pooling the bag into its
  own embedding scored by its own classifier; the slide prediction pools with the mean of
  the branches' attention maps.
- Stochastic top-k instance masking (training only): in each branch the k most attended
  instances (k=10) are each dropped with probability p (0.6) before the softmax, so the
  model cannot rest on a few dominant patches.
- Diversity: the mean pairwise cosine similarity between branch attention maps is added
  to the loss, pushing branches towards different patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import GatedAttention, instance_embedding


class ACMIL(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, hidden_dim: int = 256, attn_dim: int = 128,
                 dropout: float = 0.25, n_branches: int = 5, mask_top_k: int = 10,
                 mask_prob: float = 0.6, diversity_weight: float = 1.0, **_):
        super().__init__()
        self.n_branches, self.mask_top_k, self.mask_prob = n_branches, mask_top_k, mask_prob
        self.diversity_weight = diversity_weight
        self.embed = instance_embedding(in_dim, hidden_dim, dropout)
        self.attention = GatedAttention(hidden_dim, attn_dim, n_branches, dropout)
        self.branch_classifiers = nn.ModuleList(nn.Linear(hidden_dim, n_classes)
                                                for _ in range(n_branches))
        self.classifier = nn.Linear(hidden_dim, n_classes)

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """Boolean (K, N): which instances to drop; top-k per branch, each with prob p.

        At least one instance per branch always stays visible.
        """
        k_branches, n = scores.shape
        k = min(self.mask_top_k, n - 1)
        drop = torch.zeros_like(scores, dtype=torch.bool)
        if k <= 0 or self.mask_prob <= 0:
            return drop
        top = scores.topk(k, dim=1).indices                                   # (K, k)
        chosen = torch.rand(k_branches, k, device=scores.device) < self.mask_prob
        drop.scatter_(1, top, chosen)
        return drop

    def forward(self, x: torch.Tensor) -> dict:
        h = self.embed(x)                                                      # (N, H)
        scores = self.attention(h)                                             # (K, N)
        if self.training:
            scores = scores.masked_fill(self.mask(scores.detach()), float("-inf"))
        a = torch.softmax(scores, dim=1)                                       # (K, N)
        z = a @ h                                                              # (K, H)
        branch_logits = torch.stack([clf(z[i]) for i, clf in enumerate(self.branch_classifiers)])
        a_mean = a.mean(0)                                                     # (N,)
        logits = self.classifier((a_mean @ h).unsqueeze(0))                    # (1, C)
        return {"logits": logits, "attention": a_mean, "branch_logits": branch_logits,
                "branch_attention": a}

    def diversity(self, a: torch.Tensor) -> torch.Tensor:
        if a.shape[0] < 2:
            return a.new_zeros(())
        an = F.normalize(a, dim=1)
        sim = an @ an.T
        iu = torch.triu_indices(a.shape[0], a.shape[0], 1, device=a.device)
        return sim[iu[0], iu[1]].mean()

    def loss(self, out: dict, y: torch.Tensor) -> torch.Tensor:
        yb = y.view(1).expand(self.n_branches)
        return (F.cross_entropy(out["branch_logits"], yb) + F.cross_entropy(out["logits"], y.view(1))
                + self.diversity_weight * self.diversity(out["branch_attention"]))
