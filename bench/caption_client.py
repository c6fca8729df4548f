"""Throughput and memory of pathgen's captioning client against a local OpenAI-compatible
server that serves at most C requests at once with latency L (capacity C/L requests/s; extra
requests queue server-side). The server returns canned text (pathgen_testkit.mock_chat_server).

Prints, in one run: (a) a sequential client and (b) pathgen's pipelined client
(run_items + the agents' backend, the code path of `pathgen caption --backend openai`) as a
share of C/L, (c) RSS growth while feeding a 100k-item lazy iterator for a bounded time, and
(d) the same client over TWO such servers (every agent's `endpoint` a list of both) as a
share of 2·C/L, with its ratio to (b). Ends with one `caption_client: key=value ...` line.

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

from pathgen.captioning.backends import make_backend
from pathgen.captioning.backends.openai import OpenAIChatClient
from pathgen.captioning.items import PatchItem
from pathgen.captioning.pipeline import run_items
from pathgen.captioning.stage import agent_settings
from pathgen.captioning.store import PartialStore
from pathgen.config.captioning import CaptioningConfig


def _serve(capacity, latency, port_q):
    from pathgen_testkit.mock_chat_server import MockChatServer

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


async def pipelined(cfg: CaptioningConfig, items, sink, seconds: float | None = None):
    backend = make_backend(cfg)
    clients = list({id(b.client): b.client for b in backend.parts.values()}.values())
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
    pipelined.per_endpoint = [e.stats["requests"] for c in clients for e in c.endpoints]
    return sum(c.stats["requests"] for c in clients), time.perf_counter() - t0


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
    servers = [mp.Process(target=_serve, args=(args.capacity, args.latency, q), daemon=True)
               for _ in range(2)]  # each in its own process, like two vLLM servers
    for srv in servers:
        srv.start()
    url, url2 = (f"http://127.0.0.1:{q.get(timeout=60)}/v1" for _ in servers)
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
            n, wall = asyncio.run(pipelined(cfg, lazy_items(args.items, image), st.append))
        cpu_ms = 1000 * (time.process_time() - cpu0) / max(n, 1)
        thr_one = n / wall
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
                res = await pipelined(cfg, lazy_items(args.memory_items, image), st.append,
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

        both = [url, url2]
        cfg2 = CaptioningConfig(backend="openai", concurrency=4 * args.capacity,
                                openai=dict(base_url=url, model="m",
                                            max_concurrent_requests=2 * args.capacity),
                                agents={a: {"endpoint": both} for a in ("describe", "revise", "summarize")})
        with PartialStore(tmp / "two.partial.jsonl") as st:
            n2, wall2 = asyncio.run(pipelined(cfg2, lazy_items(2 * args.items, image), st.append))
        one, two = thr_one, n2 / wall2
        print(f"(d) two endpoints:     {two:7.1f} req/s = {100 * two / (2 * cap):5.1f}% of 2·C/L "
              f"({n2} requests, {2 * args.items} items, {wall2:.1f} s; per endpoint "
              f"{pipelined.per_endpoint}); x{two / one:.2f} of (b)")
        print(f"caption_client: capacity_req_s={cap:.1f} sequential_share={seq / cap:.3f} "
              f"one_endpoint_share={one / cap:.3f} two_endpoint_share={two / (2 * cap):.3f} "
              f"two_vs_one={two / one:.3f} client_cpu_ms_per_request={cpu_ms:.2f} "
              f"rss_growth_mib={(max(samples) - warm) / 2**20:.1f}")
    finally:
        for srv in servers:
            srv.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
