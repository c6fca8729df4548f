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
import tempfile
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features.files import slide_features_file
from .records import DatasetInputError
from .writers import sample_key

log = logging.getLogger(__name__)


class SampleEmbeddings:
    """The samples' embeddings in dataset order, gathered one slide at a time (a slide's
    features file is read once, its rows normalised and appended to an unnamed temporary file
    in ``tmp_dir``), plus a compact id per sample (slide index, x, y) for the report: what the
    index needs, never a record. :meth:`matrix` loads the (N, D) float32 rows."""

    def __init__(self, tmp_dir: str | os.PathLike | None = None):
        self._fh = tempfile.TemporaryFile(dir=tmp_dir)
        self.slides: list[str] = []
        self.slide_idx = array("i")
        self.xs, self.ys = array("q"), array("q")
        self.dim: int | None = None

    def __len__(self) -> int:
        return len(self.xs)

    def key(self, i: int) -> str:
        return sample_key(self.slides[self.slide_idx[i]], self.xs[i], self.ys[i])

    def add_slide(self, slide: str, xy: list[tuple[int, int]], path) -> None:
        """The rows at the samples' (x, y) in ``path`` (the slide's features HDF5)."""
        from ..features.h5io import FeaturesFileError, read_features

        if not xy:
            return
        if path is None or not Path(path).exists():
            raise DatasetInputError(
                f"dataset.dedup_cosine needs the features HDF5 of slide {slide!r} ({path or 'not given'}); "
                "run the features stage, pass --features-dir, or set dataset.dedup_cosine: null")
        try:
            feats, coords, _ = read_features(path)
        except FeaturesFileError as err:
            raise DatasetInputError(f"dataset.dedup_cosine: {err}") from None
        where = {(int(x), int(y)): r for r, (x, y) in enumerate(coords)}
        rows = []
        for x, y in xy:
            r = where.get((x, y))
            if r is None:
                raise DatasetInputError(
                    f"dataset.dedup_cosine: {path} has no patch at ({x}, {y}) "
                    f"of caption record {sample_key(slide, x, y)}; the captions come from other features "
                    "(re-run selection and captioning, or set dataset.dedup_cosine: null)")
            rows.append(np.asarray(feats[r], np.float32).reshape(-1))
        if self.dim is None:
            self.dim = len(rows[0])
        elif len(rows[0]) != self.dim:
            raise DatasetInputError(f"dataset.dedup_cosine: {path} has {len(rows[0])}-d features, other "
                                    f"slides {self.dim}-d; all slides must come from one encoder")
        x = np.stack(rows)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        self._fh.write(np.ascontiguousarray(x, np.float32).tobytes())
        self.slide_idx.extend([len(self.slides)] * len(xy))
        self.slides.append(slide)
        self.xs.extend(x_ for x_, _ in xy)
        self.ys.extend(y_ for _, y_ in xy)

    def matrix(self) -> np.ndarray:
        if not len(self):
            return np.zeros((0, 0), np.float32)
        self._fh.flush()
        self._fh.seek(0)
        x = np.fromfile(self._fh, np.float32).reshape(len(self), self.dim)
        self.close()
        return x

    def close(self) -> None:
        self._fh.close()


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


def dedup_keep(emb: SampleEmbeddings, threshold: float, k: int, exact_max: int,
               nprobe: int) -> tuple[np.ndarray, dict]:
    """Which samples stay (bool per sample, dataset order) and the report that goes into
    dataset_card.json under `dedup`."""
    n = len(emb)
    x = emb.matrix()
    if n < 2:
        return np.ones(n, bool), {"enabled": True, "cosine": threshold, "n_before": n,
                                  "n_removed": 0, "n_after": n, "removed": []}
    nb = neighbours(x, k, exact_max, nprobe, threshold=threshold)
    del x
    dup, cos = duplicate_of(nb, threshold)
    slide_idx = np.frombuffer(emb.slide_idx, np.int32)
    removed = [{"key": emb.key(i), "duplicate_of": emb.key(j), "cosine": round(float(cos[i]), 5),
                "cross_slide": bool(slide_idx[i] != slide_idx[j])}
               for i, j in enumerate(dup) if j >= 0]
    keep = dup < 0
    per_slide = Counter(emb.slides[s] for s in slide_idx[~keep])
    left = Counter(emb.slides[s] for s in np.unique(slide_idx[keep]))
    emptied = sorted(s for s in per_slide if not left[s])
    n_kept = int(keep.sum())
    report = {"enabled": True, "cosine": threshold, "neighbors": k, "index": nb.index,
              "n_before": n, "n_removed": len(removed), "n_after": n_kept,
              "n_cross_slide": sum(r["cross_slide"] for r in removed),
              "removed_per_slide": dict(sorted(per_slide.items())), "slides_emptied": emptied,
              "removed": removed}
    log.info("dataset dedup (cosine >= %g, %s): removed %d of %d (%d across slides)", threshold,
             nb.index, len(removed), n, report["n_cross_slide"])
    if emptied:
        log.warning("dataset dedup removed every sample of %d slide(s): %s (their patches duplicate "
                    "earlier slides: the same tissue twice?)", len(emptied), ", ".join(emptied))
    return keep, report


def features_file(slide: str, features: dict[str, os.PathLike] | None, default_dir) -> Path:
    """A slide's features HDF5: the given mapping, else <default_dir>/<slide>.h5 (the Layout
    puts captions_<tag>/ inside the features folder)."""
    given = (features or {}).get(slide)
    return Path(given) if given else slide_features_file(default_dir, slide)


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
