"""TransMIL memory: one forward + backward pass on one bag, Nyström vs full attention, on CPU.

Each measurement runs in a fresh subprocess and reads its peak resident set size from
`resource.getrusage(RUSAGE_SELF).ru_maxrss` (tracemalloc does not see torch's allocator).
`peak_gb` is the whole process (Python + torch + the bag + activations); `delta_gb` is the
growth over the process after imports. Baseline in the same run: the exact O(N²) attention
(`attention="full"`) at a bag size it can still handle (8,000 patches by default), against
Nyström at the same size. Model size = evaluation.mil defaults (hidden 256, 4 heads).

    .venv/bin/python bench/transmil_memory.py                 # 100k x 1024, baseline at 8k
    .venv/bin/python bench/transmil_memory.py --n 20000 --baseline-n 4000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

GB = 1024 ** 3


def _rss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # Linux reports KiB


def child(attention: str, n: int, dim: int, threads: int) -> dict:
    import torch

    from pathgen.config.evaluation import MilConfig
    from pathgen.mil.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = MilConfig()
    model = build_model("transmil", dim, 2, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout,
                        transmil_heads=cfg.transmil_heads, attention=attention).train()
    base = _rss_bytes()
    x = torch.randn(n, dim)
    t0 = time.perf_counter()
    out = model(x)
    loss = model.loss(out, torch.tensor(1))
    loss.backward()
    seconds = time.perf_counter() - t0
    grads = all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters()
                if p.requires_grad)
    peak = _rss_bytes()
    return {"attention": attention, "n": n, "dim": dim, "peak_gb": peak / GB,
            "delta_gb": (peak - base) / GB, "seconds": seconds, "grads_finite": bool(grads)}


def measure(attention: str, n: int, dim: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", attention, "--n", str(n), "--dim", str(dim),
           "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{attention} at n={n} failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="patches in the large bag")
    ap.add_argument("--dim", type=int, default=1024, help="feature width")
    ap.add_argument("--baseline-n", type=int, default=8_000, help="bag size for the full-attention baseline")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit-gb", type=float, default=4.0, help="memory budget the large bag must fit")
    ap.add_argument("--child", choices=["nystrom", "full"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.n, a.dim, a.threads)))
        return 0
    full = measure("full", a.baseline_n, a.dim, a.threads)
    nys_small = measure("nystrom", a.baseline_n, a.dim, a.threads)
    big = measure("nystrom", a.n, a.dim, a.threads)
    for r in (full, nys_small, big):
        print(f"{r['attention']:>8} n={r['n']:>7}: peak {r['peak_gb']:.2f} GB (+{r['delta_gb']:.2f} GB "
              f"over imports), forward+backward {r['seconds']:.1f} s, grads finite {r['grads_finite']}")
    ratio = full["delta_gb"] / max(nys_small["delta_gb"], 1e-9)
    print(f"at n={a.baseline_n}: full attention uses {ratio:.1f}x the memory growth of Nyström")
    ok = big["peak_gb"] <= a.limit_gb and big["grads_finite"]
    print(f"transmil_memory: n={big['n']} dim={big['dim']} peak_gb={big['peak_gb']:.2f} "
          f"delta_gb={big['delta_gb']:.2f} seconds={big['seconds']:.1f} baseline_n={a.baseline_n} "
          f"full_delta_gb={full['delta_gb']:.2f} nystrom_delta_gb={nys_small['delta_gb']:.2f} "
          f"full_over_nystrom={ratio:.1f} limit_gb={a.limit_gb:g} within_limit={str(ok).lower()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
