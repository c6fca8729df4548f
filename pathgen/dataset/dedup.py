"""Dataset-level near-duplicate removal on the stored patch embeddings (optional,
``dataset.dedup_cosine``).

Selection already drops near-duplicates inside a slide; this pass looks across the whole
dataset (the same tissue scanned twice, re-cuts, overlapping slides). Each sample's embedding
is its row in the slide's features HDF5 (docs/architecture.md: ``features`` (N, D) +
``coords`` (N, 2), level-0 top-left corners, the same x/y the caption records carry).

Neighbours come from faiss (inner product on L2-normalised rows = cosine): an exact
``IndexFlatIP`` up to ``dedup_exact_max`` samples; above it, candidates from PCA-64 +
``IndexIVFFlat`` (``nlist`` ~ 4 sqrt(N) cells, ``dedup_nprobe`` probed), which scales to
millions, whose cosines are then computed exactly on the full rows, so every reported cosine
is exact and only recall is approximate (bench/dedup.py measures it). Each sample asks for
its ``dedup_neighbors`` nearest neighbours; a pair with cosine >= ``dedup_cosine`` is a
duplicate.

Which one stays is deterministic: samples are walked in dataset order (caption files by
name, then y, x: the order of every output file) and a sample is removed when an earlier,
kept sample is its near-duplicate, so each group keeps its first member.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features.files import slide_features_file
from .records import DatasetInputError

log = logging.getLogger(__name__)


def sample_embeddings(samples: list[dict], features: dict[str, Path]) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of the samples, in sample order."""
    from ..features.h5io import FeaturesFileError, read_features

    rows: list[np.ndarray | None] = [None] * len(samples)
    by_slide: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_slide.setdefault(s["slide_id"], []).append(i)
    dim = None
    for slide, idx in by_slide.items():
        path = features.get(slide)
        if path is None or not Path(path).exists():
            raise DatasetInputError(
                f"dataset.dedup_cosine needs the features HDF5 of slide {slide!r} ({path or 'not given'}); "
                "run the features stage, pass --features-dir, or set dataset.dedup_cosine: null")
        try:
            feats, coords, _ = read_features(path)
        except FeaturesFileError as err:
            raise DatasetInputError(f"dataset.dedup_cosine: {err}") from None
        where = {(int(x), int(y)): r for r, (x, y) in enumerate(coords)}
        for i in idx:
            r = where.get((samples[i]["x"], samples[i]["y"]))
            if r is None:
                raise DatasetInputError(
                    f"dataset.dedup_cosine: {path} has no patch at ({samples[i]['x']}, {samples[i]['y']}) "
                    f"of caption record {samples[i]['key']}; the captions come from other features "
                    "(re-run selection and captioning, or set dataset.dedup_cosine: null)")
            rows[i] = np.asarray(feats[r], np.float32).reshape(-1)
        if dim is None:
            dim = len(rows[idx[0]])
        elif len(rows[idx[0]]) != dim:
            raise DatasetInputError(f"dataset.dedup_cosine: {path} has {len(rows[idx[0]])}-d features, other "
                                    f"slides {dim}-d; all slides must come from one encoder")
    if not samples:
        return np.zeros((0, 0), np.float32)
    x = np.stack(rows)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class Neighbours:
    sims: np.ndarray   # (N, k) cosine, descending
    ids: np.ndarray    # (N, k) row ids, -1 = none
    index: str         # what searched, for the card


PCA_DIM = 64  # candidate search space above dedup_exact_max (cosines are then rescored exactly)


def build_index(x: np.ndarray, exact_max: int, nprobe: int, seed: int = 0):
    """faiss index over the rows -> (index, description, approximate?).

    Up to `exact_max` rows: exact flat inner product (= cosine on unit rows). Above: PCA to
    64 dims then IVF-flat with L2 (a projection never moves two rows apart, so a pair with
    cosine >= t, i.e. squared distance <= 2 - 2t, is still that close in the candidate
    space), nlist ~ 4 sqrt(N) cells trained on 10 sampled rows a cell (10 k-means
    iterations); the candidates' cosines are then computed exactly on the full rows."""
    import faiss

    n, d = x.shape
    if n <= exact_max:
        index = faiss.IndexFlatIP(d)
        index.add(x)
        return index, "faiss IndexFlatIP (exact)", False
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 10))
    dim = min(PCA_DIM, d)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist, faiss.METRIC_L2)
    ivf.cp.seed, ivf.cp.niter = seed, 10
    ivf.cp.max_points_per_centroid, ivf.cp.min_points_per_centroid = 10, 5
    ivf.nprobe = min(nprobe, nlist)
    index = faiss.IndexPreTransform(faiss.PCAMatrix(d, dim), ivf)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, 10 * nlist), replace=False))
    index.train(np.ascontiguousarray(x[rows]))
    for lo in range(0, n, 262_144):
        index.add(np.ascontiguousarray(x[lo:lo + 262_144]))
    return index, (f"faiss PCA{dim} + IndexIVFFlat (nlist {nlist}, nprobe {ivf.nprobe}) candidates, "
                   "exact cosine rescoring; approximate recall"), True


def neighbours(x: np.ndarray, k: int, exact_max: int = 50_000, nprobe: int = 8,
               batch: int = 16_384, built=None, threshold: float | None = None) -> Neighbours:
    """k nearest rows of every row with exact cosines, descending (`built`: build_index's
    result, to time the build apart). With `threshold`, approximate candidates that cannot
    reach it (projected squared distance > 2 - 2 t: a projection only shrinks distances)
    are not rescored and get cosine -inf."""
    x = np.ascontiguousarray(x, np.float32)
    index, desc, approx = built or build_index(x, exact_max, nprobe)
    k = min(k + 1, len(x))  # +1: a row finds itself
    sims, ids = [], []
    for lo in range(0, len(x), batch):
        q = x[lo:lo + batch]
        s, i = index.search(q, k)
        if approx:
            s, i = _rescore(q, x, s, i, threshold)
        sims.append(s.astype(np.float32))
        ids.append(i)
    return Neighbours(np.concatenate(sims), np.concatenate(ids), desc)


def _rescore(q: np.ndarray, x: np.ndarray, d2: np.ndarray, ids: np.ndarray,
             threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosines of IVF candidates (L2 distances in the projected space), sorted."""
    want = ids >= 0
    if threshold is not None:
        want &= d2 <= 2.0 * (1.0 - threshold) + 1e-3  # float slack
    s = np.full(ids.shape, -np.inf, np.float32)
    for c in range(ids.shape[1]):  # column by column: small gathers, no (B, k, D) temporary
        rows = np.flatnonzero(want[:, c])
        if len(rows):
            s[rows, c] = np.einsum("nd,nd->n", q[rows], x[ids[rows, c]])
    order = np.argsort(-s, axis=1, kind="stable")
    return np.take_along_axis(s, order, 1), np.take_along_axis(ids, order, 1)


def duplicate_of(nb: Neighbours, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """For each row the earlier kept row it duplicates (-1 = keep) and that cosine.

    Only rows with an earlier neighbour above the threshold enter the (ordered) greedy walk."""
    n = len(nb.ids)
    dup = np.full(n, -1, np.int64)
    cos = np.zeros(n, np.float32)
    earlier = (nb.ids >= 0) & (nb.ids < np.arange(n)[:, None]) & (nb.sims >= threshold)
    for i in np.flatnonzero(earlier.any(axis=1)):
        for j, s in zip(nb.ids[i][earlier[i]], nb.sims[i][earlier[i]]):
            if dup[j] < 0:  # j itself was kept
                dup[i], cos[i] = j, s
                break
    return dup, cos


def dedup_samples(samples: list[dict], features: dict[str, Path], threshold: float, k: int,
                  exact_max: int, nprobe: int) -> tuple[list[dict], dict]:
    """Drop near-duplicate samples; returns the kept samples (order kept) and the report that
    goes into dataset_card.json under `dedup`."""
    x = sample_embeddings(samples, features)
    if len(samples) < 2:
        return list(samples), {"enabled": True, "cosine": threshold, "n_before": len(samples),
                               "n_removed": 0, "n_after": len(samples), "removed": []}
    nb = neighbours(x, k, exact_max, nprobe, threshold=threshold)
    dup, cos = duplicate_of(nb, threshold)
    removed = [{"key": samples[i]["key"], "duplicate_of": samples[j]["key"], "cosine": round(float(cos[i]), 5),
                "cross_slide": samples[i]["slide_id"] != samples[j]["slide_id"]}
               for i, j in enumerate(dup) if j >= 0]
    kept = [s for s, j in zip(samples, dup) if j < 0]
    per_slide = Counter(samples[i]["slide_id"] for i in np.flatnonzero(dup >= 0))
    left = Counter(s["slide_id"] for s in kept)
    emptied = sorted(s for s in per_slide if not left[s])
    report = {"enabled": True, "cosine": threshold, "neighbors": k, "index": nb.index,
              "n_before": len(samples), "n_removed": len(removed), "n_after": len(kept),
              "n_cross_slide": sum(r["cross_slide"] for r in removed),
              "removed_per_slide": dict(sorted(per_slide.items())), "slides_emptied": emptied,
              "removed": removed}
    log.info("dataset dedup (cosine >= %g, %s): removed %d of %d (%d across slides)", threshold,
             nb.index, len(removed), len(samples), report["n_cross_slide"])
    if emptied:
        log.warning("dataset dedup removed every sample of %d slide(s): %s (their patches duplicate "
                    "earlier slides: the same tissue twice?)", len(emptied), ", ".join(emptied))
    return kept, report


def features_for(slides, features: dict[str, os.PathLike] | None, default_dir) -> dict[str, Path]:
    """slide -> features HDF5: the given mapping, else <captions folder>/../<slide>.h5 (the
    Layout puts captions_<tag>/ inside the features folder)."""
    out = {}
    for sc in slides:
        given = (features or {}).get(sc.slide_id)
        out[sc.slide_id] = Path(given) if given else slide_features_file(default_dir(sc), sc.slide_id)
    return out


def dedup_markdown(report: dict) -> str:
    """The dataset card's dedup section."""
    if not report.get("enabled"):
        return "\n## Near-duplicates across the dataset\n\nOff (`dataset.dedup_cosine: null`).\n"
    lines = ["", "## Near-duplicates across the dataset", "",
             f"cosine >= {report['cosine']} on the stored patch embeddings, "
             f"{report.get('index', 'no search (fewer than 2 samples)')}: removed "
             f"{report['n_removed']} of {report['n_before']} samples "
             f"({report.get('n_cross_slide', 0)} duplicating another slide); the first of each "
             "group in dataset order stays."]
    if report.get("removed_per_slide"):
        lines += ["", "| slide | removed |", "| --- | --- |"]
        lines += [f"| {s} | {n} |" for s, n in report["removed_per_slide"].items()]
    if report.get("slides_emptied"):
        lines += ["", "Slides left without samples: " + ", ".join(report["slides_emptied"])]
    return "\n".join(lines) + "\n"
