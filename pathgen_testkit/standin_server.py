"""A stand-in OpenAI-compatible model server as its own process, for the managed-serving path
(``captioning.server.engine: command``) in tests, benchmarks and the SLURM integration test.

It answers like vLLM's OpenAI server (``GET /v1/models``, ``POST /v1/chat/completions``) with
canned text (pathgen_testkit.mock_chat_server), serves the base model plus any
``--lora-modules NAME=PATH`` (vLLM's multi-LoRA flag: requests name the adapter as their
model; any other model gets vLLM's 404), and can misbehave on purpose:

  --startup-delay S   load "weights" for S seconds before /v1/models answers
  --fail TEXT         print TEXT (e.g. a CUDA out-of-memory error) and exit 1 while loading
  --never-ready       listen, but /v1/models answers 503 forever
  --die-after N       exit abruptly after N chat requests (once: a marker file beside
                      --pid-file makes the restarted server healthy)
  --reply measured    image-dependent text instead of one canned reply: describe/revise turns
                      get pathgen's measurement-based description of the image, summarize
                      turns its summary (so a dataset built from it has distinct captions)

  python -m pathgen_testkit.standin_server --model M --port P [--capacity C --latency L]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from pathgen_testkit.mock_chat_server import MockChatServer


def measured_reply():
    """Replies computed from the request's image (pathgen's morphometric baseline)."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from pathgen.captioning.backends.morphometric import describe_measurements, summarize_text
    from pathgen.captioning.budget import TokenBudget
    from pathgen.captioning.morphometry import measure_patch
    from pathgen.config.captioning import MorphometricConfig

    t, budget, said, lock = MorphometricConfig(), TokenBudget("ViT-B-16", 77), [], threading.Lock()

    def reply(body: dict) -> str:
        content = body["messages"][-1]["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        image = next((p["image_url"]["url"] for p in parts if p.get("type") == "image_url"), None)
        if image is None:  # summarize: the description it was given, summarized
            text = " ".join(p.get("text", "") for p in parts)
            with lock:
                known = [d for d in said if d in text]
            return summarize_text(max(known, key=len) if known else text, budget)
        raw = base64.b64decode(image.split(",", 1)[1])
        rgb = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
        desc = describe_measurements(measure_patch(rgb, 0.5, t.nucleus_min_area_um2,
                                                   t.lumen_min_area_um2), t)
        with lock:
            if desc not in said:
                said.append(desc)
        return desc
    return reply


def _parse(argv):
    p = argparse.ArgumentParser(prog="standin_server", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lora-modules", nargs="*", default=[], metavar="NAME=PATH")
    p.add_argument("--capacity", type=int, default=32, help="requests in service at once")
    p.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    p.add_argument("--startup-delay", type=float, default=0.0)
    p.add_argument("--fail", default=None)
    p.add_argument("--never-ready", action="store_true")
    p.add_argument("--die-after", type=int, default=0)
    p.add_argument("--pid-file", type=Path, default=None)
    p.add_argument("--reply", choices=["canned", "measured"], default="canned")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = _parse(argv)
    served = [a.model]
    for mod in a.lora_modules:
        name, sep, path = mod.partition("=")
        if not sep or not Path(path).is_dir():
            print(f"ValueError: --lora-modules {mod!r}: expected NAME=PATH of an adapter folder",
                  flush=True)
            return 2
        served.append(name)
    if a.pid_file:
        a.pid_file.write_text(str(os.getpid()))
    print(f"stand-in server: loading {a.model} (adapters: {served[1:] or 'none'}) on "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}", flush=True)
    if a.fail:
        time.sleep(min(a.startup_delay, 1.0))
        print(a.fail, flush=True)
        return 1
    kw = {"reply": measured_reply()} if a.reply == "measured" else {}
    srv = MockChatServer(capacity=a.capacity, latency_s=a.latency, host=a.host, port=a.port,
                         served_models=served, **kw)
    srv.ready = False
    marker = a.pid_file.with_suffix(".died") if a.pid_file else None
    if a.die_after and not (marker and marker.exists()):
        count = [0]
        lock = threading.Lock()

        def on_request(body):
            with lock:
                count[0] += 1
                if count[0] > a.die_after:
                    if marker:
                        marker.write_text("died\n")
                    print(f"stand-in server: dying after {a.die_after} requests", flush=True)
                    os._exit(3)
        srv.on_request = on_request
    signal.signal(signal.SIGTERM, lambda *_: (print("stand-in server: SIGTERM, bye", flush=True),
                                               os._exit(0)))
    srv.thread.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.startup_delay:
        print(f"stand-in server: loading weights ... {time.monotonic() - t0:.0f} s", flush=True)
        time.sleep(min(1.0, a.startup_delay))
    srv.ready = not a.never_ready
    print(f"stand-in server: ready on http://{a.host}:{a.port}/v1 serving {served}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
