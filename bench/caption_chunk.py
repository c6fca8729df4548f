"""One caption chunk through managed serving: today's slide-by-slide loop vs the continuous
pipeline across the chunk, in one run, against ONE stand-in server the chunk starts itself.

The server (pathgen_testkit.standin_server, engine: command, started and health-checked by
pathgen.captioning.serving exactly as a vLLM server would be) serves at most C requests at once,
each taking L seconds, so it can finish at most C/L requests per second. Each patch is three
requests (describe, revise, summarize). A mode's capacity share is the ideal time
(requests x L / C) over its measured time:

* per-slide: each slide its own pipeline (the old chunk loop) -- the requests in flight
  drain at every slide boundary;
* continuous: every slide of the chunk feeds one pipeline (caption_many, the chunk job's path).

Ends with `caption_chunk: slides=S items=N capacity_share=X per_slide_share=Y startup_s=Z`.
Goal (issue 18): X >= 0.95.

    .venv/bin/python bench/caption_chunk.py [--slides 40 --patches 40 --capacity 32 --latency 1.0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pathgen.captioning.items import PatchItem
from pathgen.captioning.serving import ServerPool
from pathgen.captioning.stage import caption_many
from pathgen.config.captioning import CaptioningConfig

REQUESTS_PER_ITEM = 3


def chunk_items(root: Path, slides: int, patches: int) -> list[tuple[str, list[PatchItem], Path]]:
    root.mkdir(parents=True, exist_ok=True)
    img = root / "patch.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(img)
    out = []
    for s in range(slides):
        sid = f"slide{s:03d}"
        items = [PatchItem(sid, 512 * i, 0, 0, 512, 256, f"{sid}/{i}.jpg", img, 0.5)
                 for i in range(patches)]
        out.append((sid, items, root / "captions" / f"{sid}.jsonl"))
    return out


def run_mode(jobs, ccfg, routed, continuous: bool) -> float:
    errors = []

    def report(slide, result):
        if isinstance(result, BaseException):
            errors.append(f"{slide}: {result}")

    t0 = time.perf_counter()
    if continuous:
        caption_many(jobs, ccfg, report, backend_cfg=routed)
    else:
        for job in jobs:  # the old loop: one pipeline per slide
            caption_many([job], ccfg, report, backend_cfg=routed)
    secs = time.perf_counter() - t0
    if errors:
        sys.exit(f"captioning failed: {errors[:3]}")
    return secs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slides", type=int, default=40)
    p.add_argument("--patches", type=int, default=40)
    p.add_argument("--capacity", type=int, default=32)
    p.add_argument("--latency", type=float, default=1.0)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cmd = [sys.executable, "-m", "pathgen_testkit.standin_server", "--model", "{model}",
               "--host", "{host}", "--port", "{port}", "--capacity", str(a.capacity),
               "--latency", str(a.latency), "--startup-delay", "1"]
        ccfg = CaptioningConfig.model_validate({
            "backend": "openai", "serve": "managed", "concurrency": a.capacity,
            "openai": {"model": "stand-in", "max_concurrent_requests": a.capacity},
            "server": {"engine": "command", "command": cmd, "startup_timeout_s": 60}})
        pool = ServerPool(ccfg, root / "logs")
        routed = pool.start()
        try:
            items = a.slides * a.patches
            ideal = items * REQUESTS_PER_ITEM * a.latency / a.capacity
            print(f"{a.slides} slides x {a.patches} patches, server C={a.capacity} L={a.latency}s: "
                  f"ideal {ideal:.1f} s; server up in {pool.startup_s:.1f} s", flush=True)
            per_slide = run_mode(chunk_items(root / "a", a.slides, a.patches), ccfg, routed, False)
            print(f"per-slide loop:  {per_slide:.1f} s  share {ideal / per_slide:.3f}", flush=True)
            cont = run_mode(chunk_items(root / "b", a.slides, a.patches), ccfg, routed, True)
            print(f"continuous:      {cont:.1f} s  share {ideal / cont:.3f}  "
                  f"({per_slide / cont:.2f}x faster)", flush=True)
        finally:
            pool.stop()
    x = ideal / cont
    print(f"caption_chunk: slides={a.slides} items={items} capacity_share={x:.3f} "
          f"per_slide_share={ideal / per_slide:.3f} startup_s={pool.startup_s:.2f}")
    return 0 if x >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
