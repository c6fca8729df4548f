"""Throughput and memory of pathgen's captioning client against a local OpenAI-compatible
server that serves at most C requests at once with latency L (capacity C/L requests/s; extra
requests queue server-side). The server returns canned text (pathgen.captioning.mockserver).

Prints, in one run: (a) a sequential client and (b) pathgen's pipelined client
(run_items + OpenAIBackend, the code path of `pathgen caption --backend openai`) as a share
of C/L, and (c) RSS growth while feeding a 100k-item lazy iterator for a bounded time.

    .venv/bin/python bench/caption_client.py [--capacity 32 --latency 0.2 --items 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from pathgen.captioning.backends.openai import OpenAIBackend, OpenAIChatClient
from pathgen.captioning.items import PatchItem
from pathgen.captioning.pipeline import run_items
from pathgen.captioning.stage import agent_settings
from pathgen.captioning.store import PartialStore
from pathgen.config.captioning import CaptioningConfig


def _serve(capacity, latency, port_q):
    from pathgen.captioning.mockserver import MockChatServer

    srv = MockChatServer(capacity=capacity, latency_s=latency)
    port_q.put(srv.httpd.server_address[1])
    srv.serve_forever()


def lazy_items(n: int, image: Path):
    for i in range(n):  # generated on demand: nothing is materialised up front
        yield PatchItem("bench", i, 0, 0, 512, 256, "bench/x.jpg", image, 0.5)


async def sequential(url: str, n: int) -> float:
    client = OpenAIChatClient(url, "m", max_concurrent_requests=1)
    t0 = time.perf_counter()
    for _ in range(n):
        await client.chat([{"role": "user", "content": "Summarize: dense tumour."}], 32)
    await client.aclose()
    return n / (time.perf_counter() - t0)


async def pipelined(url: str, cfg: CaptioningConfig, items, sink, seconds: float | None = None):
    backend = OpenAIBackend(cfg.openai)
    settings = agent_settings(cfg)
    t0 = time.perf_counter()
    task = asyncio.create_task(run_items(items, backend, settings, sink, cfg.concurrency))
    try:
        if seconds is None:
            await task
        else:
            await asyncio.wait([task], timeout=seconds)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await backend.aclose()
    return backend.client.stats["requests"], time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capacity", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--items", type=int, default=300, help="items for the throughput run (x3 requests)")
    ap.add_argument("--sequential", type=int, default=15, help="requests for the sequential client")
    ap.add_argument("--memory-items", type=int, default=100_000)
    ap.add_argument("--memory-seconds", type=float, default=10.0)
    args = ap.parse_args(argv)

    q = mp.Queue()
    server = mp.Process(target=_serve, args=(args.capacity, args.latency, q), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{q.get(timeout=60)}/v1"
    cap = args.capacity / args.latency
    tmp = Path(tempfile.mkdtemp(prefix="pathgen-bench-"))
    image = tmp / "x.jpg"
    Image.fromarray(np.full((256, 256, 3), 200, np.uint8)).save(image)
    cfg = CaptioningConfig(backend="openai", concurrency=2 * args.capacity,
                           openai=dict(base_url=url, model="m",
                                       max_concurrent_requests=2 * args.capacity))
    agent_settings(cfg).budget.count("warm up the tokenizer")
    try:
        seq = asyncio.run(sequential(url, args.sequential))
        print(f"capacity C/L = {args.capacity}/{args.latency:g} s = {cap:.1f} req/s")
        print(f"(a) sequential client: {seq:7.1f} req/s = {100 * seq / cap:5.1f}% of C/L")

        cpu0 = time.process_time()
        with PartialStore(tmp / "through.partial.jsonl") as st:
            n, wall = asyncio.run(pipelined(url, cfg, lazy_items(args.items, image), st.append))
        cpu_ms = 1000 * (time.process_time() - cpu0) / max(n, 1)
        print(f"(b) pathgen client:    {n / wall:7.1f} req/s = {100 * n / wall / cap:5.1f}% of C/L "
              f"({n} requests, {args.items} items x 3 agents, {wall:.1f} s, fsync per item; "
              f"client CPU {cpu_ms:.2f} ms/request -> CPU-bound ceiling "
              f"{1000 / max(cpu_ms, 1e-9):.0f} req/s per core)")

        proc = psutil.Process(os.getpid())
        samples = []

        async def sample():
            while True:
                samples.append(proc.memory_info().rss)
                await asyncio.sleep(0.25)

        async def mem_run():
            s = asyncio.create_task(sample())
            with PartialStore(tmp / "mem.partial.jsonl") as st:
                res = await pipelined(url, cfg, lazy_items(args.memory_items, image), st.append,
                                      args.memory_seconds)
            s.cancel()
            return res
        n, wall = asyncio.run(mem_run())
        warm = samples[min(len(samples) - 1, 8)]  # after ~2 s of steady state
        print(f"(c) memory: fed a lazy iterator of {args.memory_items:,} items for {wall:.1f} s "
              f"({n} requests): RSS {samples[0] / 2**20:.0f} MiB at start, {warm / 2**20:.0f} MiB "
              f"after 2 s, max {max(samples) / 2**20:.0f} MiB (growth after warm-up "
              f"{(max(samples) - warm) / 2**20:+.1f} MiB; queue bound "
              f"{2 * cfg.concurrency} items)")
    finally:
        server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
