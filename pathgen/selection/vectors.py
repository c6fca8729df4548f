"""Pure selection maths on L2-normalised embedding vectors (no I/O): prompt retrieval, k-means
prototypes, one capped union with provenance, near-duplicate removal.

Follows the PathGen-1.6M recipe (see docs/selection.md): cosine x 100 against text prompts,
top-k per prompt; k = ceil(sqrt(factor * n)) k-means prototypes, ~cap / k per cluster; n
counts patches (the release counted 128-patch batches, a bug we do not repeat). Unlike the
release, `cap` (selection.max_per_slide) bounds the union: prompt hits take places first,
prototypes fill the rest up to the cap.
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
    order: list[int]                   # every patch, prototype priority order (see below)
    centroid_cos: np.ndarray           # (N,) cosine of each patch to its own centroid
    k: int

    def prototypes(self, cap: int) -> list[int]:
        """The first `cap` prototypes (what the fill takes when nothing else competes)."""
        return self.order[:max(cap, 0)]


def kmeans_prototypes(emb: np.ndarray, factor: float = 1.6, seed: int = 0,
                      n_init: int = 4) -> ClusterResult:
    """k-means prototypes in priority order: round-robin over clusters (largest first), inside
    a cluster nearest the centroid first, until every patch is listed.

    Taking the first m of that order gives ~m/k per cluster (the method's max(1, 256 / k))
    and, unlike a fixed per-cluster quota, still fills m when k does not divide it; when
    k > m the largest clusters win and a cut never drops a whole large cluster.
    """
    from sklearn.cluster import KMeans

    x = l2_normalize(emb) if len(emb) else np.zeros((0, emb.shape[1] if emb.ndim == 2 else 0),
                                                    dtype=np.float32)
    n = len(x)
    k = choose_k(n, factor)
    if n == 0:
        return ClusterResult(np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.float32), k)
    if k == 1:
        labels = np.zeros(n, dtype=np.int64)
        centers = x.mean(axis=0, keepdims=True)
    else:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        labels = km.fit_predict(x).astype(np.int64)
        centers = km.cluster_centers_.astype(np.float32)
    cnorm = l2_normalize(centers)
    centroid_cos = np.einsum("nd,nd->n", x, cnorm[labels]).astype(np.float32)
    ranked: dict[int, list[int]] = {}
    for c in range(k):
        members = np.flatnonzero(labels == c)
        ranked[c] = [int(i) for i in members[np.lexsort((members, -centroid_cos[members]))]]
    cluster_order = sorted(ranked, key=lambda c: (-len(ranked[c]), c))
    order = [ranked[c][rank] for rank in range(max(len(v) for v in ranked.values()))
             for c in cluster_order if rank < len(ranked[c])]
    return ClusterResult(labels, order, centroid_cos, k)


@dataclass
class Candidate:
    index: int
    source: str
    score: float
    prompt: str = ""
    cluster_id: int = -1
    extra: dict = field(default_factory=dict)


def topk_ranks(scores: np.ndarray, k: int) -> dict[int, int]:
    """{patch: its best place (0 = top) in any prompt's top-k}, for round-robin precedence."""
    out: dict[int, int] = {}
    for j in range(scores.shape[1] if scores.size else 0):
        for r, i in enumerate(np.argsort(-scores[:, j], kind="stable")[:max(k, 0)]):
            out[int(i)] = min(r, out.get(int(i), r))
    return out


def candidate_pool(prompt_hits: dict[int, tuple[int, float]], prompts: list[str],
                   ranks: dict[int, int] | None, clusters: ClusterResult) -> list[Candidate]:
    """Every patch once, in precedence order: prompt hits first (round-robin over prompts:
    every prompt's best patch, then every prompt's second, ...; score breaks ties), then the
    k-means prototypes in their round-robin order.

    `score` is 100 * cosine to the best selecting prompt; for prototypes it is 100 * cosine
    to the cluster centroid. Sources are final only after `fill` (prompt+cluster marks a hit
    the prototype fill would have taken too).
    """
    labels = clusters.labels
    ranks = ranks or {}
    hits = sorted(prompt_hits.items(), key=lambda kv: (ranks.get(kv[0], 0), -kv[1][1], kv[0]))
    pool = [Candidate(i, SOURCE_PROMPT, s, prompts[j], int(labels[i]) if len(labels) else -1)
            for i, (j, s) in hits]
    pool += [Candidate(i, SOURCE_CLUSTER, 100.0 * float(clusters.centroid_cos[i]), "", int(labels[i]))
             for i in clusters.order if i not in prompt_hits]
    return pool


@dataclass
class FillResult:
    kept: list[Candidate]
    removed: int = 0        # near-duplicates dropped and not restored
    restored: int = 0       # near-duplicates put back so the slide keeps `min_keep`
    walked: int = 0         # pool candidates looked at before the cap was reached
    note: str = ""          # why patches were removed/restored (empty: nothing removed)


def fill(pool: list[Candidate], emb: np.ndarray, cap: int, threshold: float, min_keep: int,
         clusters: ClusterResult | None = None) -> FillResult:
    """Walk the pool in precedence order, dropping a candidate whose cosine to an already
    kept one is above `threshold` (>= 1: off), until `cap` are kept (a hard cap on the union).

    Dedup never empties a slide: when fewer than min(min_keep, cap, pool) survive (the
    embeddings are near-identical, e.g. a random-init encoder), the dropped candidates are
    restored in precedence order up to that floor, and `note` says so.
    """
    cap = max(int(cap), 0)
    x = l2_normalize(emb[[c.index for c in pool]]) if pool else np.zeros((0, 1), np.float32)
    kept_rows: list[int] = []
    dropped: list[int] = []
    bank = np.zeros((min(cap, len(pool)), x.shape[1]), np.float32)
    walked = 0
    for r in range(len(pool)):
        if len(kept_rows) >= cap:
            break
        walked = r + 1
        if threshold < 1.0 and kept_rows and float((bank[:len(kept_rows)] @ x[r]).max()) > threshold:
            dropped.append(r)
            continue
        bank[len(kept_rows)] = x[r]
        kept_rows.append(r)
    floor = min(max(min_keep, 0), cap, len(pool))
    restore = dropped[:max(0, floor - len(kept_rows))]
    rows = sorted(kept_rows + restore)
    res = FillResult([pool[i] for i in rows], len(dropped) - len(restore), len(restore), walked)
    if dropped:
        res.note = (f"{len(dropped)} of {walked} candidates were near-duplicates "
                    f"(cosine > {threshold:g} to a kept patch)")
    if restore:
        res.note += (f"; dedup alone would keep {len(kept_rows)}, so {len(restore)} were restored "
                     f"to reach selection.dedupe_min_keep={min_keep} (near-identical embeddings: "
                     "is the encoder pretrained?)")
    _mark_both(res.kept, pool, walked, clusters)
    return res


def _mark_both(kept: list[Candidate], pool: list[Candidate], walked: int,
               clusters: ClusterResult | None) -> None:
    """prompt+cluster: a prompt hit that the prototype order reaches before the fill stopped
    (the fill skips hits already kept, so they count as reached, not as fill places)."""
    if clusters is None:
        return
    hit_ids = {c.index for c in pool if c.source == SOURCE_PROMPT}
    if walked >= len(pool):
        reached = set(clusters.order)
    else:
        todo, reached = max(0, walked - len(hit_ids)), set()
        for i in clusters.order:
            if todo <= 0:
                break
            reached.add(i)
            todo -= i not in hit_ids
    for c in kept:
        if c.source == SOURCE_PROMPT and c.index in reached:
            c.source = SOURCE_BOTH


def dedupe(candidates: list[Candidate], emb: np.ndarray, threshold: float) -> list[Candidate]:
    """Greedy near-duplicate removal without a cap or floor (precedence order kept)."""
    return fill(candidates, emb, len(candidates), threshold, 0).kept


def select(emb: np.ndarray, text_emb: np.ndarray | None, prompts: list[str], *, top_k: int,
           factor: float, cap: int, seed: int, n_init: int, dedupe_cosine: float,
           min_keep: int = 32) -> tuple[list[Candidate], dict]:
    """Whole selection for one slide: at most `cap` patches, prompt hits first, prototypes
    fill. Returns the kept candidates (precedence order) and counts for the log/state."""
    n = len(emb)
    if text_emb is not None and len(prompts) != len(text_emb):
        raise ValueError(f"{len(prompts)} prompts but {len(text_emb)} text embeddings")
    if text_emb is not None and n and text_emb.shape[1] != emb.shape[1]:
        raise ValueError(
            f"patch embeddings have dimension {emb.shape[1]} but the text tower gives "
            f"{text_emb.shape[1]}: the features must come from the same CLIP as the prompts "
            "(set selection.text_encoder to the encoder that made the features)")
    scores = prompt_scores(emb, text_emb) if (n and text_emb is not None and len(prompts)) else None
    hits = topk_per_prompt(scores, top_k) if scores is not None else {}
    clusters = kmeans_prototypes(emb, factor=factor, seed=seed, n_init=n_init)
    ranks = topk_ranks(scores, top_k) if scores is not None else None
    pool = candidate_pool(hits, prompts, ranks, clusters)
    res = fill(pool, emb, cap, dedupe_cosine, min_keep, clusters)
    kept = res.kept
    stats = dict(n_patches=n, n_prompts=len(prompts), prompt_hits=len(hits), k=clusters.k,
                 per_cluster=per_cluster_quota(clusters.k, cap), max_per_slide=cap,
                 from_prompts=sum(c.source != SOURCE_CLUSTER for c in kept),
                 from_prototypes=sum(c.source == SOURCE_CLUSTER for c in kept),
                 kept=len(kept), dedupe_removed=res.removed, dedupe_restored=res.restored,
                 dedupe_note=res.note)
    return kept, stats
