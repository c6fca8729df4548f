"""Pure selection maths on L2-normalised embedding vectors (no I/O): prompt retrieval, k-means
prototypes, union with provenance, near-duplicate removal.

Follows the PathGen-1.6M recipe (see docs/selection.md): cosine x 100 against text prompts,
top-k per prompt; k = ceil(sqrt(factor * n)) k-means prototypes, up to max(1, cap // k)
per cluster, at most `cap` per slide; n counts patches (the release counted 128-patch
batches, a bug we do not repeat).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SOURCE_PROMPT = "prompt"
SOURCE_CLUSTER = "cluster"
SOURCE_BOTH = "prompt+cluster"


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in float32; all-zero rows stay zero (no NaN)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D (N, D) array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def choose_k(n: int, factor: float = 1.6) -> int:
    """k = ceil(sqrt(factor * n)), never more than n (and 0 for an empty slide)."""
    if n <= 0:
        return 0
    if factor <= 0:
        raise ValueError(f"kmeans factor must be > 0, got {factor}")
    return max(1, min(n, math.ceil(math.sqrt(factor * n))))


def per_cluster_quota(k: int, cap: int) -> int:
    """Patches drawn per cluster: max(1, cap // k)."""
    return max(1, cap // k) if k > 0 else 0


def prompt_scores(emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """(N, P) logits = 100 * cosine(patch, prompt), CLIP's zero-shot scale."""
    return 100.0 * (l2_normalize(emb) @ l2_normalize(text_emb).T)


def topk_per_prompt(scores: np.ndarray, k: int) -> dict[int, tuple[int, float]]:
    """Keep the top-k patches of every prompt column.

    Returns {patch_index: (best_prompt_index, best_score)} over all prompts that picked the
    patch (a patch picked by several prompts keeps its highest-scoring one). Ties break by
    lower patch index, so the result is deterministic.
    """
    n, p = scores.shape
    out: dict[int, tuple[int, float]] = {}
    if n == 0 or p == 0 or k <= 0:
        return out
    k = min(k, n)
    for j in range(p):
        col = scores[:, j]
        # stable sort on -score keeps lower indices first among equal scores
        top = np.argsort(-col, kind="stable")[:k]
        for i in top:
            s = float(col[i])
            if int(i) not in out or s > out[int(i)][1]:
                out[int(i)] = (j, s)
    return out


@dataclass
class ClusterResult:
    labels: np.ndarray                 # (N,) cluster id of every patch
    picked: list[int]                  # selected patch indices, priority order
    centroid_cos: np.ndarray           # (N,) cosine of each patch to its own centroid
    k: int
    quota: int


def kmeans_prototypes(emb: np.ndarray, factor: float = 1.6, cap: int = 256, seed: int = 0,
                      n_init: int = 4) -> ClusterResult:
    """k-means prototypes: per cluster the members nearest the centroid, at most `cap` total.

    When k > cap (very large slides) every cluster still offers its nearest member; the
    largest clusters win the `cap` slots (ties by cluster id).
    """
    from sklearn.cluster import KMeans

    x = l2_normalize(emb) if len(emb) else np.zeros((0, emb.shape[1] if emb.ndim == 2 else 0),
                                                    dtype=np.float32)
    n = len(x)
    k = choose_k(n, factor)
    if n == 0 or cap <= 0:
        return ClusterResult(np.zeros(n, dtype=np.int64), [], np.zeros(n, dtype=np.float32), k,
                             per_cluster_quota(k, cap))
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
        centers = x.mean(axis=0, keepdims=True)
    else:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        labels = km.fit_predict(x).astype(np.int64)
        centers = km.cluster_centers_.astype(np.float32)
    cnorm = l2_normalize(centers)
    centroid_cos = np.einsum("nd,nd->n", x, cnorm[labels]).astype(np.float32)
    quota = per_cluster_quota(k, cap)
    # Rank members inside each cluster by closeness to the centroid (index breaks ties).
    ranked: dict[int, list[int]] = {}
    for c in range(k):
        members = np.flatnonzero(labels == c)
        order = members[np.lexsort((members, -centroid_cos[members]))]
        ranked[c] = [int(i) for i in order[:quota]]
    # Round-robin over clusters (largest first) so a cap cut drops the least central
    # members first, never a whole large cluster.
    cluster_order = sorted(ranked, key=lambda c: (-int((labels == c).sum()), c))
    picked: list[int] = []
    for rank in range(quota):
        for c in cluster_order:
            if rank < len(ranked[c]):
                picked.append(ranked[c][rank])
    return ClusterResult(labels, picked[:cap], centroid_cos, k, quota)


@dataclass
class Candidate:
    index: int
    source: str
    score: float
    prompt: str = ""
    cluster_id: int = -1
    extra: dict = field(default_factory=dict)


def union_candidates(prompt_hits: dict[int, tuple[int, float]], prompts: list[str],
                     clusters: ClusterResult) -> list[Candidate]:
    """Merge both mechanisms with provenance, in priority order: picked by both, then
    prompt hits by score, then cluster prototypes in their round-robin order.

    `score` is 100 * cosine to the best selecting prompt; for cluster-only rows it is
    100 * cosine to the cluster centroid.
    """
    cluster_set = set(clusters.picked)
    labels = clusters.labels
    both, prompt_only = [], []
    for i, (j, s) in prompt_hits.items():
        cand = Candidate(i, SOURCE_BOTH if i in cluster_set else SOURCE_PROMPT, s, prompts[j],
                         int(labels[i]) if len(labels) else -1)
        (both if i in cluster_set else prompt_only).append(cand)
    both.sort(key=lambda c: (-c.score, c.index))
    prompt_only.sort(key=lambda c: (-c.score, c.index))
    cluster_only = [Candidate(i, SOURCE_CLUSTER, 100.0 * float(clusters.centroid_cos[i]), "",
                              int(labels[i]))
                    for i in clusters.picked if i not in prompt_hits]
    return both + prompt_only + cluster_only


def dedupe(candidates: list[Candidate], emb: np.ndarray, threshold: float) -> list[Candidate]:
    """Greedy near-duplicate removal: walk in priority order, drop a candidate whose cosine
    to an already kept one is above `threshold` (>= 1 disables it)."""
    if not candidates or threshold >= 1.0:
        return list(candidates)
    x = l2_normalize(emb[[c.index for c in candidates]])
    sim = x @ x.T
    kept_rows: list[int] = []
    out = []
    for r, cand in enumerate(candidates):
        if kept_rows and float(sim[r, kept_rows].max()) > threshold:
            continue
        kept_rows.append(r)
        out.append(cand)
    return out


def select(emb: np.ndarray, text_emb: np.ndarray | None, prompts: list[str], *, top_k: int,
           factor: float, cap: int, seed: int, n_init: int, dedupe_cosine: float
           ) -> tuple[list[Candidate], dict]:
    """Whole selection for one slide; returns the kept candidates and counts for the log."""
    n = len(emb)
    if text_emb is not None and len(prompts) != len(text_emb):
        raise ValueError(f"{len(prompts)} prompts but {len(text_emb)} text embeddings")
    if text_emb is not None and n and text_emb.shape[1] != emb.shape[1]:
        raise ValueError(
            f"patch embeddings have dimension {emb.shape[1]} but the text tower gives "
            f"{text_emb.shape[1]}: the features must come from the same CLIP as the prompts "
            "(set selection.text_encoder to the encoder that made the features)")
    hits = (topk_per_prompt(prompt_scores(emb, text_emb), top_k)
            if (n and text_emb is not None and len(prompts)) else {})
    clusters = kmeans_prototypes(emb, factor=factor, cap=cap, seed=seed, n_init=n_init)
    cands = union_candidates(hits, prompts, clusters)
    kept = dedupe(cands, emb, dedupe_cosine)
    stats = dict(n_patches=n, n_prompts=len(prompts), prompt_hits=len(hits), k=clusters.k,
                 per_cluster=clusters.quota, cluster_picked=len(clusters.picked),
                 union=len(cands), kept=len(kept))
    return kept, stats
