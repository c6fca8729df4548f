"""Progress of a running chunk job: items done / total, rate and ETA, logged at a steady
interval and kept in a small JSON file beside the chunk outcome (`pathgen status` reads it)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import write_json

log = logging.getLogger("pathgen.chunk")
RUNNING, FINISHED = "running", "finished"


class ChunkProgress:
    def __init__(self, path: str | Path, stage: str, chunk: str, total: int,
                 interval_s: float = 30.0, unit: str = "items"):
        self.path, self.stage, self.chunk, self.total = Path(path), stage, chunk, int(total)
        self.interval_s, self.unit = float(interval_s), unit
        self.done = 0
        self.t0 = time.monotonic()
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._lock = threading.Lock()
        self._next = self.t0 + self.interval_s
        self.write(RUNNING)

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            due = now >= self._next
            if due:
                self._next = now + self.interval_s
        if due:
            self.note()

    def snapshot(self, state: str = RUNNING) -> dict:
        secs = max(1e-9, time.monotonic() - self.t0)
        rate = self.done / secs
        left = max(0, self.total - self.done)
        return {"stage": self.stage, "chunk": self.chunk, "unit": self.unit, "done": self.done,
                "total": self.total, "rate_per_s": round(rate, 3),
                "eta_s": round(left / rate, 1) if rate > 0 else None, "elapsed_s": round(secs, 1),
                "state": state, "started": self.started, "pid": os.getpid(),
                "host": socket.gethostname(),
                "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def write(self, state: str = RUNNING) -> dict:
        snap = self.snapshot(state)
        try:
            write_json(self.path, snap)
        except OSError as err:  # progress is best effort: never fail the job for it
            log.debug("progress file %s not written: %s", self.path, err)
        return snap

    def note(self) -> None:
        s = self.write(RUNNING)
        eta = f"{s['eta_s']:.0f} s" if s["eta_s"] is not None else "?"
        log.info("%s %s: %d/%d %s done, %.2f/s, ETA %s", self.stage, self.chunk, s["done"],
                 s["total"], self.unit, s["rate_per_s"], eta)

    def finish(self) -> None:
        self.write(FINISHED)


def read_progress(path: str | Path) -> dict | None:
    """A progress file, marked stale when its job is gone (same host, no such process)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if doc.get("state") == RUNNING and doc.get("host") == socket.gethostname():
        try:
            os.kill(int(doc.get("pid")), 0)
        except (ProcessLookupError, TypeError, ValueError):
            doc["state"] = "stopped"
        except PermissionError:
            pass
    return doc
