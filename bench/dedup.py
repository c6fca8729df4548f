"""Dataset-level near-duplicate search (pathgen.dataset.dedup) at 1 M x 512 embeddings.

Measures, in one run, on synthetic CLIP-like embeddings (unit vectors around `--centers`
cluster centres, cosine to their centre ~0.75; `--planted` rows replaced by a near copy of
another row, cosine ~0.999):
- the index pathgen uses above dataset.dedup_exact_max: PCA-64 + faiss IndexIVFFlat
  candidates, rescored with exact cosines; build + k-NN search of every row + the greedy keep-first walk: time, peak RSS;
- the baseline: exact blocked brute force (faiss IndexFlatIP, BLAS matmul in blocks) on
  `--queries` random rows against all N, timed and scaled to N queries;
- recall of IVF vs that exact search (duplicates >= threshold among the sampled queries) and
  of the planted pairs.

    .venv/bin/python bench/dedup.py                 # 1,000,000 x 512 (a few minutes, ~5 GB)
    .venv/bin/python bench/dedup.py --n 100000      # quick
Ends with one line: ``dedup: n=... dim=... key=value ...``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from pathgen.dataset import dedup as dd


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def synthetic(n: int, dim: int, centers: int, planted: int, seed: int = 0):
    """Unit rows in chunks (no N x D temporaries), then `planted` (src, dst) near-copies."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = np.empty((n, dim), np.float32)
    for lo in range(0, n, 100_000):
        m = min(100_000, n - lo)
        block = c[rng.integers(0, centers, m)] + (0.9 / np.sqrt(dim)) * rng.normal(size=(m, dim)).astype(np.float32)
        x[lo:lo + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    pairs = rng.choice(n, 2 * planted, replace=False).reshape(planted, 2)
    src, dst = pairs.min(axis=1), pairs.max(axis=1)  # the earlier row is the one that stays
    noisy = x[src] + (0.03 / np.sqrt(dim)) * rng.normal(size=(planted, dim)).astype(np.float32)
    x[dst] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return x, src, dst


def exact_baseline(x: np.ndarray, queries: np.ndarray, k: int, block: int = 250_000):
    """Exact k-NN of `queries` rows by blocked brute force (faiss IndexFlatIP per block)."""
    import faiss

    t = time.perf_counter()
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    q = np.ascontiguousarray(x[queries])
    for lo in range(0, len(x), block):
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(np.ascontiguousarray(x[lo:lo + block]))
        s, i = index.search(q, k)
        s_all, i_all = np.concatenate([best_s, s], 1), np.concatenate([best_i, i + lo], 1)
        top = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s_all, top, 1), np.take_along_axis(i_all, top, 1)
    return best_s, best_i, time.perf_counter() - t


def pairs_above(sims, ids, rows, threshold) -> set[tuple[int, int]]:
    return {(int(r), int(j)) for r, s_row, i_row in zip(rows, sims, ids)
            for s, j in zip(s_row, i_row) if j >= 0 and j != r and s >= threshold}


def say(msg: str) -> None:
    print(msg, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--centers", type=int, default=5000)
    ap.add_argument("--planted", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=1000, help="rows searched exactly (baseline)")
    ap.add_argument("--neighbors", type=int, default=16)
    ap.add_argument("--nprobe", type=int, default=8, help="dataset.dedup_nprobe default")
    ap.add_argument("--cosine", type=float, default=0.95)
    a = ap.parse_args()

    x, src, dst = synthetic(a.n, a.dim, a.centers, a.planted)
    rss_data = peak_rss_gb()
    say(f"data: {a.n} x {a.dim} float32 ({x.nbytes / 2**30:.2f} GiB), {a.planted} planted pairs")

    t0 = time.perf_counter()
    built = dd.build_index(x, exact_max=0, nprobe=a.nprobe)
    t_build = time.perf_counter() - t0
    say(f"index built in {t_build:.1f} s")
    nb = dd.neighbours(x, a.neighbors, built=built, threshold=a.cosine)
    dup, _ = dd.duplicate_of(nb, a.cosine)
    t_total = time.perf_counter() - t0
    desc = built[1]
    del built
    say(f"index: {desc}; build {t_build:.1f} s; build+search+walk {t_total:.1f} s; "
          f"removed {(dup >= 0).sum()} of {a.n}")
    planted_found = float(np.mean(dup[dst] == src))

    rows = np.sort(np.random.default_rng(1).choice(a.n, a.queries, replace=False))
    rows = np.union1d(rows, dst[: a.queries // 10])  # some queries with a duplicate to find
    es, ei, t_exact = exact_baseline(x, rows, a.neighbors + 1)
    exact_pairs = pairs_above(es, ei, rows, a.cosine)
    ivf_pairs = pairs_above(nb.sims[rows], nb.ids[rows], rows, a.cosine)
    recall = len(exact_pairs & ivf_pairs) / max(1, len(exact_pairs))
    exact_est = t_exact * a.n / len(rows)
    say(f"baseline: exact blocked brute force on {len(rows)} queries {t_exact:.1f} s -> "
          f"{exact_est:.0f} s estimated for all {a.n}; {len(exact_pairs)} duplicate pairs among them")
    say(f"IVF vs exact: recall {recall:.4f} (sampled queries), planted pairs found {planted_found:.4f}; "
          f"speedup {exact_est / t_total:.1f}x")
    say(f"dedup: n={a.n} dim={a.dim} index=pca64_ivfflat nprobe={a.nprobe} k={a.neighbors} "
          f"cosine={a.cosine} build_s={t_build:.1f} total_s={t_total:.1f} "
          f"exact_est_s={exact_est:.0f} speedup={exact_est / t_total:.1f} recall_vs_exact={recall:.4f} "
          f"recall_planted={planted_found:.4f} peak_rss_gb={peak_rss_gb():.2f} data_rss_gb={rss_data:.2f}")


if __name__ == "__main__":
    main()
